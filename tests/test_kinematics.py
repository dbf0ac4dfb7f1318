import numpy as np
import pytest
import smplx
import torch
from conftest import random_rotations

from mage.core import Motion, Skeleton, forward_kinematics
from mage.core.kinematics import local_from_global
from mage.core.rotations import matrix_to_axis_angle


def test_fk_matches_smplx_joints(smplh_model_file, rng):
    sk = Skeleton.from_smpl_model(smplh_model_file)
    model = smplx.SMPLH(str(smplh_model_file), gender="male", ext="npz",
                         use_pca=False, flat_hand_mean=True, num_betas=10,
                         dtype=torch.float64, batch_size=8)
    R = random_rotations(8, 22, generator=rng)
    trans = torch.randn(8, 3, generator=rng, dtype=torch.float64)
    aa = matrix_to_axis_angle(R)
    out = model(global_orient=aa[:, 0], body_pose=aa[:, 1:].reshape(8, 63), transl=trans)
    fk = forward_kinematics(R, trans, sk)
    err = (fk.positions - out.joints[:, :22]).norm(dim=-1).max().item()
    assert err < 1e-5, err


def test_fk_hand_computed_two_joint_chain():
    # Root at trans, elbow offset (1, 0, 0); rotate root 90 deg about z: child at trans + (0, 1, 0)
    sk = Skeleton(("root", "child"), (-1, 0), np.array([[0.0, 0.0, 0.0], [1.0, 0.0, 0.0]]))
    Rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    R = torch.stack([Rz, torch.eye(3)])[None]
    fk = forward_kinematics(R, torch.tensor([[1.0, 2.0, 3.0]]), sk)
    assert torch.allclose(fk.positions[0, 1], torch.tensor([1.0, 3.0, 3.0]))
    assert torch.allclose(fk.global_rotations[0, 1], Rz)


def test_fk_batched_and_local_from_global_inverse(rng):
    sk = Skeleton.smpl22()
    R = random_rotations(2, 5, 22, generator=rng)
    fk = forward_kinematics(R, torch.zeros(2, 5, 3, dtype=torch.float64), sk)
    assert fk.positions.shape == (2, 5, 22, 3)
    assert torch.allclose(local_from_global(fk.global_rotations, sk.parents), R, atol=1e-10)
    # bone lengths are preserved by any pose
    for j, p in enumerate(sk.parents[1:], start=1):
        d = (fk.positions[..., j, :] - fk.positions[..., p, :]).norm(dim=-1)
        assert torch.allclose(d, torch.full_like(d, float(np.linalg.norm(sk.offsets[j]))))


def test_fk_shape_errors():
    sk = Skeleton.smpl22()
    with pytest.raises(ValueError, match="local_rotations"):
        forward_kinematics(torch.zeros(4, 21, 3, 3), None, sk)
    with pytest.raises(ValueError, match="trans"):
        forward_kinematics(torch.eye(3).expand(4, 22, 3, 3), torch.zeros(5, 3), sk)


def test_motion_fk_upright_rest_is_z_up():
    m = Motion.rest(3)
    p = m.joint_positions()
    head, lankle = p[0, 15], p[0, 7]
    assert head[2] - lankle[2] > 1.2  # standing along +z
    assert p[0, 20, 0] > 0.5  # left wrist on +x when facing -y... body's left maps to world +x


def test_place_by_head_puts_head_on_tracker(rng):
    from mage.core.kinematics import place_by_head

    sk = Skeleton.smpl22()
    R = random_rotations(7, 22, generator=rng)
    head = torch.randn(7, 3, generator=rng, dtype=torch.float64)
    fk, trans = place_by_head(R, head, sk)
    assert torch.allclose(fk.positions[:, 15], head, atol=1e-12)
    assert torch.allclose(fk.positions, forward_kinematics(R, trans, sk).positions, atol=1e-12)
