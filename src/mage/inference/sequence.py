"""Whole-sequence prediction: offline (overlapping windows, blended) and online (causal).

The model sees fixed windows of ``N = model.window`` condition rows and returns the
local 6D rotations of the 22 joints for every frame of the window. Row t of the
condition describes tracking frame t + 1 (``Tracking.condition`` drops frame 0, which
has no velocity), so T tracking frames give T - 1 rows and predictions for frames
1..T-1. :func:`predict_motion` gives frame 0 the prediction of frame 1 (repeated).

Noise: one draw ``(N, 22, 6)`` from ``seed`` (:func:`window_noise`) is shared by every
window. DDIM sampling is deterministic given its noise, so the prediction is a fixed,
smooth function of the condition window: overlapping windows agree more closely, and
the online output does not flicker from a fresh noise draw every frame.

Offline (``mode="offline"``): windows start every ``N - overlap`` rows, the last window
is aligned to the sequence end. In the last ``overlap`` rows of each window its weight
falls linearly while the next window's rises (weights always sum to 1), the 6D vectors
are averaged with these weights and re-orthonormalised (Gram-Schmidt). With overlap 0
this is AGRoL's non-overlapping scheme. Sequences shorter than a window are
front-padded by repeating row 0 (as AGRoL does).

Online (``mode="online"``): row t is predicted from the window of rows t-N+1..t
(front-padded with row 0), output = the window's last frame: causal, no lookahead.
This is exactly what :class:`mage.inference.streaming.Streamer` computes frame by frame.
"""

from __future__ import annotations

import torch

from mage.core import rotations as rot
from mage.core.checks import check_finite, check_shape
from mage.core.kinematics import place_by_head
from mage.core.motion import Motion
from mage.core.skeleton import Skeleton
from mage.core.tracking import CONDITION_DIM, Tracking
from mage.inference import MODEL_FPS

MODES = ("offline", "online")
NUM_JOINTS = 22


def window_noise(window: int, seed: int) -> torch.Tensor:
    """(window, 22, 6) float32 CPU standard normal noise, the same for a given seed."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randn(window, NUM_JOINTS, 6, generator=g)


def model_device(model) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def normalize_rot6d(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 6): the first two columns of the nearest Gram-Schmidt rotation."""
    return rot.matrix_to_rot6d(rot.rot6d_to_matrix(d6))


def sample_windows(model, windows: torch.Tensor, noise: torch.Tensor, steps: int | None,
                   batch_size: int) -> torch.Tensor:
    """Run ``model.sample`` on (W, N, 54) windows in batches -> (W, N, 22, 6)."""
    out = []
    for i in range(0, windows.shape[0], batch_size):
        chunk = windows[i:i + batch_size]
        z = noise.expand(chunk.shape[0], *noise.shape).contiguous()
        out.append(model.sample(chunk, steps=steps, noise=z))
    return torch.cat(out)


def window_starts(T: int, window: int, overlap: int) -> list[int]:
    """Start rows of the offline windows: every ``window - overlap``, the last at T - window."""
    if T <= window:
        return [0]
    starts = list(range(0, T - window + 1, window - overlap))
    if starts[-1] != T - window:
        starts.append(T - window)
    return starts


def blend_weights(starts: list[int], window: int, overlap: int) -> torch.Tensor:
    """(W, window) cross-fade weights; for every covered row they sum to 1.

    Window i fades out over its last ``overlap`` rows [e_i - overlap, e_i) with weight
    (e_i - f) / (overlap + 1) while window i+1 fades in with the complement; rows of
    window i+1 before that region get weight 0 (only the last, end-aligned window can
    have such rows).
    """
    W = len(starts)
    f = torch.tensor(starts, dtype=torch.float64)[:, None] + torch.arange(window, dtype=torch.float64)
    w = torch.ones(W, window, dtype=torch.float64)
    for i in range(W - 1):
        e = starts[i] + window  # end (exclusive) of window i
        fade_out = ((e - f[i]) / (overlap + 1)).clamp(max=1.0)
        w[i] = torch.minimum(w[i], fade_out)
        fade_in = ((f[i + 1] - (e - overlap) + 1) / (overlap + 1)).clamp(min=0.0, max=1.0)
        w[i + 1] = torch.minimum(w[i + 1], fade_in)
    return w


def predict_sequence(
    model,
    cond: torch.Tensor,
    mode: str = "offline",
    steps: int | None = None,
    seed: int = 0,
    overlap: int | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Local 6D rotations for every condition row.

    model: has ``window`` (N) and ``sample(cond (B, N, 54), steps, noise) -> (B, N, 22, 6)``.
    cond: (T, 54) condition rows (:func:`mage.core.tracking.sparse_condition`).
    mode: "offline" (blended overlapping windows) or "online" (causal, last frame).
    overlap: offline only, rows shared by consecutive windows, 0..N//2 (default N//4).
    returns: (T, 22, 6) normalised 6D (first two columns of rotations), float32, on
    the model's device. Deterministic for a given seed.
    """
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {mode!r}")
    check_shape(cond, "cond", (CONDITION_DIM,))
    if cond.dim() != 2 or cond.shape[0] < 1:
        raise ValueError(f"cond: expected shape (T, {CONDITION_DIM}) with T >= 1, got {tuple(cond.shape)}")
    check_finite(cond, "cond")
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    N = int(model.window)
    if overlap is None:
        overlap = N // 4
    if not 0 <= overlap <= N // 2:
        raise ValueError(f"overlap: must be in [0, {N // 2}] (half the window of {N}), got {overlap}")
    device = model_device(model)
    cond = cond.to(device=device, dtype=torch.float32)
    T = cond.shape[0]
    noise = window_noise(N, seed).to(device)
    is_module = isinstance(model, torch.nn.Module)  # or an OnnxMageModel
    was_training = is_module and model.training
    if is_module:
        model.eval()
    try:
        with torch.inference_mode():
            if mode == "online":
                # idx[t] = rows t-N+1..t, clamped at 0 (front padding with row 0).
                idx = (torch.arange(T, device=device)[:, None] - N + 1
                       + torch.arange(N, device=device)[None]).clamp(min=0)
                out = torch.cat([
                    sample_windows(model, cond[idx[i:i + batch_size]], noise, steps, batch_size)[:, -1]
                    for i in range(0, T, batch_size)
                ])
            elif T <= N:
                padded = torch.cat([cond[:1].expand(N - T, -1), cond])
                out = sample_windows(model, padded[None], noise, steps, batch_size)[0, N - T:]
            else:
                starts = window_starts(T, N, overlap)
                idx = torch.tensor(starts, device=device)[:, None] + torch.arange(N, device=device)
                pred = sample_windows(model, cond[idx], noise, steps, batch_size)  # (W, N, 22, 6)
                w = blend_weights(starts, N, overlap).to(device=device, dtype=pred.dtype)
                out = torch.zeros(T, NUM_JOINTS, 6, device=device, dtype=pred.dtype)
                out.index_add_(0, idx.reshape(-1), (pred * w[..., None, None]).reshape(-1, NUM_JOINTS, 6))
            return normalize_rot6d(out.float())
    finally:
        if is_module:
            model.train(was_training)


def predict_motion(
    model,
    tracking: Tracking,
    mode: str = "offline",
    steps: int | None = None,
    seed: int = 0,
    overlap: int | None = None,
    batch_size: int = 64,
    skeleton: Skeleton | None = None,
) -> Motion:
    """Full-body motion for a tracking sequence (same T frames as ``tracking``).

    Frames 1..T-1 are predicted (:func:`predict_sequence`); frame 0 has no condition
    row and repeats the rotations of frame 1. Placement as the protocol does
    (:func:`mage.core.kinematics.place_by_head`): FK on ``skeleton`` (default SMPL
    neutral), translated so that the head joint lands on the tracked head.
    """
    if abs(tracking.fps - MODEL_FPS) > 1e-6:
        raise ValueError(
            f"tracking: {tracking.fps:g} fps, the model expects {MODEL_FPS:g}; resample first "
            "(Motion.resample, or mage.inference.tracking_log.to_tracking for logs)"
        )
    skeleton = skeleton or Skeleton.smpl22()
    d6 = predict_sequence(model, tracking.condition(), mode, steps, seed, overlap, batch_size).cpu()
    R = rot.rot6d_to_matrix(torch.cat([d6[:1], d6]))  # (T, 22, 3, 3), frame 0 = frame 1
    _, trans = place_by_head(R, tracking.positions[:, 0].to(R), skeleton)
    return Motion(R, trans, tracking.fps, skeleton, meta={"predicted": mode})


def jerk_profile(positions: torch.Tensor, fps: float = MODEL_FPS) -> torch.Tensor:
    """(T, J, 3) positions -> (T-3,) mean over joints of |third difference| * fps^3.

    Entry t uses frames t..t+3 (the protocol's jitter, m/s^3, before averaging over time).
    """
    check_shape(positions, "positions", (None, 3))
    if positions.dim() != 3 or positions.shape[0] < 4:
        raise ValueError(f"positions: expected (T, J, 3) with T >= 4, got {tuple(positions.shape)}")
    p = positions.double()
    jerk = p[3:] - 3 * p[2:-1] + 3 * p[1:-2] - p[:-3]
    return jerk.norm(dim=-1).mean(-1) * fps**3


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


__all__ = [
    "predict_sequence", "predict_motion", "window_noise", "window_starts", "blend_weights",
    "jerk_profile", "seam_jitter", "offline_boundaries", "normalize_rot6d",
]
