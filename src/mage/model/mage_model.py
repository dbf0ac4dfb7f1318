"""``MageModel``: the MAGE denoiser network(s) with their condition normalisation.

Weights and forward only, like a diffusers model: no scheduler, no loss, no sampling
loop (those are the pipeline's, :mod:`mage.model.pipeline`). The condition statistics
are buffers here, so that checkpoints and ONNX exports carry them, and every network
call normalises the raw condition in :meth:`MageModel.denoise`, where it can be seen.

State-dict keys (what ``model.safetensors`` holds): ``cond_mean``, ``cond_std`` and
``net.*`` (the ``GradualDenoiser`` or ``SequentialDenoiser`` of ``mage.model.network``).
"""

from __future__ import annotations

import torch
from torch import nn

from mage.core.checks import check_finite, check_shape
from mage.core.constants import CONDITION_DIM, NUM_JOINTS, ROT6D_DIM
from mage.model.config import MageConfig
from mage.model.network import GradualDenoiser, SequentialDenoiser


class MageModel(nn.Module):
    """The denoiser(s) of one MAGE config, on raw conditions (B, N, 54).

    config: the MageConfig it was built from; window: N, the frames per window.
    ``net``: one ``GradualDenoiser`` (mode "gradual") or a ``SequentialDenoiser`` (one
    ``StageDenoiser`` per scale). The condition is normalised with the ``cond_mean`` /
    ``cond_std`` buffers (identity until ``set_normalization``).
    """

    def __init__(self, cfg: MageConfig):
        super().__init__()
        if not isinstance(cfg, MageConfig):
            raise ValueError(f"cfg: expected a MageConfig, got {type(cfg).__name__}")
        cfg.hierarchy()  # validates the nesting of the groups
        self.config = cfg
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
        """(B, N, 54) raw -> normalised, what the network reads."""
        return (cond - self.cond_mean) / self.cond_std

    def check_inputs(self, cond: torch.Tensor, x: torch.Tensor | None = None, x_name: str = "x0",
                     state: tuple[int, int] = (NUM_JOINTS, ROT6D_DIM)) -> None:
        """cond (B, N, 54) and, if given, x (B, N, *state) (default: 22 joints x 6D)."""
        check_shape(cond, "cond", (self.window, CONDITION_DIM))
        if cond.dim() != 3:
            raise ValueError(f"cond: expected (B, {self.window}, {CONDITION_DIM}), got {tuple(cond.shape)}")
        if x is not None:
            want = (cond.shape[0], self.window, *state)
            if tuple(x.shape) != want:
                raise ValueError(f"{x_name}: expected shape {want}, got {tuple(x.shape)}")

    # --- the network call ---------------------------------------------------------
    def denoise(self, x_t: torch.Tensor, t: torch.Tensor | int, cond: torch.Tensor,
                scale: str = "S3", prev: torch.Tensor | None = None) -> torch.Tensor:
        """One network call: the x0 prediction of the state of ``scale``, (B, N, n, d).

        x_t: (B, N, n, d) noisy state; t: (B,) int timesteps or an int; cond: (B, N, 54)
        raw condition (normalised here). Gradual: the state is the 22-joint 6D pose
        (scale "S3", the coarse stages run inside the call). Sequential: the state of
        ``scale``, conditioned on ``prev``, the previous scale's clean sample (None for
        the first). The gradual call with defaults is the graph exported to ONNX.
        """
        if self.config.mode == "gradual" and (scale != "S3" or prev is not None):
            raise ValueError("denoise: a gradual model denoises the 22-joint state only "
                             f"(scale 'S3', no prev), got scale={scale!r}")
        if self.config.mode == "sequential" and scale not in self.net.stages:
            raise ValueError(f"denoise: scale {scale!r} is not one of {list(self.net.stages)}")
        t = torch.as_tensor(t, device=cond.device).long().expand(cond.shape[0])
        cond_n = self.normalize_condition(cond)
        if self.config.mode == "gradual":
            self.check_inputs(cond, x_t, "x_t")
            return self.net(x_t, t, cond_n).x0
        stage = self.net.stages[scale]
        self.check_inputs(cond, x_t, "x_t", (stage.nodes, stage.dim))
        return stage(x_t, t, cond_n, prev)

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
