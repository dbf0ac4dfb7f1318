"""SYNTHETIC demo input: a procedurally animated person walking, turning and reaching.

Nothing here is captured data and nothing here is ground truth. The motion is made up by
a few lines of kinematics on the default SMPL 22-joint skeleton so that the project has
a built-in, licence-free input for ``mage demo`` and for the renderer/viewer tests:

1. stand, then walk forward at about 1.3 m/s (a periodic gait: hip, knee and ankle
   curves, pelvis twist and sway, counter-rotating arm swing, feet kept on the floor);
2. turn left by :data:`TURN_DEG` degrees while walking (the head leads the turn);
3. slow down and stop;
4. reach forward and up with the right hand, hold, and bring it back.

:func:`synthetic_motion` returns that full-body :class:`~mage.core.Motion` (a plausible
*reference* body, handy to look at next to a prediction); :func:`synthetic_tracking`
returns the head + wrist :class:`~mage.core.Tracking` a headset and two controllers
would report for it, which is what the model consumes.

World frame z-up, metres; the person starts at the origin facing -y (root rotation =
Rx(+90 deg), as ``Motion.rest(upright=True)``) and turns to face +x.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mage.core import rotations as rot
from mage.core.constants import NUM_JOINTS
from mage.core.motion import Motion
from mage.core.skeleton import Skeleton
from mage.core.tracking import Tracking

# --- the script, as fractions of the duration (so any duration >= MIN_DURATION_S works)
WALK_START = (0.04, 0.11)  # walking speed ramps up between these fractions ...
WALK_STOP = (0.64, 0.72)   # ... and down to a stop between these
TURN = (0.40, 0.52)        # heading changes by TURN_DEG between these
REACH = (0.76, 0.94)       # right-hand reach: out, hold, back within these
TURN_DEG = 90.0            # positive = to the person's left (counter-clockwise from above)
MIN_DURATION_S = 4.0
BOB_SCALE = 0.65          # damps the pelvis bob the foot lock alone would give

# SMPL joint indices used here.
_L_HIP, _R_HIP, _L_KNEE, _R_KNEE, _L_ANKLE, _R_ANKLE = 1, 2, 4, 5, 7, 8
_SPINE1, _SPINE3, _NECK, _HEAD = 3, 9, 12, 15
_L_SHOULDER, _R_SHOULDER, _L_ELBOW, _R_ELBOW = 16, 17, 18, 19
_L_FOOT, _R_FOOT = 10, 11
# Heights above the floor of the ankle and foot (toe-base) joints when the foot is flat.
_ANKLE_HEIGHT, _FOOT_HEIGHT = 0.085, 0.025


@dataclass(frozen=True)
class _Style:
    """Per-person gait parameters; the seed perturbs them a little."""

    speed: float          # m/s while walking
    stride_s: float       # seconds per stride (two steps)
    hip_deg: float        # hip flexion amplitude (+/-)
    knee_scale: float     # scales the knee curve
    arm_swing_deg: float  # shoulder swing amplitude (+/-)
    arm_down_deg: float   # how far the arms hang down from the T-pose
    pelvis_twist_deg: float
    sway_m: float         # lateral pelvis sway amplitude
    look_phase: np.ndarray  # phases of the head's idle look-around


def _style(seed: int) -> _Style:
    rng = np.random.default_rng(seed)

    def u(lo: float, hi: float) -> float:
        return float(rng.uniform(lo, hi))

    speed = u(1.25, 1.35)
    hip = u(23.0, 26.0)
    # Stance lasts ~60% of a stride with the hip sweeping linearly from +hip to -hip, so
    # the stance foot moves back at leg_length * 2 * hip / (0.6 * stride) relative to
    # the pelvis; match it to the walking speed so that the feet barely slide.
    leg = 0.92
    stride = leg * 2 * np.radians(hip) / (0.6 * speed)
    return _Style(
        speed=speed, stride_s=float(stride), hip_deg=hip, knee_scale=u(0.9, 1.1),
        arm_swing_deg=u(14.0, 22.0), arm_down_deg=u(72.0, 78.0),
        pelvis_twist_deg=u(4.0, 6.0), sway_m=u(0.015, 0.025),
        look_phase=rng.uniform(0, 2 * np.pi, 4),
    )


# --- smooth scalar helpers ---------------------------------------------------------------
def _smoothstep(x: np.ndarray) -> np.ndarray:
    """Quintic 0 -> 1 ramp with zero 1st and 2nd derivatives at both ends (C2)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def _ramp(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    return _smoothstep((t - t0) / (t1 - t0))


def _gaussian_smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass along axis 0 (sigma in samples), edges padded by reflection."""
    r = max(1, int(np.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    padded = np.pad(x, (r, r), mode="reflect")
    return np.convolve(padded, k, mode="valid")


def _periodic_curve(keys: list[tuple[float, float]], harmonics: int):
    """A smooth periodic function of the gait phase p (cycles) through keyframes.

    keys: (phase in [0, 1], value) pairs, linearly interpolated around the cycle and
    then low-passed to ``harmonics`` Fourier terms, so the curve is smooth everywhere.
    """
    n = 512
    grid = np.arange(n) / n
    ph, val = np.array(keys, dtype=np.float64).T
    samples = np.interp(grid, ph, val, period=1.0)
    coef = np.fft.rfft(samples) / n
    coef[harmonics + 1:] = 0.0

    def f(p: np.ndarray) -> np.ndarray:
        k = np.arange(harmonics + 1)
        ang = 2 * np.pi * np.multiply.outer(np.asarray(p), k)
        terms = coef[: harmonics + 1] * np.exp(1j * ang)
        scale = np.where(k == 0, 1.0, 2.0)
        return (terms.real * scale).sum(-1)

    return f


# Gait curves over one stride of the RIGHT leg (phase 0 = right heel strike); the left
# leg runs half a cycle later. Degrees. Hip: +A = thigh forward; stance 0..0.6 sweeps
# linearly back, swing brings it forward again.
_HIP = _periodic_curve([(0.0, 1.0), (0.6, -1.0), (0.8, 0.55), (0.92, 1.0), (1.0, 1.0)], 4)
_KNEE = _periodic_curve([(0.0, 3), (0.15, 15), (0.4, 5), (0.6, 35), (0.72, 60), (0.88, 22),
                         (1.0, 3)], 5)
_ANKLE = _periodic_curve([(0.0, 0), (0.1, -6), (0.45, 10), (0.62, -15), (0.75, 4),
                          (1.0, 0)], 5)  # + = toes up (dorsiflexion)


def _rx(a):
    return rot.rotation_about_axis(torch.as_tensor(a, dtype=torch.float64), "x").double()


def _ry(a):
    return rot.rotation_about_axis(torch.as_tensor(a, dtype=torch.float64), "y").double()


def _rz(a):
    return rot.rotation_about_axis(torch.as_tensor(a, dtype=torch.float64), "z").double()


@dataclass(frozen=True)
class _Schedule:
    """The script over time, one value per frame: t (s), walk (0..1, speed envelope),
    yaw (heading, rad), reach (0..1) and the gait phase (cycles; advances while walking)."""

    t: np.ndarray
    walk: np.ndarray
    yaw: np.ndarray
    reach: np.ndarray
    phase: np.ndarray


def _schedule(T: int, fps: float, D: float, st: _Style) -> _Schedule:
    t = np.arange(T) / fps
    walk = _ramp(t, WALK_START[0] * D, WALK_START[1] * D) - _ramp(t, WALK_STOP[0] * D, WALK_STOP[1] * D)
    yaw = np.radians(TURN_DEG) * _ramp(t, TURN[0] * D, TURN[1] * D)
    r0, r1 = REACH[0] * D, REACH[1] * D
    reach = _ramp(t, r0, r0 + 0.35 * (r1 - r0)) - _ramp(t, r1 - 0.35 * (r1 - r0), r1)
    phase = np.concatenate([[0.0], np.cumsum((walk[1:] + walk[:-1]) / 2) / fps]) / st.stride_s
    return _Schedule(t, walk, yaw, reach, phase)


def _pose_legs(R: torch.Tensor, s: _Schedule, st: _Style) -> None:
    deg = np.radians
    for hip, knee, ankle, off in ((_R_HIP, _R_KNEE, _R_ANKLE, 0.0), (_L_HIP, _L_KNEE, _L_ANKLE, 0.5)):
        p = s.phase + off
        R[:, hip] = _rx(-deg(st.hip_deg) * s.walk * _HIP(p))  # Rx(-a): thigh forward
        R[:, knee] = _rx(deg(st.knee_scale) * s.walk * _KNEE(p))  # Rx(+a): shank back
        R[:, ankle] = _rx(-deg(1.0) * s.walk * _ANKLE(p))  # Rx(-a): toes up


def _pose_torso_and_head(R: torch.Tensor, s: _Schedule, st: _Style, twist: np.ndarray) -> None:
    deg, t = np.radians, s.t
    lean = deg(4.0) * s.walk + deg(6.0) * s.reach
    R[:, _SPINE1] = _rx(lean) @ _ry(-0.5 * twist)
    R[:, _SPINE3] = _ry(-0.6 * twist)
    # the head leads the turn by ~0.6 s and looks around a little when idle
    lead = np.interp(t + 0.6, t, s.yaw) - s.yaw
    a = st.look_phase
    look_yaw = deg(6.0) * np.sin(2 * np.pi * 0.11 * t + a[0]) * np.sin(2 * np.pi * 0.037 * t + a[1])
    look_pitch = deg(3.0) * np.sin(2 * np.pi * 0.07 * t + a[2]) - deg(4.0) * s.reach
    R[:, _NECK] = _rx(-lean * 0.8)
    R[:, _HEAD] = _ry(0.5 * lead + look_yaw) @ _rx(-look_pitch)


def _pose_arms(R: torch.Tensor, s: _Schedule, st: _Style) -> None:
    """Hang down from the T-pose, swing against the legs; the right arm reaches."""
    deg, walk, reach, phase = np.radians, s.walk, s.reach, s.phase
    down = deg(st.arm_down_deg)
    swing = deg(st.arm_swing_deg) * walk * np.cos(2 * np.pi * phase)  # left arm fwd at 0
    elbow = deg(18.0) + deg(12.0) * walk * (0.5 + 0.5 * np.cos(2 * np.pi * phase))
    R[:, _L_SHOULDER] = _rx(-swing) @ _rz(-down)
    R[:, _L_ELBOW] = _ry(-elbow)
    raise_ = deg(115.0) * reach
    R[:, _R_SHOULDER] = _rx(-(-swing * (1 - reach) + raise_)) @ _rz(down + reach * (deg(95.0) - down))
    elbow_r = deg(18.0) + deg(12.0) * walk * (0.5 - 0.5 * np.cos(2 * np.pi * phase))
    R[:, _R_ELBOW] = _ry(elbow_r * (1 - 0.8 * reach))


def _walk_path(s: _Schedule, st: _Style, fps: float) -> torch.Tensor:
    """Root translation (T, 3), z = 0: along the heading, swaying over the stance foot."""
    yaw, walk = s.yaw, s.walk
    forward = np.stack([np.sin(yaw), -np.cos(yaw)], -1)  # body +z in the world, per frame
    left = np.stack([np.cos(yaw), np.sin(yaw)], -1)      # body +x in the world
    v = st.speed * walk[:, None] * forward
    xy = np.concatenate([[[0.0, 0.0]], np.cumsum((v[1:] + v[:-1]) / 2, 0) / fps])
    sway = -st.sway_m * walk * np.cos(2 * np.pi * (s.phase - 0.3))  # over the stance foot
    xy = xy + sway[:, None] * left
    trans = torch.zeros(len(yaw), 3, dtype=torch.float64)
    trans[:, :2] = torch.from_numpy(xy)
    return trans


def _ground_height(R: torch.Tensor, trans: torch.Tensor, fps: float, skel: Skeleton) -> np.ndarray:
    """(T,) the root height that puts the lowest foot point on z = 0, smoothed."""
    pos = Motion(R, trans, fps, skel).joint_positions()
    heights = torch.cat([pos[:, [_L_ANKLE, _R_ANKLE], 2] - _ANKLE_HEIGHT,
                         pos[:, [_L_FOOT, _R_FOOT], 2] - _FOOT_HEIGHT], -1)  # (T, 4)
    # A soft minimum: a hard min has kinks where the supporting foot changes, and those
    # show up as jitter.
    tau = 0.01
    soft = (-tau * torch.logsumexp(-heights / tau, -1)).numpy()
    soft = _gaussian_smooth(soft, 0.05 * fps)  # soften heel strikes
    return soft.mean() + BOB_SCALE * (soft - soft.mean())


def synthetic_motion(duration_s: float = 20.0, fps: float = 60, seed: int = 0) -> Motion:
    """The SYNTHETIC full-body demo motion (walk, left turn, stop, right-hand reach).

    duration_s: length in seconds (>= 4; the script scales with it).
    fps: frame rate of the result.
    seed: perturbs speed, stride, arm swing and the head's idle look-around a little;
        the same seed gives the same motion, bit for bit.
    returns: a Motion on ``Skeleton.smpl22()`` whose ``meta`` says it is synthetic and
        records the script (speed, turn angle, phases in seconds).
    """
    duration_s = float(duration_s)
    if not np.isfinite(duration_s) or duration_s < MIN_DURATION_S:
        raise ValueError(f"duration_s: must be at least {MIN_DURATION_S} s, got {duration_s!r}")
    if not (np.isfinite(float(fps)) and float(fps) > 0):
        raise ValueError(f"fps: must be a positive frame rate, got {fps!r}")
    fps = float(fps)
    T = round(duration_s * fps)
    st = _style(seed)
    skel = Skeleton.smpl22()
    D = duration_s
    s = _schedule(T, fps, D, st)

    R = torch.eye(3, dtype=torch.float64).repeat(T, NUM_JOINTS, 1, 1)
    twist = np.radians(st.pelvis_twist_deg) * s.walk * np.cos(2 * np.pi * s.phase)  # right hip fwd at 0
    _pose_legs(R, s, st)
    _pose_torso_and_head(R, s, st, twist)
    _pose_arms(R, s, st)
    # root: upright, heading, pelvis twist; walk along the heading, feet on the floor
    R[:, 0] = _rz(s.yaw) @ _rx(np.full(T, np.pi / 2)) @ _ry(twist)
    trans = _walk_path(s, st, fps)
    trans[:, 2] = -torch.from_numpy(_ground_height(R, trans, fps, skel))

    meta = {
        "synthetic": True,
        "generator": "mage.demo.synthetic",
        "seed": int(seed),
        "speed_m_s": st.speed,
        "stride_s": st.stride_s,
        "turn_deg": TURN_DEG,
        "walk_s": [WALK_START[1] * D, WALK_STOP[0] * D],
        "turn_s": [TURN[0] * D, TURN[1] * D],
        "reach_s": [REACH[0] * D, REACH[1] * D],
    }
    return Motion(R.float(), trans.float(), fps, skel, name=f"synthetic-walk-turn-reach-seed{seed}",
                  meta=meta)


def synthetic_tracking(duration_s: float = 20.0, fps: float = 60, seed: int = 0) -> tuple[Tracking, Motion]:
    """The built-in demo input: SYNTHETIC head + wrist tracking, and the body it came from.

    returns: (tracking, motion). ``tracking`` is what a headset and two controllers would
    report for :func:`synthetic_motion` (head, left wrist, right wrist; z-up, metres);
    ``motion`` is that procedurally generated body, a plausible reference to show next to
    a prediction. It is made up, not measured: never report errors against it as results.
    """
    motion = synthetic_motion(duration_s, fps, seed)
    return Tracking.from_motion(motion), motion
