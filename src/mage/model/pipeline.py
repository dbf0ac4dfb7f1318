"""The pipelines: the denoiser, the DDIM scheduler and the one sampling loop.

Like diffusers' ``DDIMPipeline``: the network (``MageModel``, or any other backend) is
reached through a **denoise function**, the scheduler does the math, and the loop that
calls one, then the other, exists once, in :meth:`MagePipeline.sample`:

    denoise(x_t (B, N, n, d), t (B,) int64, cond (B, N, 54) raw, scale, prev) -> x0 (B, N, n, d)

One pipeline per design, chosen by ``config.mode``:

- ``GradualPipeline``: one network; the loop denoises the 22-joint state ("S3") and the
  coarse stages run inside each network call.
- ``SequentialPipeline``: one diffusion model per scale; the loop denoises each scale's
  state in turn, coarse to fine, each conditioned on the previous scale's sample.

Each pipeline owns its ``training_loss(batch)`` (the torch backend only) and
``sample(cond, noise)``. **Noise** is one specification for every stage:

- a seed (int): each sampled state's initial noise (N, n, d) is drawn from a CPU
  generator seeded with it, the final state ("S3") first, then the coarse ones coarse to
  fine (so a gradual model's noise is ``torch.randn(N, 22, 6)`` of that seed); the same
  noise serves every window of the batch, and eta > 0 draws its per-step noise from the
  same generator. Nothing comes from torch's global random state.
- tensors: ``{scale: (N, n, d) or (B, N, n, d)}`` for every sampled state, or one tensor
  for the gradual design (its only state, "S3").

Same seed (or tensors), same condition -> bit-identical output, whatever the design or
the backend and whatever else has drawn random numbers.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Callable, Mapping
from numbers import Integral
from typing import Union

import torch

from mage.core import rotations as rot
from mage.core.constants import CONDITION_DIM, NODE_DIM, NUM_JOINTS, ROT6D_DIM
from mage.core.skeleton import Skeleton
from mage.model.config import PRECISIONS, MageConfig
from mage.model.losses import multiscale_loss, pooled_targets
from mage.model.mage_model import MageModel
from mage.model.onednn import convert_linears
from mage.model.scheduler import DDIMScheduler

Noise = Union[int, torch.Tensor, Mapping[str, torch.Tensor]]
DenoiseFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, str, "torch.Tensor | None"], torch.Tensor]


def model_device(model) -> torch.device:
    """The device a model, pipeline or ONNX wrapper computes on: its ``device``
    attribute, else its first parameter's, else the CPU."""
    dev = getattr(model, "device", None)
    if isinstance(dev, (torch.device, str)):
        return torch.device(dev)
    params = getattr(model, "parameters", None)
    if callable(params):
        for p in params():
            return p.device
    return torch.device("cpu")


class MagePipeline:
    """Sampling (and training) of one MAGE config through a denoise function.

    Build one with :meth:`from_model` (a torch ``MageModel``) or :meth:`from_denoise`
    (any backend's denoise function, e.g. an ONNX session's). ``model`` is the torch
    model when there is one (``training_loss`` needs it), else None.
    """

    #: the states the loop denoises, in order (set by the subclasses)
    sampled_scales: tuple[str, ...] = ()

    def __init__(self, config: MageConfig, denoise: DenoiseFn, model=None, precision: str = "fp32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.config = config
        self.precision = precision  # one of PRECISIONS; "bf16" is applied in sample()
        self.denoise = denoise
        self.model = model
        self.scheduler = DDIMScheduler(config.train_timesteps, config.timestep_spacing)
        self.hierarchy = config.hierarchy()  # the coarse scales' groups, for the losses
        self.skeleton = Skeleton.smpl22()  # FK in the losses (zero translation)

    # --- construction -------------------------------------------------------------
    @staticmethod
    def from_denoise(config: MageConfig, denoise: DenoiseFn, model=None, precision: str = "fp32") -> MagePipeline:
        """The pipeline of ``config.mode`` around a denoise function."""
        cls = GradualPipeline if config.mode == "gradual" else SequentialPipeline
        return cls(config, denoise, model, precision)

    @staticmethod
    def from_model(model, precision: str = "fp32") -> MagePipeline:
        """The pipeline of a torch ``MageModel`` (denoise = ``model.denoise``).
        precision: "fp32" (the default), "bf16" or "int8" (see ``PRECISIONS``)."""
        if precision == "int8":
            model = _int8_feedforward(model)
        return MagePipeline.from_denoise(model.config, model.denoise, model, precision)

    @property
    def window(self) -> int:
        return self.config.window

    @property
    def device(self) -> torch.device:
        return model_device(self.model) if self.model is not None else torch.device("cpu")

    # --- noise --------------------------------------------------------------------
    def state_shape(self, scale: str) -> tuple[int, int]:
        """(nodes, values per node) of a sampled state: (22, 6) for S3, (n, 9) coarser."""
        return (NUM_JOINTS, ROT6D_DIM) if scale == "S3" else (self.config.num_nodes(scale), NODE_DIM)

    def draw_noise(self, seed: int) -> dict[str, torch.Tensor]:
        """The initial noise of ``seed``: {scale: (N, n, d)} float32 CPU, in the order the
        module docstring gives (the final state first)."""
        return _SeededNoise(int(seed), self).initial

    def initial_noise(self, noise: Noise, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """{scale: (B, N, n, d)} initial noise of a specification, for a batch like
        ``like`` (B, N, 54) (its device and dtype)."""
        return self._noise_source(noise, like.shape[0], like).initial

    def _noise_source(self, noise: Noise, batch: int, like: torch.Tensor):
        if isinstance(noise, bool) or not isinstance(noise, (Integral, torch.Tensor, Mapping)):
            raise ValueError(f"noise: expected a seed (int) or tensors, got {type(noise).__name__}")
        if isinstance(noise, Integral):
            return _SeededNoise(int(noise), self, batch, like)
        return _GivenNoise(noise, self, batch, like)

    # --- sampling: the one loop -----------------------------------------------------
    @torch.no_grad()
    def sample(self, cond: torch.Tensor, noise: Noise = 0, steps: int | None = None) -> torch.Tensor:
        """DDIM sampling: the last x0, (B, N, 22, 6), projected to valid 6D.

        cond: (B, N, 54) raw condition; noise: a seed or tensors (module docstring);
        steps: DDIM steps (default config.sampling_steps). Each sampled state starts at
        its noise times config.init_noise_scale.
        """
        cfg = self.config
        if cond.dim() != 3 or tuple(cond.shape[1:]) != (self.window, CONDITION_DIM):
            raise ValueError(f"cond: expected (B, {self.window}, {CONDITION_DIM}), got {tuple(cond.shape)}")
        B = cond.shape[0]
        pairs = self.scheduler.step_pairs(cfg.sampling_steps if steps is None else steps)
        source = self._noise_source(noise, B, cond)
        x = prev = None
        for scale in self.sampled_scales:
            x = source.initial[scale] * cfg.init_noise_scale
            for t, t_prev in pairs:
                tt = torch.full((B,), t, dtype=torch.long, device=cond.device)
                with self._autocast(cond):
                    x0 = self.denoise(x, tt, cond, scale, prev).to(x.dtype)
                z = source.variance(scale) if cfg.eta > 0 else None
                x = self.scheduler.step(x0, t, t_prev, x, eta=cfg.eta, variance_noise=z).prev_sample
            prev = x
        return rot.normalize_rot6d(x)

    def _autocast(self, like: torch.Tensor):
        if self.precision != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(like.device.type, dtype=torch.bfloat16)

    # --- training -------------------------------------------------------------------
    def training_loss(self, batch: dict[str, torch.Tensor],
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Diffusion training loss on a batch {"x0": (B, N, 22, 6) ground-truth local
        6D, "cond": (B, N, 54) raw condition}; generator: the timesteps and noise (on
        x0's device). Returns {"loss": scalar with grad, plus detached per-term entries}."""
        if self.model is None:
            raise ValueError("training_loss: this pipeline has no torch model (build it with "
                             "MagePipeline.from_model)")
        x0, cond = batch["x0"], batch["cond"]
        self.model.check_inputs(cond, x0)
        predictions = self._stage_predictions(x0, self.model.normalize_condition(cond), generator)
        return multiscale_loss(predictions, x0, self.config, self.hierarchy, self.skeleton)

    def _stage_predictions(self, x0, cond_n, generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _noised(self, target: torch.Tensor, generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_t, t): ``target`` noised at uniformly drawn timesteps (B,)."""
        t = self.scheduler.sample_timesteps(target.shape[0], target.device, generator)
        noise = torch.randn(target.shape, generator=generator, device=target.device, dtype=target.dtype)
        return self.scheduler.add_noise(target, noise, t), t


class GradualPipeline(MagePipeline):
    """One network whose stages are chained inside each call (the paper's design)."""

    sampled_scales = ("S3",)

    def _stage_predictions(self, x0, cond_n, generator):
        x_t, t = self._noised(x0, generator)
        return self.model.net(x_t, t, cond_n).states


class SequentialPipeline(MagePipeline):
    """One diffusion model per scale, sampled coarse to fine (the ablation)."""

    @property
    def sampled_scales(self) -> tuple[str, ...]:
        return self.config.scales

    def _stage_predictions(self, x0, cond_n, generator):
        # Each stage is trained on its own noisy state, conditioned on the ground truth
        # of the previous scale (teacher forcing).
        targets, _ = pooled_targets(x0, self.config.scales, self.hierarchy, self.skeleton)
        targets["S3"] = x0
        predictions, prev = {}, None
        for scale, stage in self.model.net.stages.items():
            x_t, t = self._noised(targets[scale], generator)
            predictions[scale] = stage(x_t, t, cond_n, prev)
            prev = targets[scale]
        return predictions


def as_sampler(model_or_pipeline, precision: str = "fp32"):
    """Anything with ``window``, ``draw_noise(seed)`` and ``sample(cond, noise, steps)``:
    a torch ``MageModel`` becomes its pipeline (of ``precision``); pipelines, ONNX
    wrappers (and test stand-ins) are kept, and keep their own precision."""
    if isinstance(model_or_pipeline, MageModel):
        return MagePipeline.from_model(model_or_pipeline, precision)
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "fp32" and getattr(model_or_pipeline, "precision", "fp32") != precision:
        raise ValueError(f"precision={precision!r} applies to a torch MageModel; this sampler "
                         f"({type(model_or_pipeline).__name__}) runs in its own precision")
    return model_or_pipeline


def _int8_feedforward(model: MageModel) -> MageModel:
    """An inference copy of ``model`` (CPU) whose feature-MLP Linears (``*.ff.fc1/fc2``, most
    of the FLOPs) run with dynamic int8 quantisation (``torch.ao.quantization``). The
    fusion, frame-mixing and head layers stay float32: quantising the fusion too (raw
    condition channels of very different scales, one activation scale per tensor) made
    cmu-small's held-out MPJPE 65% worse, the feature MLPs alone changed it by < 0.1%."""
    if model_device(model).type != "cpu":
        raise ValueError("precision='int8': dynamic int8 quantisation runs on the CPU; move the model "
                         "to the CPU or use precision='bf16'")
    model = copy.deepcopy(model).eval()
    names = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and ".ff." in n}
    convert_linears(model, torch.nn.Linear, names)  # quantize_dynamic swaps plain nn.Linear only
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return torch.ao.quantization.quantize_dynamic(model, names, dtype=torch.qint8)


# --- noise sources ----------------------------------------------------------------------
def _order(pipeline: MagePipeline) -> list[str]:
    """The final state first, then the coarse ones coarse to fine."""
    scales = list(pipeline.sampled_scales)
    return [scales[-1]] + scales[:-1]


class _SeededNoise:
    """All of a sample's noise from one CPU generator: per-window (N, n, d) draws,
    the same for every window of the batch."""

    def __init__(self, seed: int, pipeline: MagePipeline, batch: int | None = None,
                 like: torch.Tensor | None = None):
        self.generator = torch.Generator().manual_seed(seed)
        self.pipeline, self.batch, self.like = pipeline, batch, like
        self.initial = {s: self._draw(s) for s in _order(pipeline)}

    def _draw(self, scale: str) -> torch.Tensor:
        z = torch.randn(self.pipeline.window, *self.pipeline.state_shape(scale), generator=self.generator)
        if self.like is None:
            return z
        return z.to(self.like.device, self.like.dtype).expand(self.batch, *z.shape).contiguous()

    def variance(self, scale: str) -> torch.Tensor:
        return self._draw(scale)


class _GivenNoise:
    """The caller's tensors: {scale: (N, n, d) or (B, N, n, d)}, or one tensor (gradual)."""

    def __init__(self, noise, pipeline: MagePipeline, batch: int, like: torch.Tensor):
        scales = pipeline.sampled_scales
        if isinstance(noise, torch.Tensor):
            if len(scales) != 1:
                raise ValueError(f"noise: a {pipeline.config.mode} model samples {list(scales)}; pass "
                                 "a seed or a dict of tensors keyed by those scales")
            noise = {scales[0]: noise}
        missing = [s for s in scales if s not in noise]
        unknown = sorted(set(noise) - set(scales))
        if missing or unknown:
            raise ValueError(f"noise: expected tensors for the scales {list(scales)}, "
                             f"missing {missing}, unknown {unknown}")
        self.initial = {}
        for scale in scales:
            want = (pipeline.window, *pipeline.state_shape(scale))
            z = noise[scale]
            if tuple(z.shape) not in (want, (batch, *want)):
                raise ValueError(f"noise[{scale!r}]: expected shape {want} or {(batch, *want)}, "
                                 f"got {tuple(z.shape)}")
            z = z.to(like.device, like.dtype)
            self.initial[scale] = z.expand(batch, *want) if z.dim() == 3 else z

    def variance(self, scale: str) -> torch.Tensor:
        raise ValueError("noise: eta > 0 draws fresh noise at every step; pass a seed, not tensors")
