"""Exponential moving average of the weights: ``torch.optim.swa_utils.AveragedModel``
with an EMA update that can warm up (as timm's ModelEmaV2 / diffusers' EMAModel).

At update n (n = 0, 1, ... updates done so far; the first update copies the weights)
    decay_n = min(decay, (1 + n) / (10 + n))   if warmup, else decay
    ema <- decay_n * ema + (1 - decay_n) * weights
Buffers are averaged too (``use_buffers=True``); non-float buffers are copied.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def ema_multi_avg_fn(decay: float, warmup: bool = True):
    """The ``multi_avg_fn`` of :class:`AveragedModel` for a (warm-up) EMA."""
    if not 0 <= decay < 1:
        raise ValueError(f"decay: must be in [0, 1), got {decay}")

    @torch.no_grad()
    def update(ema_params: list[torch.Tensor], params: list[torch.Tensor], num_averaged) -> None:
        n = int(num_averaged)
        d = min(decay, (1 + n) / (10 + n)) if warmup else decay
        if torch.is_floating_point(ema_params[0]):
            torch._foreach_lerp_(ema_params, params, 1.0 - d)
        else:  # integer buffers (counters, indices): keep the current value
            for e, p in zip(ema_params, params, strict=True):
                e.copy_(p)

    return update


def make_ema(model: nn.Module, decay: float, warmup: bool = True) -> AveragedModel:
    """An EMA copy of ``model`` (its parameters need no gradient); call
    ``ema.update_parameters(model)`` after every optimizer step; ``ema.module`` is the
    averaged model."""
    ema = AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(decay, warmup), use_buffers=True)
    ema.requires_grad_(False)
    return ema
