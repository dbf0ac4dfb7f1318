"""Jitter next to the seams of offline windows vs inside them (benchmarks/latency).
(Here, not in mage.evaluate: it measures this package's windowing, and evaluation
sits below inference.)

A diagnostic of :func:`mage.inference.sequence.predict_sequence`'s offline mode: where
two windows meet, their predictions are cross-faded; these functions measure whether
the motion is rougher there than inside a window.
"""

from __future__ import annotations

import torch

from mage.core.checks import check_shape
from mage.core.kinematics import jerk
from mage.inference import MODEL_FPS
from mage.inference.sequence import window_starts


def jerk_profile(positions: torch.Tensor, fps: float = MODEL_FPS) -> torch.Tensor:
    """(T, J, 3) positions -> (T-3,) mean over joints of |jerk| (m/s^3).

    Entry t uses frames t..t+3 (the protocol's jitter, before averaging over time).
    """
    check_shape(positions, "positions", (None, 3))
    if positions.dim() != 3 or positions.shape[0] < 4:
        raise ValueError(f"positions: expected (T, J, 3) with T >= 4, got {tuple(positions.shape)}")
    return jerk(positions.double(), fps).norm(dim=-1).mean(-1)


def seam_jitter(positions: torch.Tensor, boundaries, fps: float = MODEL_FPS) -> dict[str, float]:
    """Jitter next to window seams vs inside windows.

    positions: (T, J, 3); boundaries: frame indices b where a window starts or ends
    (a seam between frames b-1 and b). A jerk stencil t..t+3 touches the seam when
    b-3 <= t <= b-1. returns {"seam", "interior"} mean jitter (m/s^3) and their "ratio".
    """
    prof = jerk_profile(positions, fps)
    mask = torch.zeros(prof.shape[0], dtype=torch.bool)
    for b in boundaries:
        mask[max(0, b - 3):max(0, min(prof.shape[0], b))] = True
    if not mask.any() or mask.all():
        raise ValueError("boundaries: need both frames next to seams and frames away from them")
    seam, interior = prof[mask].mean().item(), prof[~mask].mean().item()
    return {"seam": seam, "interior": interior, "ratio": seam / max(interior, 1e-12)}


def offline_boundaries(T: int, window: int, overlap: int, first_frame: int = 0) -> list[int]:
    """Frames where offline windows start or end inside a sequence of T condition rows,
    shifted by ``first_frame`` (1 when the rows are tracking frames 1..T)."""
    starts = window_starts(T, window, overlap)
    inner = {s for s in starts if s > 0} | {s + window for s in starts if s + window < T}
    return sorted(b + first_frame for b in inner)
