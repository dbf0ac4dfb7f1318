"""The community metrics of sparse-observation avatar estimation (AvatarPoser / AGRoL).

Per sequence, from predicted and ground-truth local rotations (T, J=22, 3, 3) and world
joint positions (T, 22, 3) in metres (predictions already placed by the head, see
:mod:`mage.evaluate.protocol`). Every metric is a mean over the sequence's frames (and
joints); a data set's figure is the UNWEIGHTED mean of the per-sequence values
(:func:`aggregate`), so a long sequence counts as much as a short one.

| key            | definition                                                 | unit        |
|----------------|------------------------------------------------------------|-------------|
| mpjre          | mean |wrap(aa_pred - aa_gt)| over the 3 axis-angle          | deg         |
|                | components of the 21 body joints (root excluded), each     |             |
|                | difference wrapped to [-pi, pi] (the reference's MPJRE)    |             |
| mpjre_geodesic | mean geodesic angle of R_gt^T R_pred, same 21 joints       | deg         |
| mpjpe          | mean L2 position error, 22 joints                          | cm          |
| mpjve          | mean L2 error of v = (p[t+1] - p[t]) * fps, 22 joints      | cm/s        |
| jitter         | mean |(p[t+3] - 3p[t+2] + 3p[t+1] - p[t]) * fps^3|, pred    | 10^2 m/s^3  |
| gt_jitter      | the same for the ground truth                              | 10^2 m/s^3  |
| h_pe           | mean L2 position error of the hands (wrists 20, 21)        | cm          |
| u_pe           | ... of the upper body (:data:`UPPER_JOINTS`)               | cm          |
| l_pe           | ... of the lower body (:data:`LOWER_JOINTS`)               | cm          |
| root_pe        | ... of the root (pelvis, joint 0)                          | cm          |
| stride ...     | gait and foot-contact metrics, beside the protocol's:      |             |
|                | stride, gt_stride, stride_ratio, foot_sliding,             | see         |
|                | gt_foot_sliding, floating, penetration                     | evaluate.gait |

Jitter is reported in 10^2 m/s^3 as in the papers' tables (the reference code prints
m/s^3; we divide by 100). Internally everything is computed in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import torch

from mage.core import rotations as rot
from mage.core.checks import check_finite, check_fps, check_shape
from mage.core.constants import LEFT_WRIST_JOINT, NUM_JOINTS, RIGHT_WRIST_JOINT
from mage.core.kinematics import jerk
from mage.evaluate.gait import aggregate_gait, gait_metrics

DEFAULT_FPS = 60.0

# --- joint index sets of the protocol (the only place they are written) ---------------
ALL_JOINTS: tuple[int, ...] = tuple(range(NUM_JOINTS))
ROOT_JOINT = 0
BODY_JOINTS: tuple[int, ...] = tuple(range(1, NUM_JOINTS))  # MPJRE: root excluded
HAND_JOINTS: tuple[int, ...] = (LEFT_WRIST_JOINT, RIGHT_WRIST_JOINT)
UPPER_JOINTS: tuple[int, ...] = (3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21)
LOWER_JOINTS: tuple[int, ...] = (0, 1, 2, 4, 5, 7, 8, 10, 11)
ROOT_JOINTS: tuple[int, ...] = (ROOT_JOINT,)

METERS_TO_CM = 100.0
JITTER_UNIT_SCALE = 1.0 / 100.0  # m/s^3 -> 10^2 m/s^3


@dataclass(frozen=True)
class MetricInfo:
    """How a metric is named and shown: ``key`` in dicts/JSON, ``label`` in tables,
    ``unit`` for humans, ``column`` = the per-sequence CSV header (key + unit)."""

    key: str
    label: str
    unit: str
    column: str


# Order = the column order of every table and CSV.
METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("mpjre", "MPJRE", "deg", "mpjre_deg"),
    MetricInfo("mpjre_geodesic", "MPJRE-geo", "deg", "mpjre_geodesic_deg"),
    MetricInfo("mpjpe", "MPJPE", "cm", "mpjpe_cm"),
    MetricInfo("mpjve", "MPJVE", "cm/s", "mpjve_cm_per_s"),
    MetricInfo("jitter", "Jitter", "10^2 m/s^3", "jitter_1e2_m_per_s3"),
    MetricInfo("gt_jitter", "GT Jitter", "10^2 m/s^3", "gt_jitter_1e2_m_per_s3"),
    MetricInfo("h_pe", "H-PE", "cm", "h_pe_cm"),
    MetricInfo("u_pe", "U-PE", "cm", "u_pe_cm"),
    MetricInfo("l_pe", "L-PE", "cm", "l_pe_cm"),
    MetricInfo("root_pe", "Root-PE", "cm", "root_pe_cm"),
    # gait and contact (mage.evaluate.gait): not protocol metrics, reported beside them
    MetricInfo("stride", "Stride", "cm", "stride_cm"),
    MetricInfo("gt_stride", "GT Stride", "cm", "gt_stride_cm"),
    MetricInfo("stride_ratio", "Stride ratio", "1", "stride_ratio"),
    MetricInfo("foot_sliding", "Foot slide", "cm/s", "foot_sliding_cm_per_s"),
    MetricInfo("gt_foot_sliding", "GT Foot slide", "cm/s", "gt_foot_sliding_cm_per_s"),
    MetricInfo("floating", "Float", "cm", "floating_cm"),
    MetricInfo("penetration", "Penetration", "cm", "penetration_cm"),
)
PROTOCOL_METRIC_KEYS: tuple[str, ...] = ("mpjre", "mpjre_geodesic", "mpjpe", "mpjve", "jitter",
                                         "gt_jitter", "h_pe", "u_pe", "l_pe", "root_pe")
METRIC_KEYS: tuple[str, ...] = tuple(m.key for m in METRICS)
MIN_FRAMES = 4  # jitter needs a third difference


def _check_positions(p: torch.Tensor, name: str) -> torch.Tensor:
    check_shape(p, name, (NUM_JOINTS, 3))
    if p.dim() != 3:
        raise ValueError(f"{name}: expected shape (T, {NUM_JOINTS}, 3), got {tuple(p.shape)}")
    check_finite(p, name)
    return p.double()


def _check_pair(pred: torch.Tensor, gt: torch.Tensor, name: str, shape) -> tuple[torch.Tensor, torch.Tensor]:
    for x, n in ((pred, f"pred_{name}"), (gt, f"gt_{name}")):
        check_shape(x, n, shape)
        if x.dim() != len(shape) + 1:
            raise ValueError(f"{n}: expected shape (T, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
        check_finite(x, n)
    if pred.shape != gt.shape:
        raise ValueError(
            f"pred_{name} {tuple(pred.shape)} and gt_{name} {tuple(gt.shape)}: shapes differ"
        )
    if pred.shape[0] == 0:
        raise ValueError(f"pred_{name}: the sequence has no frames")
    return pred.double(), gt.double()


def wrap_angle(x: torch.Tensor) -> torch.Tensor:
    """Wrap angles (radians) to [-pi, pi)."""
    return torch.remainder(x + math.pi, 2 * math.pi) - math.pi


def mpjre(pred_rotations: torch.Tensor, gt_rotations: torch.Tensor) -> float:
    """Reference MPJRE, degrees: mean |wrap(aa_pred - aa_gt)| over T x 21 joints x 3.

    pred_rotations, gt_rotations: (T, 22, 3, 3) local rotations; joint 0 (root) ignored.
    Axis-angle by ``matrix_to_axis_angle`` (angle in [0, pi]), as the reference compares
    AMASS axis-angle componentwise.
    """
    pred, gt = _check_pair(pred_rotations, gt_rotations, "rotations", (NUM_JOINTS, 3, 3))
    idx = list(BODY_JOINTS)
    diff = rot.matrix_to_axis_angle(pred[:, idx]) - rot.matrix_to_axis_angle(gt[:, idx])
    return math.degrees(wrap_angle(diff).abs().mean().item())


def mpjre_geodesic(pred_rotations: torch.Tensor, gt_rotations: torch.Tensor) -> float:
    """Stricter MPJRE, degrees: mean geodesic angle of R_gt^T R_pred over T x 21 joints."""
    pred, gt = _check_pair(pred_rotations, gt_rotations, "rotations", (NUM_JOINTS, 3, 3))
    idx = list(BODY_JOINTS)
    return math.degrees(rot.geodesic_angle(gt[:, idx], pred[:, idx]).mean().item())


def position_error(pred_positions: torch.Tensor, gt_positions: torch.Tensor,
                   joints: Sequence[int] = ALL_JOINTS) -> float:
    """Mean L2 distance (cm) over T frames and ``joints``; inputs (T, 22, 3) in metres.

    MPJPE with the default ``joints``; H-PE / U-PE / L-PE / Root-PE with the sets above.
    """
    pred, gt = _check_pair(pred_positions, gt_positions, "positions", (NUM_JOINTS, 3))
    idx = list(joints)
    return (pred[:, idx] - gt[:, idx]).norm(dim=-1).mean().item() * METERS_TO_CM


def mpjpe(pred_positions: torch.Tensor, gt_positions: torch.Tensor) -> float:
    """Mean per-joint position error (cm) over the 22 joints; inputs (T, 22, 3) metres."""
    return position_error(pred_positions, gt_positions, ALL_JOINTS)


def mpjve(pred_positions: torch.Tensor, gt_positions: torch.Tensor, fps: float = DEFAULT_FPS) -> float:
    """Mean per-joint velocity error (cm/s): v = (p[t+1] - p[t]) * fps, T-1 x 22 values.

    Inputs (T, 22, 3) metres, T >= 2.
    """
    fps = check_fps(fps)
    pred, gt = _check_pair(pred_positions, gt_positions, "positions", (NUM_JOINTS, 3))
    if pred.shape[0] < 2:
        raise ValueError(f"mpjve: need at least 2 frames, got {pred.shape[0]}")
    v_pred = (pred[1:] - pred[:-1]) * fps
    v_gt = (gt[1:] - gt[:-1]) * fps
    return (v_pred - v_gt).norm(dim=-1).mean().item() * METERS_TO_CM


def jitter(positions: torch.Tensor, fps: float = DEFAULT_FPS) -> float:
    """Mean norm of the third finite difference, in 10^2 m/s^3 (m/s^3 divided by 100).

    j[t] = (p[t+3] - 3 p[t+2] + 3 p[t+1] - p[t]) * fps^3, averaged over T-3 frames and 22
    joints. positions: (T, 22, 3) metres, T >= 4.
    """
    fps = check_fps(fps)
    p = _check_positions(positions, "positions")
    if p.shape[0] < MIN_FRAMES:
        raise ValueError(f"jitter: need at least {MIN_FRAMES} frames, got {p.shape[0]}")
    d3 = jerk(p, fps)
    return d3.norm(dim=-1).mean().item() * JITTER_UNIT_SCALE


def sequence_metrics(
    pred_rotations: torch.Tensor,
    gt_rotations: torch.Tensor,
    pred_positions: torch.Tensor,
    gt_positions: torch.Tensor,
    fps: float = DEFAULT_FPS,
) -> dict[str, float]:
    """All metrics of one sequence, keyed as :data:`METRIC_KEYS`.

    pred_rotations, gt_rotations: (T, 22, 3, 3) local rotations.
    pred_positions, gt_positions: (T, 22, 3) world positions, metres (T >= 4).
    """
    _check_pair(pred_rotations, gt_rotations, "rotations", (NUM_JOINTS, 3, 3))
    _check_pair(pred_positions, gt_positions, "positions", (NUM_JOINTS, 3))
    T = pred_positions.shape[0]
    if pred_rotations.shape[0] != T:
        raise ValueError(
            f"rotations have {pred_rotations.shape[0]} frames but positions {T}: they must match"
        )
    if T < MIN_FRAMES:
        raise ValueError(f"sequence_metrics: need at least {MIN_FRAMES} frames (for jitter), got {T}")
    return {
        "mpjre": mpjre(pred_rotations, gt_rotations),
        "mpjre_geodesic": mpjre_geodesic(pred_rotations, gt_rotations),
        "mpjpe": mpjpe(pred_positions, gt_positions),
        "mpjve": mpjve(pred_positions, gt_positions, fps),
        "jitter": jitter(pred_positions, fps),
        "gt_jitter": jitter(gt_positions, fps),
        "h_pe": position_error(pred_positions, gt_positions, HAND_JOINTS),
        "u_pe": position_error(pred_positions, gt_positions, UPPER_JOINTS),
        "l_pe": position_error(pred_positions, gt_positions, LOWER_JOINTS),
        "root_pe": position_error(pred_positions, gt_positions, ROOT_JOINTS),
        **gait_metrics(pred_positions.double(), gt_positions.double(), fps),
    }


def aggregate(per_sequence: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Unweighted mean over sequences of each metric (every sequence counts once), except
    ``stride_ratio``: mean stride / mean gt_stride (:func:`mage.evaluate.gait.aggregate_gait`)."""
    rows = list(per_sequence)
    if not rows:
        raise ValueError("aggregate: no sequences to average")
    keys = list(rows[0])
    for i, r in enumerate(rows):
        if set(r) != set(keys):
            raise ValueError(f"aggregate: sequence {i} has metrics {sorted(r)}, expected {sorted(keys)}")
    mean = {k: math.fsum(r[k] for r in rows) / len(rows) for k in keys}
    return aggregate_gait(mean)
