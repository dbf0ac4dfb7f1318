import math

import numpy as np
import pytest
import torch
from conftest import random_rotations

from mage.core import Motion, Skeleton
from mage.core import rotations as rot


def _random_motion(T=30, fps=120.0, seed=0, skeleton=None):
    g = torch.Generator().manual_seed(seed)
    R = random_rotations(T, 22, generator=g, dtype=torch.float32)
    return Motion(R, torch.randn(T, 3, generator=g), fps, skeleton or Skeleton.smpl22())


def test_integer_resample_strides():
    m = _random_motion(31, 120.0)
    r = m.resample(60)
    assert r.num_frames == 16 and r.fps == 60
    assert torch.equal(r.rotations, m.rotations[::2])


def test_non_integer_resample_slerps():
    m = _random_motion(11, 50.0)
    r = m.resample(60)  # output frame k at t = k * 50/60 input frames
    assert r.fps == 60 and r.num_frames == int((11 - 1) * 60 / 50) + 1
    k = 1  # t = 0.8333: between frames 0 and 1, weight 5/6
    expect = rot.slerp_matrices(m.rotations[0].double(), m.rotations[1].double(),
                                torch.full((22,), 5 / 6, dtype=torch.float64))
    assert torch.allclose(r.rotations[k].double(), expect, atol=1e-5)
    assert torch.allclose(r.trans[k], m.trans[0] / 6 + m.trans[1] * 5 / 6, atol=1e-6)
    # duration is kept
    assert abs((r.num_frames - 1) / r.fps - (m.num_frames - 1) / m.fps) < 1 / 60


def test_mirror_twice_is_identity_and_swaps_sides():
    sk = Skeleton.from_dict({**Skeleton.smpl22().to_dict(),
                             "offsets": (Skeleton.smpl22().offsets + [[0.01, 0.2, 0.03]] + 0).tolist()})
    m = _random_motion(skeleton=sk)
    mm = m.mirror().mirror()
    assert torch.allclose(mm.rotations, m.rotations, atol=1e-6)
    assert torch.allclose(mm.trans, m.trans, atol=1e-6)


def test_mirror_positions_of_symmetric_skeleton():
    # Make the default skeleton exactly symmetric, then mirrored positions = reflected positions
    base = Skeleton.smpl22()
    off = base.offsets.copy()
    mm = base.mirror_map()
    for j in range(22):
        if mm[j] > j:
            avg = (off[j] * [-1, 1, 1] + off[mm[j]]) / 2
            off[mm[j]] = avg
            off[j] = avg * [-1, 1, 1]
        elif mm[j] == j:
            off[j][0] = 0.0
    sk = Skeleton(base.joint_names, base.parents, off)
    m = _random_motion(skeleton=sk)
    p = m.joint_positions()
    pm = m.mirror().joint_positions()
    expected = p[:, mm] * torch.tensor([-1.0, 1.0, 1.0])
    assert torch.allclose(pm, expected, atol=1e-5)


def test_rotate_about_vertical_rotates_positions():
    m = _random_motion()
    a = 0.7
    r = m.rotate_about_vertical(a)
    Rz = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1.0]])
    assert torch.allclose(r.joint_positions(), m.joint_positions() @ Rz.T, atol=1e-5)


def test_slicing_and_save_load_roundtrip(tmp_path):
    m = _random_motion(20)
    s = m[5:15]
    assert s.num_frames == 10 and torch.equal(s.rotations, m.rotations[5:15])
    s.save(tmp_path / "m.npz")
    back = Motion.load(tmp_path / "m.npz")
    assert torch.allclose(back.rotations, s.rotations, atol=1e-5)
    assert torch.allclose(back.trans, s.trans) and back.fps == s.fps
    assert back.skeleton.allclose(s.skeleton)


def test_bad_motion_input(tmp_path):
    R = torch.eye(3).expand(5, 22, 3, 3).clone()
    with pytest.raises(ValueError, match="fps"):
        Motion(R, torch.zeros(5, 3), 0)
    with pytest.raises(ValueError, match="fps"):
        Motion(R, torch.zeros(5, 3), -30)
    with pytest.raises(ValueError, match="trans"):
        Motion(R, torch.zeros(4, 3), 30)
    bad = R.clone()
    bad[2, 3] *= 2
    with pytest.raises(ValueError, match="rotations: not rotation"):
        Motion(bad, torch.zeros(5, 3), 30)
    t = torch.zeros(5, 3)
    t[1, 1] = float("nan")
    with pytest.raises(ValueError, match="trans: contains 1 NaN"):
        Motion(R, t, 30)
    with pytest.raises(ValueError, match="poses"):
        Motion.from_axis_angle(np.zeros((5, 65)), np.zeros((5, 3)), 30)
    (tmp_path / "x.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ValueError, match="x.npz"):
        Motion.load(tmp_path / "x.npz")


def test_saved_files_are_world_readable_and_atomic(tmp_path):
    import os
    import stat

    m = _random_motion(5)
    m.save(tmp_path / "m.npz")
    mode = stat.S_IMODE(os.stat(tmp_path / "m.npz").st_mode)
    assert mode & 0o044  # not the 0600 of a temporary file
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temporary left behind
