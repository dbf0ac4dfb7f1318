"""``MageModel``: the MAGE denoiser(s) + scheduler + losses + sampling loop.

The network (``mage.model.network``) holds the weights; the scheduler
(``mage.model.scheduler``) holds the diffusion math; this module is the pipeline that
chains them (diffusers' model / scheduler / pipeline split), plus the condition
normalisation, which lives in the model as buffers so that checkpoints and ONNX exports
carry it.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from mage.core.checks import check_finite, check_shape
from mage.core.rotations import matrix_to_rot6d, rot6d_to_matrix
from mage.core.skeleton import Skeleton
from mage.core.tracking import CONDITION_DIM
from mage.model.config import MageConfig
from mage.model.losses import multiscale_loss, pooled_targets
from mage.model.network import GradualDenoiser, SequentialDenoiser
from mage.model.scheduler import DDIMScheduler

J = 22


class MageModel(nn.Module):
    """Full-body motion (B, N, 22, 6) from the sparse condition (B, N, 54) by diffusion.

    config: the MageConfig it was built from; window: N, the frames per window.
    Inputs are raw conditions (``mage.core.tracking.sparse_condition``); the model
    normalises them with its ``cond_mean`` / ``cond_std`` buffers (identity until
    ``set_normalization``). Everything runs on the device of the module and inputs.
    """

    def __init__(self, cfg: MageConfig):
        super().__init__()
        if not isinstance(cfg, MageConfig):
            raise ValueError(f"cfg: expected a MageConfig, got {type(cfg).__name__}")
        self.config = cfg
        self.hierarchy = cfg.hierarchy()  # validates nesting of the groups
        self.skeleton = Skeleton.smpl22()
        self.scheduler = DDIMScheduler(cfg.train_timesteps, cfg.timestep_spacing)
        self.register_buffer("cond_mean", torch.zeros(CONDITION_DIM))
        self.register_buffer("cond_std", torch.ones(CONDITION_DIM))
        self.net = GradualDenoiser(cfg) if cfg.mode == "gradual" else SequentialDenoiser(cfg)

    @property
    def window(self) -> int:
        return self.config.window

    # --- condition normalisation --------------------------------------------------
    def set_normalization(self, cond_mean: torch.Tensor, cond_std: torch.Tensor) -> None:
        """Set the per-channel condition statistics, each (54,); std must be > 0."""
        for name, v in (("cond_mean", cond_mean), ("cond_std", cond_std)):
            v = torch.as_tensor(v)
            if v.shape != (CONDITION_DIM,):
                raise ValueError(f"{name}: expected shape ({CONDITION_DIM},), got {tuple(v.shape)}")
            check_finite(v, name)
        cond_std = torch.as_tensor(cond_std)
        if (cond_std <= 0).any():
            raise ValueError("cond_std: every entry must be > 0 (clamp constant channels first)")
        self.cond_mean.copy_(torch.as_tensor(cond_mean))
        self.cond_std.copy_(cond_std)

    def normalize_condition(self, cond: torch.Tensor) -> torch.Tensor:
        return (cond - self.cond_mean) / self.cond_std

    def _check_inputs(self, cond: torch.Tensor, x: torch.Tensor | None = None, x_name: str = "x0") -> None:
        check_shape(cond, "cond", (self.window, CONDITION_DIM))
        if cond.dim() != 3:
            raise ValueError(f"cond: expected (B, {self.window}, {CONDITION_DIM}), got {tuple(cond.shape)}")
        if x is not None:
            want = (cond.shape[0], self.window, J, 6)
            if tuple(x.shape) != want:
                raise ValueError(f"{x_name}: expected shape {want}, got {tuple(x.shape)}")

    # --- the network call ---------------------------------------------------------
    def denoise(self, x_t: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor) -> torch.Tensor:
        """One network call (gradual mode): x0 prediction (B, N, 22, 6).

        x_t: (B, N, 22, 6) noisy sample; t: (B,) int timesteps or an int; cond: (B, N, 54)
        raw condition. This is the graph to export to ONNX (normalisation included).
        """
        if self.config.mode != "gradual":
            raise ValueError("denoise: mode='sequential' has one network per stage and no "
                             "single denoising call; use sample() (or a gradual config)")
        self._check_inputs(cond, x_t, "x_t")
        t = torch.as_tensor(t, device=cond.device).long().expand(cond.shape[0])
        return self.net(x_t, t, self.normalize_condition(cond)).x0

    # --- training -----------------------------------------------------------------
    def training_loss(self, x0: torch.Tensor, cond: torch.Tensor,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Diffusion training loss on a batch of windows.

        x0: (B, N, 22, 6) ground-truth local 6D rotations; cond: (B, N, 54) raw condition;
        generator: for the timesteps and noise (on x0's device).
        returns {"loss": scalar with grad, plus detached per-term entries}.
        """
        self._check_inputs(cond, x0)
        B = x0.shape[0]
        cond_n = self.normalize_condition(cond)
        sched = self.scheduler
        if self.config.mode == "gradual":
            t = sched.sample_timesteps(B, x0.device, generator)
            noise = torch.randn(x0.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            out = self.net(sched.add_noise(x0, noise, t), t, cond_n)
            return multiscale_loss(out.states, x0, self.config, self.hierarchy, self.skeleton)
        # Sequential: each stage is its own diffusion model, trained on its own noisy
        # state and conditioned on the ground truth of the previous scale (teacher forcing).
        targets, _ = pooled_targets(x0, self.config.scales, self.hierarchy, self.skeleton)
        targets["S3"] = x0
        predictions, prev = {}, None
        for scale, stage in self.net.stages.items():
            target = targets[scale]
            t = sched.sample_timesteps(B, x0.device, generator)
            noise = torch.randn(target.shape, generator=generator, device=x0.device, dtype=x0.dtype)
            predictions[scale] = stage(sched.add_noise(target, noise, t), t, cond_n, prev)
            prev = target
        return multiscale_loss(predictions, x0, self.config, self.hierarchy, self.skeleton)

    # --- sampling -----------------------------------------------------------------
    @torch.no_grad()
    def sample(self, cond: torch.Tensor, steps: int | None = None,
               generator: torch.Generator | None = None, noise: torch.Tensor | None = None) -> torch.Tensor:
        """DDIM sampling: the x0 after the last step, (B, N, 22, 6), projected to valid
        6D (the first two columns of a rotation matrix).

        cond: (B, N, 54) raw condition; steps: DDIM steps (default config.sampling_steps);
        generator: draws the initial noise (and eta > 0 noise), on cond's device;
        noise: (B, N, 22, 6) standard-normal initial sample instead of drawing one (in
        sequential mode it is the final stage's; the coarse stages draw theirs).
        The initial sample is noise * config.init_noise_scale. Same generator seed ->
        identical output.
        """
        self._check_inputs(cond, noise, "noise")
        cfg = self.config
        sched = copy.copy(self.scheduler)  # own timesteps: concurrent calls do not interfere
        timesteps = sched.set_timesteps(cfg.sampling_steps if steps is None else steps).tolist()
        cond_n = self.normalize_condition(cond)
        B, N, _ = cond.shape

        def initial(shape, given=None):
            x = given if given is not None else torch.randn(
                shape, generator=generator, device=cond.device, dtype=cond.dtype)
            return x * cfg.init_noise_scale

        def run(x, predict_x0):
            for t in timesteps:
                tt = torch.full((B,), t, dtype=torch.long, device=cond.device)
                x = sched.step(predict_x0(x, tt), t, x, eta=cfg.eta, generator=generator).prev_sample
            return x

        if cfg.mode == "gradual":
            x = run(initial((B, N, J, 6), noise), lambda x, tt: self.net(x, tt, cond_n).x0)
        else:
            prev = None
            for scale, stage in self.net.stages.items():
                given = noise if scale == "S3" else None
                x = run(initial((B, N, stage.nodes, stage.dim), given),
                        lambda x, tt, stage=stage, prev=prev: stage(x, tt, cond_n, prev))
                prev = x
        return matrix_to_rot6d(rot6d_to_matrix(x))

    # --- introspection ------------------------------------------------------------
    def count_parameters(self) -> dict[str, int]:
        """Trainable parameters per stage (keyed by scale), "time_embed" (gradual: shared
        by the stages; sequential: counted in each stage) and "total"."""
        counts: dict[str, int] = {}
        if self.config.mode == "gradual":
            counts["time_embed"] = _numel(self.net.time_embed)
        for scale, stage in self.net.stages.items():
            counts[scale] = _numel(stage)
        counts["total"] = _numel(self)
        return counts


def _numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
