"""``MageTrainingModule``: the LightningModule that trains a ``MageModel``.

It holds the model and its EMA copy (both in the state dict, so a Lightning checkpoint
resumes both), computes the loss with the model's pipeline
(``MagePipeline.training_loss``), and sets up AdamW with a warm-up + cosine schedule
stepped once per optimizer step. Devices, DDP, precision and gradient clipping are the
Trainer's (see mage.train.run); nothing here names a device.

Noise and timesteps of step s on rank r come from a generator seeded by (seed, s, r),
and the global RNG (dropout) is seeded the same way, so a resumed run draws exactly
what an uninterrupted run would.
"""

from __future__ import annotations

import math

import lightning as L
import torch

from mage.model import MageModel
from mage.model.pipeline import MagePipeline
from mage.train.config import TrainConfig
from mage.train.ema import make_ema


def warmup_cosine(step: int, warmup_steps: int, max_steps: int, min_ratio: float) -> float:
    """LR multiplier after ``step`` optimizer steps: linear warm-up from 0 to 1 over
    ``warmup_steps`` steps, then cosine from 1 to ``min_ratio`` at ``max_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, max_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class MageTrainingModule(L.LightningModule):
    """Trains ``MageModel(config.model)``; ``self.ema.module`` is the averaged model.

    Batches are {"x0": (B, N, 22, 6), "cond": (B, N, 54)} (mage.train.data).
    Logs ``train/loss`` (progress bar) and every other term of the model's loss as
    ``train/<term>``.
    """

    flops_per_batch = None  # unknown: Lightning's ThroughputMonitor reports samples/s only

    def __init__(self, config: TrainConfig):
        super().__init__()
        self.config = config
        self.model = MageModel(config.model)
        self.pipeline = MagePipeline.from_model(self.model)  # the loss of the model's design
        self.ema = make_ema(self.model, config.ema_decay, config.ema_warmup)

    @property
    def inference_model(self) -> MageModel:
        """The weights to save for inference: the EMA (= the model before any step)."""
        return self.ema.module if int(self.ema.n_averaged) > 0 else self.model

    def set_normalization(self, cond_mean: torch.Tensor, cond_std: torch.Tensor) -> None:
        """Condition statistics, into the model and its EMA copy."""
        self.model.set_normalization(cond_mean, cond_std)
        self.ema.module.set_normalization(cond_mean, cond_std)

    def _step_generator(self) -> torch.Generator:
        seed = (self.config.seed * 1_000_003 + self.global_step) * 4099 + self.global_rank
        seed %= 1 << 63
        torch.manual_seed(seed)  # dropout draws from the global RNG
        return torch.Generator(device=self.device).manual_seed(seed)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        out = self.pipeline.training_loss(batch, generator=self._step_generator())
        B = batch["x0"].shape[0]
        self.log("train/loss", out["loss"], prog_bar=True, batch_size=B)
        for name, value in out.items():
            if name != "loss":
                self.log(f"train/{name}", value, batch_size=B)
        return out["loss"]

    def optimizer_step(self, *args, **kwargs) -> None:
        # Update the EMA here rather than in on_train_batch_end: Lightning calls the
        # callbacks' on_train_batch_end (the checkpoint writer) before the module's, and
        # a checkpoint of step s must hold the EMA of step s.
        super().optimizer_step(*args, **kwargs)
        self.ema.update_parameters(self.model)

    def configure_optimizers(self):
        cfg = self.config
        opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        def lr_lambda(step: int) -> float:
            return warmup_cosine(step, cfg.warmup_steps, cfg.max_steps, cfg.min_lr_ratio)

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step",
                                                     "frequency": 1, "name": "lr"}}
