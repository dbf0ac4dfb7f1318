"""Gait and foot-contact metrics: do the legs walk, and do the feet stay on the floor?

The community metrics (:mod:`mage.evaluate.metrics`) average errors over joints and miss
the failure that matters most to a viewer of an avatar: legs that shuffle under the
pelvis instead of stepping, feet that skate, float or sink. These metrics are reported
BESIDE the protocol metrics, never instead of them. All take world joint positions
(T, 22, 3) in metres, z up (the project's frame), SMPL joint order.

| key             | definition                                                   | unit  |
|-----------------|--------------------------------------------------------------|-------|
| stride          | standard deviation over frames of the left-minus-right ankle | cm    |
|                 | offset along the body's heading, d[t] = (p_la - p_ra) . f[t] |       |
|                 | (f = horizontal forward of the hips, :func:`heading`),       |       |
|                 | after a centred moving average over STRIDE_SMOOTH_S          |       |
| gt_stride       | the same for the ground truth                                | cm    |
| stride_ratio    | stride / gt_stride; over a data set the ratio of the means   | 1     |
|                 | (so that sequences without steps weigh little)               |       |
| foot_sliding    | mean horizontal speed of a foot joint (10, 11) in the frames | cm/s  |
|                 | where that foot is in contact (its height above the floor    |       |
|                 | < CONTACT_HEIGHT), over both feet                            |       |
| gt_foot_sliding | the same for the ground truth                                | cm/s  |
| floating        | mean height of the lowest foot above the floor, over the     | cm    |
|                 | frames where the ground truth has a foot in contact          |       |
| penetration     | mean depth of the lowest foot below the floor, all frames    | cm    |

The floor is the ground truth's: the median over frames of the ground truth's lowest
foot-joint height (a person stands or steps most of the time; the foot joint sits some
centimetres above the sole, so a fixed z = 0 would not do). Predictions are compared
with it after the protocol's head placement.

Sources: the stride measure is this project's (issue "a model that walks": a model whose
feet shuffle together has a stride ratio far below 1 although its MPJPE looks fine).
Contact by a height threshold and sliding as the horizontal foot speed in contact
follow the foot-skating measures of HuMoR (Rempe et al., ICCV 2021); penetration,
floating and skating relative to a floor follow PhysDiff (Yuan et al., ICCV 2023). The
thresholds and the floor estimate are ours and are constants here.
"""

from __future__ import annotations

import math

import torch

LEFT_HIP, RIGHT_HIP = 1, 2
LEFT_ANKLE, RIGHT_ANKLE = 7, 8
FOOT_JOINTS: tuple[int, ...] = (10, 11)
UP_AXIS = 2  # z up

CONTACT_HEIGHT = 0.03  # m above the floor: a foot joint this low bears weight (on held-out CMU
# ground truth 0.02 / 0.03 / 0.05 m give a sliding of 32 / 43 / 69 cm/s: toe-off and heel-strike
# frames near the floor count as contact, more so with a higher threshold)
STRIDE_RATIO_FLOOR = 0.01  # m: per-sequence gt stride floor, keeps the ratio finite
# Steps alternate about once a second; frame-to-frame jitter of the ankles would add to
# the spread of d[t] and pass for stepping, so d[t] is first averaged over 0.15 s (9
# frames at 60 Hz), which keeps a 1 Hz stride (amplitude -3.5%) and damps jitter.
STRIDE_SMOOTH_S = 0.15
METERS_TO_CM = 100.0

GAIT_KEYS: tuple[str, ...] = ("stride", "gt_stride", "stride_ratio", "foot_sliding",
                              "gt_foot_sliding", "floating", "penetration")


def heading(positions: torch.Tensor) -> torch.Tensor:
    """Unit horizontal forward direction of the body per frame, (T, 3).

    forward = normalise(horizontal(left_hip - right_hip) x up): with z up and the left
    hip to the +x side, forward is -y, as for SMPL's T-pose rotated into the z-up world.
    positions: (T, 22, 3) metres.
    """
    left = positions[:, LEFT_HIP] - positions[:, RIGHT_HIP]  # a new tensor: safe to edit
    left[:, UP_AXIS] = 0
    up = torch.zeros_like(left)
    up[:, UP_AXIS] = 1
    fwd = torch.linalg.cross(left, up, dim=-1)
    return fwd / fwd.norm(dim=-1, keepdim=True).clamp_min(1e-9)


def stride_spread(positions: torch.Tensor, fps: float) -> float:
    """Std over frames (population, cm) of (p_left_ankle - p_right_ankle) . heading,
    smoothed by a centred moving average of STRIDE_SMOOTH_S seconds (edges: the mean of
    the frames available).

    Large for walking (the feet alternate in front of each other), near 0 for feet that
    move together or only jitter. positions: (T, 22, 3) metres, T >= 2.
    """
    p = positions.double()
    d = ((p[:, LEFT_ANKLE] - p[:, RIGHT_ANKLE]) * heading(p)).sum(-1)
    half = int(round(STRIDE_SMOOTH_S * fps / 2))
    if half > 0:
        ones = torch.ones(1, 1, 2 * half + 1, dtype=d.dtype)
        total = torch.nn.functional.conv1d(d[None, None], ones, padding=half)[0, 0]
        count = torch.nn.functional.conv1d(torch.ones_like(d)[None, None], ones, padding=half)[0, 0]
        d = total / count
    return d.std(unbiased=False).item() * METERS_TO_CM


def floor_height(gt_positions: torch.Tensor) -> float:
    """The floor (m): median over frames of the ground truth's lowest foot-joint height."""
    feet_z = gt_positions.double()[:, list(FOOT_JOINTS), UP_AXIS]
    return feet_z.min(dim=1).values.median().item()


def foot_sliding(positions: torch.Tensor, floor: float, fps: float) -> float:
    """Mean horizontal speed (cm/s) of each foot joint over its contact frames.

    A foot is in contact at frame t when both p[t] and p[t+1] are below
    ``floor + CONTACT_HEIGHT``; speed = |horizontal(p[t+1] - p[t])| * fps. The mean is
    over all (foot, frame) contact pairs; 0 when there is none.
    """
    p = positions.double()[:, list(FOOT_JOINTS)]  # (T, 2, 3)
    low = p[..., UP_AXIS] < floor + CONTACT_HEIGHT
    contact = low[1:] & low[:-1]  # (T-1, 2)
    step = p[1:] - p[:-1]
    step[..., UP_AXIS] = 0
    speed = step.norm(dim=-1) * fps
    if not contact.any():
        return 0.0
    return speed[contact].mean().item() * METERS_TO_CM


def floating_and_penetration(pred_positions: torch.Tensor, gt_positions: torch.Tensor,
                             floor: float) -> tuple[float, float]:
    """(floating, penetration) in cm of the prediction's lowest foot joint.

    floating: mean of max(0, h_pred - floor) over frames where the ground truth's lowest
    foot is in contact (below floor + CONTACT_HEIGHT), 0 when none is;
    penetration: mean of max(0, floor - h_pred) over all frames.
    """
    feet = list(FOOT_JOINTS)
    h_pred = pred_positions.double()[:, feet, UP_AXIS].min(dim=1).values
    h_gt = gt_positions.double()[:, feet, UP_AXIS].min(dim=1).values
    gt_contact = h_gt < floor + CONTACT_HEIGHT
    above = (h_pred - floor).clamp_min(0)
    floating = above[gt_contact].mean().item() if gt_contact.any() else 0.0
    penetration = (floor - h_pred).clamp_min(0).mean().item()
    return floating * METERS_TO_CM, penetration * METERS_TO_CM


def gait_metrics(pred_positions: torch.Tensor, gt_positions: torch.Tensor, fps: float) -> dict[str, float]:
    """All gait metrics of one sequence, keyed as :data:`GAIT_KEYS`.

    pred_positions, gt_positions: (T, 22, 3) world positions, metres, z up, the
    prediction already placed by the protocol. ``stride_ratio`` here is the sequence's
    own stride / max(gt_stride, 1 cm); :func:`aggregate_gait` replaces it by the ratio of
    the means over a data set.
    """
    floor = floor_height(gt_positions)
    stride, gt_stride = stride_spread(pred_positions, fps), stride_spread(gt_positions, fps)
    floating, penetration = floating_and_penetration(pred_positions, gt_positions, floor)
    return {
        "stride": stride,
        "gt_stride": gt_stride,
        "stride_ratio": stride / max(gt_stride, STRIDE_RATIO_FLOOR * METERS_TO_CM),
        "foot_sliding": foot_sliding(pred_positions, floor, fps),
        "gt_foot_sliding": foot_sliding(gt_positions, floor, fps),
        "floating": floating,
        "penetration": penetration,
    }


def aggregate_gait(mean: dict[str, float]) -> dict[str, float]:
    """Replace a data set's mean ``stride_ratio`` by mean stride / mean gt_stride.

    The mean of per-sequence ratios would be dominated by sequences in which nobody steps
    (tiny gt_stride); the ratio of the means weighs each sequence by how much it steps.
    """
    if "stride" in mean and "gt_stride" in mean:
        mean = dict(mean)
        gt = mean["gt_stride"]
        mean["stride_ratio"] = mean["stride"] / gt if gt > 0 else math.nan
    return mean
