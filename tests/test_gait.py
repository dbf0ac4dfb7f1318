"""Gait and foot-contact metrics against hand-computed values."""

import math

import pytest
import torch

from mage.evaluate import gait
from mage.evaluate import metrics as M

FPS = 60.0


def _body(T: int, left=(0.1, 0.0, 0.9), right=(-0.1, 0.0, 0.9)) -> torch.Tensor:
    """(T, 22, 3): hips at the given places (left hip to +x -> facing -y), rest at 0."""
    p = torch.zeros(T, 22, 3, dtype=torch.float64)
    p[:, gait.LEFT_HIP] = torch.tensor(left, dtype=torch.float64)
    p[:, gait.RIGHT_HIP] = torch.tensor(right, dtype=torch.float64)
    return p


def test_heading_faces_minus_y_when_left_hip_is_plus_x():
    h = gait.heading(_body(3))
    assert torch.allclose(h, torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64).expand(3, 3))


def test_heading_ignores_hip_height_difference():
    h = gait.heading(_body(2, left=(0.1, 0.0, 1.0), right=(-0.1, 0.0, 0.8)))
    assert torch.allclose(h[:, 2], torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(h.norm(dim=-1), torch.ones(2, dtype=torch.float64))


def test_stride_spread_of_alternating_ankles():
    # ankles swing +-a along forward (-y) in antiphase at 1 Hz: d = 2a sin, std = 2a / sqrt(2);
    # the 9-frame moving average scales a 1 Hz sine by sin(9 pi/60) / (9 sin(pi/60)) = 0.9634
    T, a = 600, 0.2
    t = torch.arange(T, dtype=torch.float64) / FPS
    s = torch.sin(2 * math.pi * t)  # 10 whole periods: population std of sin = 1/sqrt(2)
    p = _body(T)
    p[:, gait.LEFT_ANKLE, 1] = -a * s
    p[:, gait.RIGHT_ANKLE, 1] = a * s
    gain = math.sin(9 * math.pi / 60) / (9 * math.sin(math.pi / 60))
    assert gait.stride_spread(p, FPS) == pytest.approx(2 * a / math.sqrt(2) * 100 * gain, rel=2e-3)


def test_stride_spread_ignores_frame_to_frame_jitter():
    T = 600
    p = _body(T)
    g = torch.Generator().manual_seed(0)
    p[:, gait.LEFT_ANKLE, 1] = 0.05 * torch.randn(T, generator=g, dtype=torch.float64)
    raw = 0.05 * 100  # the unsmoothed spread would be the noise's std, about 5 cm
    assert gait.stride_spread(p, FPS) < 0.4 * raw


def test_stride_spread_zero_when_feet_move_together():
    T = 120
    p = _body(T)
    shift = torch.linspace(0, 1, T, dtype=torch.float64)
    p[:, gait.LEFT_ANKLE, 1] = shift
    p[:, gait.RIGHT_ANKLE, 1] = shift
    assert gait.stride_spread(p, FPS) == pytest.approx(0.0, abs=1e-9)


def test_stride_ignores_sideways_offsets():
    T = 120
    p = _body(T)
    p[:, gait.LEFT_ANKLE, 0] = torch.linspace(0, 0.5, T, dtype=torch.float64)  # along x = sideways
    assert gait.stride_spread(p, FPS) == pytest.approx(0.0, abs=1e-9)


def test_foot_sliding_counts_only_contact_frames():
    T, v = 61, 0.3  # m/s
    p = _body(T)
    x = torch.arange(T, dtype=torch.float64) * v / FPS
    p[:, 10, 0] = x  # left foot on the floor sliding at v
    p[:, 10, 2] = 0.02
    p[:, 11, 0] = 5 * x  # right foot moving faster but in the air: not counted
    p[:, 11, 2] = 0.5
    assert gait.foot_sliding(p, floor=0.02, fps=FPS) == pytest.approx(30.0, rel=1e-9)


def test_foot_sliding_zero_without_contact():
    p = _body(10)
    p[:, 10:12, 2] = 1.0
    assert gait.foot_sliding(p, floor=0.0, fps=FPS) == 0.0


def test_floor_is_median_lowest_foot():
    p = _body(5)
    p[:, 10, 2] = torch.tensor([0.03, 0.04, 0.05, 0.30, 0.30], dtype=torch.float64)
    p[:, 11, 2] = torch.tensor([0.50, 0.50, 0.50, 0.06, 0.02], dtype=torch.float64)
    # lowest per frame: .03 .04 .05 .06 .02 -> median .04
    assert gait.floor_height(p) == pytest.approx(0.04)


def test_floating_and_penetration_hand_computed():
    T = 4
    gt = _body(T)
    gt[:, 10:12, 2] = torch.tensor([[0.0, 0.3], [0.0, 0.3], [0.3, 0.3], [0.3, 0.3]], dtype=torch.float64)
    pred = _body(T)
    # lowest pred foot: 0.03 above, 0.02 below, 0.10 above (gt not in contact), 0.04 below
    pred[:, 10, 2] = torch.tensor([0.03, -0.02, 0.10, -0.04], dtype=torch.float64)
    pred[:, 11, 2] = 1.0
    floating, penetration = gait.floating_and_penetration(pred, gt, floor=0.0)
    assert floating == pytest.approx((3.0 + 0.0) / 2)  # gt contact in frames 0, 1
    assert penetration == pytest.approx((0 + 2 + 0 + 4) / 4)


def test_aggregate_uses_ratio_of_means():
    rows = [dict(zip(M.METRIC_KEYS, [1.0] * len(M.METRIC_KEYS))) for _ in range(2)]
    rows[0].update(stride=2.0, gt_stride=40.0, stride_ratio=0.05)
    rows[1].update(stride=1.0, gt_stride=1.0, stride_ratio=1.0)
    out = M.aggregate(rows)
    assert out["stride_ratio"] == pytest.approx(1.5 / 20.5)
    assert out["stride"] == pytest.approx(1.5)


def test_sequence_metrics_carry_gait_beside_protocol_metrics():
    T = 30
    gt = _body(T)
    gt[:, gait.LEFT_ANKLE, 1] = -0.2 * torch.sin(torch.arange(T, dtype=torch.float64) / 5)
    pred = gt.clone()
    pred[:, gait.LEFT_ANKLE, 1] *= 0.5
    R = torch.eye(3, dtype=torch.float64).expand(T, 22, 3, 3)
    out = M.sequence_metrics(R, R, pred, gt, FPS)
    for key in M.PROTOCOL_METRIC_KEYS + gait.GAIT_KEYS:
        assert key in out
    assert out["stride"] < out["gt_stride"]
    assert 0.4 < out["stride_ratio"] < 0.6
