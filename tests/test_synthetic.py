"""The SYNTHETIC demo input: a plausible walk / turn / reach, deterministic, z-up."""

import numpy as np
import pytest
import torch

from mage.core import TRACKED_JOINTS, Tracking
from mage.demo.synthetic import (
    REACH,
    TURN,
    TURN_DEG,
    WALK_START,
    WALK_STOP,
    synthetic_tracking,
)

FPS = 60
DURATION = 20.0


@pytest.fixture(scope="module")
def demo():
    tracking, motion = synthetic_tracking(DURATION, FPS, seed=0)
    return tracking, motion, motion.joint_positions().double().numpy()


def _window(a: float, b: float) -> slice:
    """Frames between fractions a and b of the duration."""
    return slice(int(a * DURATION * FPS), int(b * DURATION * FPS))


def test_returns_tracking_of_the_motion_flagged_synthetic(demo):
    tracking, motion, P = demo
    assert isinstance(tracking, Tracking)
    assert tracking.num_frames == motion.num_frames == DURATION * FPS
    assert tracking.fps == motion.fps == FPS
    assert np.allclose(tracking.positions.numpy(), P[:, list(TRACKED_JOINTS)], atol=1e-5)
    assert motion.meta["synthetic"] is True and "synthetic" in motion.name


def test_z_up_plausible_heights_feet_on_floor(demo):
    _, _, P = demo
    head, pelvis = P[:, 15, 2], P[:, 0, 2]
    assert 1.5 < head.min() and head.max() < 1.8
    assert (head > pelvis + 0.5).all() and (pelvis > P[:, [7, 8], 2].max(1) + 0.6).all()
    lowest = np.minimum(P[:, [7, 8], 2].min(1) - 0.085, P[:, [10, 11], 2].min(1) - 0.025)
    assert np.abs(lowest).max() < 0.035  # a foot is always on the floor (z = 0), give or take


def test_left_is_left(demo):
    # the left wrist is on the body's left: (z x forward) points left in a z-up world
    _, motion, P = demo
    fwd = (motion.rotations[:, 0].double() @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).numpy()
    left = np.cross([0.0, 0.0, 1.0], fwd)
    assert (np.einsum("ti,ti->t", P[:, 20] - P[:, 21], left) > 0.2).all()
    assert (np.einsum("ti,ti->t", P[:, 1] - P[:, 2], left) > 0.05).all()  # hips too


def test_walking_speed_and_head_bob(demo):
    _, motion, P = demo
    walk = _window(WALK_START[1] + 0.01, TURN[0])  # straight, full speed
    speed = np.linalg.norm(np.diff(P[walk, 0, :2], axis=0), axis=1) * FPS
    assert 1.2 < np.median(speed) < 1.4
    assert speed.max() < 1.6
    # head bob: 1-2 cm amplitude at the step frequency (two steps per stride)
    z = P[walk, 15, 2]
    amplitude = (np.percentile(z, 98) - np.percentile(z, 2)) / 2
    assert 0.008 < amplitude < 0.022
    spectrum = np.abs(np.fft.rfft(z - z.mean()))
    freq = np.fft.rfftfreq(len(z), 1 / FPS)[spectrum.argmax()]
    step_freq = 2 / motion.meta["stride_s"]
    assert abs(freq - step_freq) < 0.15 * step_freq
    assert 1.6 < step_freq < 2.4  # a normal cadence


def test_stands_still_before_and_after_walking(demo):
    _, _, P = demo
    for w in (_window(0.0, WALK_START[0]), _window(WALK_STOP[1] + 0.01, 1.0)):
        assert np.ptp(P[w, 0, :2], axis=0).max() < 0.01


def test_heading_turns_by_the_intended_angle(demo):
    tracking, _, _ = demo
    head = tracking.positions[:, 0, :2].double().numpy()

    def travel_direction(a, b):
        d = head[_window(a, b)][-1] - head[_window(a, b)][0]
        return np.arctan2(d[1], d[0])

    before = travel_direction(TURN[0] - 0.08, TURN[0])
    after = travel_direction(TURN[1], TURN[1] + 0.08)
    turn = np.degrees((after - before + np.pi) % (2 * np.pi) - np.pi)
    assert abs(turn - TURN_DEG) < 4.0
    assert abs(np.degrees(before) - (-90.0)) < 4.0  # starts walking towards -y


def test_right_hand_reaches_forward_up_and_back(demo):
    _, motion, P = demo
    fwd = (motion.rotations[:, 0].double() @ torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)).numpy()
    rel = P[:, 21] - P[:, 0]
    forward, up = np.einsum("ti,ti->t", rel, fwd), rel[:, 2]
    pre, during = _window(REACH[0] - 0.02, REACH[0]), _window(REACH[0], REACH[1])
    post = _window(REACH[1] + 0.01, 1.0)
    assert forward[during].max() - forward[pre].mean() > 0.35
    assert up[during].max() - up[pre].mean() > 0.4
    assert np.abs(rel[post] - rel[pre].mean(0)).max() < 0.05  # back where it started
    left_up = P[during, 20, 2] - P[during, 0, 2]
    assert np.ptp(left_up) < 0.05  # the left hand stays down


def test_smooth_tracking(demo):
    tracking, _, _ = demo
    p = tracking.positions.double().numpy()
    acc = np.linalg.norm(np.diff(p, 2, axis=0), axis=-1) * FPS**2  # m/s^2
    assert acc.max() < 12.0
    jerk = np.linalg.norm(np.diff(p, 3, axis=0), axis=-1) * FPS**3
    assert np.median(jerk) < 30.0
    R = tracking.rotations.double()
    cos = ((R[1:].transpose(-1, -2) @ R[:-1]).diagonal(dim1=-2, dim2=-1).sum(-1) - 1) / 2
    step_deg = torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))
    assert step_deg.max() < 4.0  # < 240 deg/s for head and wrists


def test_deterministic_for_a_seed():
    a, ma = synthetic_tracking(5.0, 30, seed=3)
    b, mb = synthetic_tracking(5.0, 30, seed=3)
    c, _ = synthetic_tracking(5.0, 30, seed=4)
    assert torch.equal(a.positions, b.positions) and torch.equal(ma.rotations, mb.rotations)
    assert not torch.allclose(a.positions, c.positions)
    assert a.num_frames == 150


@pytest.mark.parametrize("duration", [0.5, float("nan")])
def test_rejects_too_short(duration):
    with pytest.raises(ValueError, match="duration_s"):
        synthetic_tracking(duration)
