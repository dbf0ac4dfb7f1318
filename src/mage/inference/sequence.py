"""Whole-sequence prediction: offline (overlapping windows, blended) and online (causal).

The sampler (a ``MageModel``, whose pipeline is used, a ``MagePipeline`` or an ONNX
``OnnxMageModel``) sees fixed windows of ``N = window`` condition rows and returns the
local 6D rotations of the 22 joints for every frame of the window. Row t of the
condition describes tracking frame t + 1 (``Tracking.condition`` drops frame 0, which
has no velocity), so T tracking frames give T - 1 rows and predictions for frames
1..T-1. :func:`predict_motion` gives frame 0 the prediction of frame 1 (repeated).

Noise: one draw per sampled state from ``seed`` (``draw_noise(seed)`` of the pipeline,
``(N, 22, 6)`` for a gradual model, one per scale for a sequential one) is shared by
every window. DDIM sampling is deterministic given its noise, so the prediction is a
fixed, smooth function of the condition window: overlapping windows agree more
closely, and the online output does not flicker from a fresh noise draw every frame.

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
from mage.core.constants import CONDITION_DIM, HEAD_JOINT, NUM_JOINTS, ROT6D_DIM
from mage.core.kinematics import place_by_head
from mage.core.motion import Motion
from mage.core.skeleton import Skeleton
from mage.core.tracking import Tracking
from mage.inference import MODEL_FPS
from mage.inference.options import SamplingOptions, check_options
from mage.model.pipeline import as_sampler, model_device


def sample_windows(sampler, windows: torch.Tensor, noise: dict[str, torch.Tensor], steps: int | None,
                   batch_size: int) -> torch.Tensor:
    """Run ``sampler.sample`` on (W, N, 54) windows in batches -> (W, N, 22, 6)."""
    out = []
    for i in range(0, windows.shape[0], batch_size):
        out.append(sampler.sample(windows[i:i + batch_size], noise=noise, steps=steps))
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


def predict_sequence(model, cond: torch.Tensor, options: SamplingOptions = SamplingOptions()) -> torch.Tensor:
    """Local 6D rotations for every condition row.

    model: a MageModel, a MagePipeline or an OnnxMageModel (anything with ``window``,
    ``draw_noise(seed)`` and ``sample(cond (B, N, 54), noise, steps) -> (B, N, 22, 6)``).
    cond: (T, 54) condition rows (:func:`mage.core.tracking.sparse_condition`).
    options: :class:`~mage.inference.options.SamplingOptions`: ``mode`` "offline"
    (blended overlapping windows) or "online" (causal, last frame); ``steps``, ``seed``;
    ``overlap`` (offline only, 0..N//2, default N//4: measured on cmu-small's held-out
    split, fewer shared rows cost less but raise the jitter, 0 by ~13%, in the latency
    benchmark); ``batch_size`` windows per network call; ``consistency`` (online only,
    the Streamer applies the same rule); ``precision`` for a torch MageModel.
    returns: (T, 22, 6) normalised 6D (first two columns of rotations), float32, on
    the model's device. Deterministic for a given seed, whatever the global random state.
    ValueError for a bad ``cond`` or an overlap over half the model's window.
    """
    check_options(options)
    check_shape(cond, "cond", (CONDITION_DIM,))
    if cond.dim() != 2 or cond.shape[0] < 1:
        raise ValueError(f"cond: expected shape (T, {CONDITION_DIM}) with T >= 1, got {tuple(cond.shape)}")
    check_finite(cond, "cond")
    sampler = as_sampler(model, options.precision)
    N = int(sampler.window)
    overlap = N // 4 if options.overlap is None else options.overlap
    if overlap > N // 2:
        raise ValueError(f"overlap: must be in [0, {N // 2}] (half the window of {N}), got {overlap}")
    device = model_device(model)
    cond = cond.to(device=device, dtype=torch.float32)
    T = cond.shape[0]
    noise = {scale: z.to(device) for scale, z in sampler.draw_noise(options.seed).items()}  # (N, n, d) each
    module = model if isinstance(model, torch.nn.Module) else getattr(sampler, "model", None)
    is_module = isinstance(module, torch.nn.Module)  # not for an OnnxMageModel
    was_training = is_module and module.training
    if is_module:
        module.eval()
    run = lambda windows: sample_windows(sampler, windows, noise, options.steps, options.batch_size)  # noqa: E731
    try:
        with torch.inference_mode():
            if options.mode == "online":
                out = _online(run, cond, N, options.batch_size, options.consistency)
            elif T <= N:
                padded = torch.cat([cond[:1].expand(N - T, -1), cond])
                out = run(padded[None])[0, N - T:]
            else:
                out = _offline_blend(run, cond, N, overlap)
            return rot.normalize_rot6d(out.float())
    finally:
        if is_module:
            module.train(was_training)


def carry_consistency(last: torch.Tensor, previous_estimate: torch.Tensor,
                      previous_output: torch.Tensor | None, consistency: float) -> torch.Tensor:
    """y[t] = last + consistency * (y[t-1] - previous_estimate) (:data:`mage.inference.options.ONLINE_CONSISTENCY`);
    ``last`` when there is no previous output. Tensors (..., 22, 6), raw 6D."""
    if previous_output is None or consistency == 0:
        return last
    return last + consistency * (previous_output - previous_estimate)


def _online(run, cond: torch.Tensor, N: int, batch_size: int, consistency: float) -> torch.Tensor:
    """(T, 54) -> (T, 22, 6): row t is the last frame of the causal window of rows
    t-N+1..t (front-padded with row 0), carried by :func:`carry_consistency`."""
    T, device = cond.shape[0], cond.device
    idx = (torch.arange(T, device=device)[:, None] - N + 1
           + torch.arange(N, device=device)[None]).clamp(min=0)  # (T, N) row numbers
    tail = torch.cat([run(cond[idx[i:i + batch_size]])[:, -2:] for i in range(0, T, batch_size)])  # (T, 2, 22, 6)
    if consistency == 0:
        return tail[:, 1]
    out = torch.empty_like(tail[:, 1])
    previous = None
    for t in range(T):  # sequential by nature: each frame carries the previous output
        out[t] = previous = carry_consistency(tail[t, 1], tail[t, 0], previous, consistency)
    return out


def _offline_blend(run, cond: torch.Tensor, N: int, overlap: int) -> torch.Tensor:
    """(T, 54) with T > N -> (T, 22, 6): overlapping windows, cross-faded."""
    T, device = cond.shape[0], cond.device
    starts = window_starts(T, N, overlap)
    idx = torch.tensor(starts, device=device)[:, None] + torch.arange(N, device=device)  # (W, N)
    pred = run(cond[idx])  # (W, N, 22, 6)
    w = blend_weights(starts, N, overlap).to(device=device, dtype=pred.dtype)
    out = torch.zeros(T, NUM_JOINTS, ROT6D_DIM, device=device, dtype=pred.dtype)
    out.index_add_(0, idx.reshape(-1), (pred * w[..., None, None]).reshape(-1, NUM_JOINTS, ROT6D_DIM))
    return out


def predict_motion(model, tracking: Tracking, options: SamplingOptions = SamplingOptions(),
                   skeleton: Skeleton | None = None) -> Motion:
    """Full-body motion for a tracking sequence (same T frames as ``tracking``).

    Frames 1..T-1 are predicted (:func:`predict_sequence` with ``options``); frame 0 has
    no condition row and repeats the rotations of frame 1. Placement as the protocol does
    (:func:`mage.core.kinematics.place_by_head`): FK on ``skeleton`` (default SMPL
    neutral), translated so that the head joint lands on the tracked head. ValueError
    for tracking at another rate than the model's (:data:`mage.inference.MODEL_FPS`).
    """
    if abs(tracking.fps - MODEL_FPS) > 1e-6:
        raise ValueError(
            f"tracking: {tracking.fps:g} fps, the model expects {MODEL_FPS:g}; resample first "
            "(Motion.resample, or mage.inference.tracking_log.to_tracking for logs)"
        )
    skeleton = skeleton or Skeleton.smpl22()
    d6 = predict_sequence(model, tracking.condition(), options).cpu()
    R = rot.rot6d_to_matrix(torch.cat([d6[:1], d6]))  # (T, 22, 3, 3), frame 0 = frame 1
    _, trans = place_by_head(R, tracking.positions[:, 0].to(R), skeleton, HEAD_JOINT)
    return Motion(R, trans, tracking.fps, skeleton, meta={"predicted": options.mode})


def model_predict_fn(model, options: SamplingOptions = SamplingOptions()):
    """A trained model as the ``predict_fn`` of :func:`mage.evaluate.protocol.evaluate`:
    (condition (T, 54), head positions (T, 3)) -> (T, 22, 3, 3) float64 local rotations
    on the CPU, via :func:`predict_sequence` with ``options`` (the head positions are not
    used: the protocol places the body itself). The condition is moved to the model's
    device.
    """
    check_options(options)
    device = model_device(model)

    def predict(condition: torch.Tensor, head_positions: torch.Tensor) -> torch.Tensor:
        d6 = predict_sequence(model, condition.to(device), options)
        return rot.rot6d_to_matrix(torch.as_tensor(d6).detach().cpu().double())

    return predict


__all__ = ["predict_sequence", "predict_motion", "model_predict_fn", "window_starts", "blend_weights"]
