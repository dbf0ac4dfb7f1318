"""Argument checks shared by the whole package.

Every public function validates its inputs with these, so that bad input fails with a
``ValueError`` that names the argument and the problem (never an assert, which
``python -O`` strips, and never a shape error deep inside torch).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from mage.core.limits import MAX_FPS, MIN_FPS, quote


def check_shape(x: torch.Tensor, name: str, shape: Sequence[int | None]) -> None:
    """Check the trailing dimensions of ``x``; ``None`` matches any size.

    ``shape`` describes the last ``len(shape)`` dims; leading (batch) dims are free.
    """
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    want = tuple(shape)
    if x.dim() < len(want) or any(
        w is not None and s != w for s, w in zip(x.shape[x.dim() - len(want):], want)
    ):
        pretty = "(..., " + ", ".join("*" if w is None else str(w) for w in want) + ")"
        raise ValueError(f"{name}: expected shape {pretty}, got {tuple(x.shape)}")


def check_finite(x: torch.Tensor, name: str) -> None:
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).nonzero()
        first = tuple(bad[0].tolist())
        raise ValueError(
            f"{name}: contains {len(bad)} NaN/inf value(s), the first at index {first}"
        )


def check_fps(fps: float, name: str = "fps") -> float:
    """``fps`` as a float, a plausible frame rate (``mage.core.limits``: MIN_FPS..MAX_FPS)."""
    try:
        value = float(fps)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name}: expected a positive number, got {quote(fps)}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: must be a positive finite frame rate, got {quote(fps)}")
    if not MIN_FPS <= value <= MAX_FPS:
        raise ValueError(f"{name}: must be a plausible frame rate ({MIN_FPS:g} to {MAX_FPS:g} "
                         f"frames/s), got {value:.6g}")
    return value


def check_rotation_matrices(R: torch.Tensor, name: str, atol: float = 1e-3) -> None:
    """Raise if ``R`` (..., 3, 3) is not a batch of proper rotations (R^T R = I, det = +1)."""
    check_shape(R, name, (3, 3))
    check_finite(R, name)
    if R.numel() == 0:
        return
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    ortho_err = (R.transpose(-1, -2) @ R - eye).abs().amax()
    if ortho_err > atol:
        raise ValueError(
            f"{name}: not rotation matrices (R^T R differs from I by up to {ortho_err:.3g})"
        )
    det = torch.linalg.det(R)
    if (det < 0).any():
        raise ValueError(f"{name}: contains reflections (determinant -1), not rotations")
