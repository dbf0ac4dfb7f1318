"""Each metric against values worked out by hand on tiny made-up sequences."""

import math

import pytest
import torch

from mage.core.rotations import axis_angle_to_matrix
from mage.evaluate import metrics as M


def still_positions(T):
    return torch.zeros(T, 22, 3, dtype=torch.float64)


def identity_rotations(T):
    return torch.eye(3, dtype=torch.float64).repeat(T, 22, 1, 1)


def rotations_with(T, joint, aa):
    R = identity_rotations(T)
    R[:, joint] = axis_angle_to_matrix(torch.tensor(aa, dtype=torch.float64))
    return R


def test_joint_sets_partition_the_body():
    assert sorted(M.UPPER_JOINTS + M.LOWER_JOINTS) == list(range(22))
    assert M.HAND_JOINTS == (20, 21) and M.ROOT_JOINTS == (0,) and M.BODY_JOINTS == tuple(range(1, 22))


def test_mpjpe_constant_offset_3_4_5():
    gt = still_positions(4)
    pred = gt + torch.tensor([0.03, 0.04, 0.0], dtype=torch.float64)  # 3-4-5 triangle: 0.05 m
    assert M.mpjpe(pred, gt) == pytest.approx(5.0)  # cm
    for joints in (M.HAND_JOINTS, M.UPPER_JOINTS, M.LOWER_JOINTS, M.ROOT_JOINTS):
        assert M.position_error(pred, gt, joints) == pytest.approx(5.0)


def test_part_errors_wrists_only():
    gt = still_positions(4)
    pred = gt.clone()
    pred[:, [20, 21], 2] = 0.12  # both wrists 12 cm off, every other joint exact
    assert M.mpjpe(pred, gt) == pytest.approx(2 * 12 / 22)  # 1.0909 cm
    assert M.position_error(pred, gt, M.HAND_JOINTS) == pytest.approx(12.0)
    assert M.position_error(pred, gt, M.UPPER_JOINTS) == pytest.approx(2 * 12 / 13)  # 1.846 cm
    assert M.position_error(pred, gt, M.LOWER_JOINTS) == 0.0
    assert M.position_error(pred, gt, M.ROOT_JOINTS) == 0.0


def test_root_error_only_root():
    gt = still_positions(4)
    pred = gt.clone()
    pred[:, 0, 1] = -0.02  # pelvis 2 cm off
    assert M.position_error(pred, gt, M.ROOT_JOINTS) == pytest.approx(2.0)
    assert M.position_error(pred, gt, M.LOWER_JOINTS) == pytest.approx(2 / 9)
    assert M.position_error(pred, gt, M.UPPER_JOINTS) == 0.0
    assert M.mpjpe(pred, gt) == pytest.approx(2 / 22)


def test_mpjve_one_joint_constant_velocity():
    # joint 3 moves 1 cm per frame along x; at 60 fps that is 0.6 m/s = 60 cm/s; GT is still.
    T = 5
    gt = still_positions(T)
    pred = gt.clone()
    pred[:, 3, 0] = 0.01 * torch.arange(T, dtype=torch.float64)
    assert M.mpjve(pred, gt) == pytest.approx(60 / 22)  # one joint of 22: 2.727 cm/s
    assert M.mpjve(pred, gt, fps=30) == pytest.approx(30 / 22)
    # the position error grows 0, 1, 2, 3, 4 cm for that joint: mean 2 cm / 22 joints
    assert M.mpjpe(pred, gt) == pytest.approx(2 / 22)


def test_jitter_zero_for_constant_velocity_and_acceleration():
    k = torch.arange(8, dtype=torch.float64)
    p = still_positions(8)
    p[:, :, 0] = 0.01 * k[:, None]  # constant velocity
    p[:, :, 1] = 0.5 * 2.0 * (k[:, None] / 60) ** 2  # constant acceleration, 2 m/s^2
    assert M.jitter(p) == pytest.approx(0.0, abs=1e-9)


def test_jitter_cubic_trajectory():
    # x_k = 0.001 k^3 m for every joint: 0, 0.001, 0.008, 0.027, ...
    # third difference: 0.027 - 3*0.008 + 3*0.001 - 0 = 0.006 m (the same for every t)
    # at 10 fps: 0.006 * 10^3 = 6 m/s^3 = 0.06 x 10^2 m/s^3;
    # at 60 fps: 0.006 * 216000 = 1296 m/s^3 = 12.96 x 10^2 m/s^3.
    k = torch.arange(6, dtype=torch.float64)
    p = still_positions(6)
    p[:, :, 0] = 0.001 * k[:, None] ** 3
    assert M.jitter(p, fps=10) == pytest.approx(0.06)
    assert M.jitter(p) == pytest.approx(12.96)
    # only one joint of 22 moving: 12.96 / 22
    q = still_positions(6)
    q[:, 7, 0] = 0.001 * k**3
    assert M.jitter(q) == pytest.approx(12.96 / 22)


def test_mpjre_wraps_around_pi():
    # joint 5: axis-angle (3.1, 0, 0) vs (-3.1, 0, 0): the x components differ by 6.2 rad,
    # wrapped: 6.2 - 2 pi = -0.0832 rad; mean over 21 joints x 3 components = 63 numbers.
    T = 4
    pred = rotations_with(T, 5, [3.1, 0.0, 0.0])
    gt = rotations_with(T, 5, [-3.1, 0.0, 0.0])
    assert M.mpjre(pred, gt) == pytest.approx(math.degrees((2 * math.pi - 6.2) / 63))  # 0.0757 deg
    # geodesic: the two rotations are 2 pi - 6.2 = 0.0832 rad apart; mean over 21 joints
    assert M.mpjre_geodesic(pred, gt) == pytest.approx(math.degrees((2 * math.pi - 6.2) / 21))


def test_mpjre_plain_difference_and_root_excluded():
    # joint 1: 0.3 vs 0.1 rad about z -> one component differs by 0.2 rad; 0.2 / 63 rad.
    pred = rotations_with(4, 1, [0.0, 0.0, 0.3])
    gt = rotations_with(4, 1, [0.0, 0.0, 0.1])
    pred[:, 0] = axis_angle_to_matrix(torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64))  # root: ignored
    assert M.mpjre(pred, gt) == pytest.approx(math.degrees(0.2 / 63))  # 0.1819 deg
    assert M.mpjre_geodesic(pred, gt) == pytest.approx(math.degrees(0.2 / 21))  # 0.5457 deg


def test_sequence_metrics_keys_and_gt_jitter():
    k = torch.arange(5, dtype=torch.float64)
    gt = still_positions(5)
    gt[:, :, 2] = 0.001 * k[:, None] ** 3  # GT jitter at 60 fps: 12.96 (see above)
    out = M.sequence_metrics(identity_rotations(5), identity_rotations(5), gt.clone(), gt)
    assert tuple(out) == M.METRIC_KEYS
    assert out["gt_jitter"] == pytest.approx(12.96) and out["jitter"] == pytest.approx(12.96)
    assert out["mpjpe"] == 0.0 and out["mpjve"] == 0.0 and out["mpjre"] == 0.0


def test_aggregate_is_per_sequence_then_unweighted_mean():
    # A: 4 frames, every joint 1 cm off -> MPJPE 1; B: 10 frames, 4 cm off -> MPJPE 4.
    # Unweighted mean: (1 + 4) / 2 = 2.5 cm (a frame-weighted mean would be 44 / 14 = 3.14).
    a_gt, b_gt = still_positions(4), still_positions(10)
    one_cm = torch.tensor([0.01, 0.0, 0.0], dtype=torch.float64)
    four_cm = torch.tensor([0.0, 0.04, 0.0], dtype=torch.float64)
    a = M.sequence_metrics(identity_rotations(4), identity_rotations(4), a_gt + one_cm, a_gt)
    b = M.sequence_metrics(identity_rotations(10), identity_rotations(10), b_gt + four_cm, b_gt)
    assert a["mpjpe"] == pytest.approx(1.0) and b["mpjpe"] == pytest.approx(4.0)
    mean = M.aggregate([a, b])
    assert mean["mpjpe"] == pytest.approx(2.5)
    assert mean["root_pe"] == pytest.approx(2.5)
    assert mean["mpjve"] == 0.0

def test_errors_are_clear():
    with pytest.raises(ValueError, match="shapes differ"):
        M.mpjpe(still_positions(4), still_positions(5))
    with pytest.raises(ValueError, match="gt_positions"):
        M.mpjpe(still_positions(4), torch.zeros(4, 21, 3))
    with pytest.raises(ValueError, match="at least 4 frames"):
        M.jitter(still_positions(3))
    with pytest.raises(ValueError, match="at least 4 frames"):
        M.sequence_metrics(identity_rotations(3), identity_rotations(3), still_positions(3), still_positions(3))
    with pytest.raises(ValueError, match="frames"):
        M.sequence_metrics(identity_rotations(5), identity_rotations(5), still_positions(4), still_positions(4))
    with pytest.raises(ValueError, match="fps"):
        M.mpjve(still_positions(4), still_positions(4), fps=0)
    with pytest.raises(ValueError, match="no sequences"):
        M.aggregate([])
    bad = still_positions(4)
    bad[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        M.mpjpe(bad, still_positions(4))
