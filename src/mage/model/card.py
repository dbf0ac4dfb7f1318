"""The model card: parameters, FLOPs and memory of a MAGE model, and a rough timing.

FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` on one batch-1
window: matrix products and attention only (2 per multiply-add), elementwise ops (norms,
activations, the DDIM update) are not counted. Memory is counted from tensor sizes:
the weights (parameters + buffers) and the activations one no-grad network call
produces (their sum, an upper bound of the working memory, and the largest one).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from mage.core.constants import CONDITION_DIM, NUM_JOINTS, ROT6D_DIM
from mage.model.config import check_steps
from mage.model.mage_model import MageModel
from mage.model.onednn import onednn_linear
from mage.model.pipeline import MagePipeline


@dataclass
class ModelCard:
    parameters: dict[str, int]  # per stage, "time_embed" (gradual), "total"
    window: int  # N, frames per window
    steps: int  # DDIM steps per sample
    flops_per_call: int  # one denoising step of one window (sequential: of every stage)
    flops_per_call_by_stage: dict[str, int]
    flops_per_window: int  # one whole sample (steps x per call)
    flops_per_frame_offline: float  # non-overlapping windows: per window / N
    flops_per_frame_online: int  # one causal window sampled per output frame
    weights_bytes: int
    activations_bytes_total: int  # all activations of one network call, batch 1
    activations_bytes_largest: int

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        """Human-readable lines."""
        lines = ["parameters:"]
        lines += [f"  {k:<11} {v:>12,}" for k, v in self.parameters.items()]
        lines += [
            f"window: {self.window} frames, DDIM steps: {self.steps}",
            (f"FLOPs per denoising call (batch 1): {_si(self.flops_per_call)}"
             + "".join(f"\n  {k:<11} {_si(v)}" for k, v in self.flops_per_call_by_stage.items())),
            f"FLOPs per window ({self.steps} steps): {_si(self.flops_per_window)}",
            (f"FLOPs per output frame: offline {_si(self.flops_per_frame_offline)} "
             f"(non-overlapping windows), online {_si(self.flops_per_frame_online)} (one window per frame)"),
            (f"memory: weights {_mib(self.weights_bytes)}, activations of one call "
             f"{_mib(self.activations_bytes_total)} in total, largest {_mib(self.activations_bytes_largest)}"),
        ]
        return "\n".join(lines)


class _ActivationBytes(TorchDispatchMode):
    """Sums the bytes of every new tensor an op produces (outputs that alias an input,
    i.e. views and in-place results, are not new memory)."""

    def __init__(self):
        super().__init__()
        self.total = 0
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_flatten((args, kwargs))[0]
                  if isinstance(t, torch.Tensor)}
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in inputs:
                nbytes = t.untyped_storage().nbytes()
                self.total += nbytes
                self.largest = max(self.largest, nbytes)
        return out


def _step_calls(model: MageModel) -> dict[str, Callable[[], object]]:
    """The network calls of one denoising step of one batch-1 window, by name: {"all":
    denoise} in gradual mode, one call per stage ({scale: ...}) in sequential mode."""
    p = next(model.parameters())
    N, cfg = model.window, model.config
    cond = torch.zeros(1, N, CONDITION_DIM, device=p.device, dtype=p.dtype)
    t = torch.full((1,), cfg.train_timesteps - 1, dtype=torch.long, device=p.device)
    if cfg.mode == "gradual":
        x = torch.zeros(1, N, NUM_JOINTS, ROT6D_DIM, device=p.device, dtype=p.dtype)
        return {"all": lambda: model.denoise(x, t, cond)}
    calls, prev = {}, None
    for scale, stage in model.net.stages.items():
        x = torch.zeros(1, N, stage.nodes, stage.dim, device=p.device, dtype=p.dtype)
        calls[scale] = lambda scale=scale, x=x, prev=prev: model.denoise(x, t, cond, scale, prev)
        prev = torch.zeros_like(x)
    return calls


@torch.no_grad()
def model_card(model: MageModel, steps: int | None = None) -> ModelCard:
    """Parameters, FLOPs and memory of ``model`` (batch 1, one window, ``steps`` DDIM
    steps: default the config's; ValueError unless >= 1)."""
    steps = check_steps(steps) or model.config.sampling_steps
    was_training = model.training
    model.eval()
    by_stage: dict[str, int] = {}
    tracker = _ActivationBytes()
    # torch's default kernel throughout: FlopCounterMode counts aten's matrix products
    # only, and the activation bytes stay those of the reference kernel
    with onednn_linear(False):
        for name, call in _step_calls(model).items():
            counter = FlopCounterMode(display=False)
            with counter:
                call()
            if name == "all":  # gradual: split the one call by the stage sub-modules
                per_module = {k: sum(ops.values()) for k, ops in counter.get_flop_counts().items()}
                for scale in model.config.scales:
                    by_stage[scale] = sum(v for k, v in per_module.items() if k.endswith(f"stages.{scale}"))
                by_stage["time_embed"] = counter.get_total_flops() - sum(by_stage.values())
            else:
                by_stage[name] = counter.get_total_flops()
            with tracker:
                call()
    model.train(was_training)
    total = sum(by_stage.values())
    per_window = steps * total
    weights = sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])
    return ModelCard(
        parameters=model.count_parameters(), window=model.window, steps=steps,
        flops_per_call=total, flops_per_call_by_stage=by_stage, flops_per_window=per_window,
        flops_per_frame_offline=per_window / model.window, flops_per_frame_online=per_window,
        weights_bytes=weights, activations_bytes_total=tracker.total,
        activations_bytes_largest=tracker.largest,
    )


@torch.no_grad()
def time_sampling(model: MageModel, batch: int = 1, repeats: int = 30, steps: int | None = None,
                  warmup: int = 3) -> dict[str, float]:
    """Wall-clock time of the model's pipeline ``sample`` on random conditions (a rough
    CPU/GPU figure).

    returns {"median_ms", "p95_ms", "frames_per_s"} where frames_per_s counts every frame
    of every window (the offline throughput of non-overlapping windows).
    """
    if batch < 1 or repeats < 1:
        raise ValueError(f"batch and repeats must be >= 1, got {batch}, {repeats}")
    p = next(model.parameters())
    cond = torch.randn(batch, model.window, CONDITION_DIM, device=p.device, dtype=p.dtype)
    pipeline = MagePipeline.from_model(model)
    model.eval()
    times = []
    for i in range(warmup + repeats):
        t0 = time.perf_counter()
        pipeline.sample(cond, noise=i, steps=steps)
        if p.device.type == "cuda":  # kernels are asynchronous; wait before reading the clock
            torch.cuda.synchronize(p.device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    times.sort()
    median = statistics.median(times)
    return {"median_ms": median * 1e3,
            "p95_ms": times[min(len(times) - 1, round(0.95 * (len(times) - 1)))] * 1e3,
            "frames_per_s": batch * model.window / median}


def _si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}FLOP"
    return f"{x:.3g} FLOP"


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB"
