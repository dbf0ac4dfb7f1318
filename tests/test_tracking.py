import numpy as np
import pytest
import torch
from conftest import random_rotations

from mage.core import Motion, Tracking, sparse_condition
from mage.core.constants import CONDITION_LAYOUT


def test_condition_hand_computed():
    # Two frames. Frame 0: all identity, positions P0. Frame 1: head rotated 90 deg about
    # z, wrists identity, positions P1. Expected numbers written out by hand.
    Rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    I = torch.eye(3)
    rots = torch.stack([torch.stack([I, I, I]), torch.stack([Rz, I, I])])
    P0 = torch.tensor([[0.0, 0.0, 1.7], [0.3, 0.1, 1.0], [-0.3, 0.1, 1.0]])
    P1 = torch.tensor([[0.0, 0.1, 1.7], [0.3, 0.1, 1.2], [-0.3, 0.0, 1.0]])
    c = sparse_condition(rots, torch.stack([P0, P1]))
    assert c.shape == (1, 54)
    expected = (
        [0, 1, 0, -1, 0, 0] + [1, 0, 0, 0, 1, 0] * 2          # 6D of R_1 (columns)
        + [0, 1, 0, -1, 0, 0] + [1, 0, 0, 0, 1, 0] * 2        # R_0^T R_1
        + [0, 0.1, 1.7, 0.3, 0.1, 1.2, -0.3, 0.0, 1.0]        # p_1
        + [0, 0.1, 0, 0, 0, 0.2, 0, -0.1, 0]                  # p_1 - p_0, per frame
    )
    assert torch.allclose(c[0], torch.tensor(expected, dtype=torch.float32), atol=1e-6)


def test_condition_from_motion_uses_head_and_wrists():
    g = torch.Generator().manual_seed(1)
    m = Motion(random_rotations(6, 22, generator=g, dtype=torch.float32), torch.randn(6, 3, generator=g), 60)
    tr = Tracking.from_motion(m)
    fk = m.fk()
    assert torch.allclose(tr.positions, fk.positions[:, [15, 20, 21]])
    c = tr.condition()
    assert c.shape == (5, 54)
    blocks = {name: c[:, cols].reshape(5, 3, -1) for name, cols in CONDITION_LAYOUT.items()}
    assert torch.allclose(blocks["position"][2, 1], fk.positions[3, 20])
    assert torch.allclose(blocks["position_delta"][0, 2], fk.positions[1, 21] - fk.positions[0, 21])
    vel = fk.global_rotations[3, 15].T @ fk.global_rotations[4, 15]
    assert torch.allclose(blocks["rot_velocity6d"][3, 0], torch.cat([vel[:, 0], vel[:, 1]]), atol=1e-6)
    H = tr.head_transform()
    assert torch.allclose(H[:, :3, 3], fk.positions[:, 15]) and H.shape == (6, 4, 4)


def test_tracking_from_raw_arrays_and_errors():
    q = np.zeros((4, 3, 4))
    q[..., 3] = 1.0
    tr = Tracking.from_arrays(np.zeros((4, 3, 3)), q, fps=72)
    assert torch.allclose(tr.rotations, torch.eye(3).expand(4, 3, 3, 3))
    q[1, 2] = np.nan
    with pytest.raises(ValueError, match="quaternions: contains"):
        Tracking.from_arrays(np.zeros((4, 3, 3)), q, fps=72)
    with pytest.raises(ValueError, match="positions"):
        Tracking(torch.eye(3).expand(4, 3, 3, 3), torch.zeros(4, 2, 3), 60)
    with pytest.raises(ValueError, match="2 frames"):
        Tracking(torch.eye(3).expand(1, 3, 3, 3), torch.zeros(1, 3, 3), 60).condition()
