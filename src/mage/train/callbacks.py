"""``RunCheckpoints``: the Lightning callback that writes a run's checkpoints.

The layout it writes is documented in mage.train.checkpoints.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from mage.train.checkpoints import FINAL, TRAIN_CONFIG, TRAINER_CKPT, step_dir
from mage.train.config import TrainConfig


class RunCheckpoints(Checkpoint):
    """Writes RUN/checkpoints/step_XXXXXX every ``config.checkpoint_every`` optimizer steps
    and at the end of training, and RUN/final at the end.

    It is a Lightning ``Checkpoint`` callback, so Lightning runs it after the other
    callbacks; the module updates its EMA in ``optimizer_step``, so the EMA saved at step
    s is that of step s.
    """

    def __init__(self, run_dir: str | Path, config: TrainConfig):
        self.run_dir = Path(run_dir)
        self.config = config
        self._last_saved = -1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step > 0 and step % self.config.checkpoint_every == 0 and step != self._last_saved:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        step = trainer.global_step
        if step != self._last_saved and step > 0:
            self.save(trainer, pl_module)
        if trainer.is_global_zero:
            self._write_final(pl_module, step)
        trainer.strategy.barrier("RunCheckpoints.final")

    def save(self, trainer: L.Trainer, pl_module) -> Path:
        """Write the step folder of the current step (call on every rank)."""
        step = trainer.global_step
        d = step_dir(self.run_dir, step)
        if trainer.is_global_zero:
            self._write_inference(pl_module, d, step)
        tmp = d / f".{TRAINER_CKPT}.tmp"
        trainer.save_checkpoint(tmp, weights_only=False)  # full state; rank 0 writes, then a barrier
        if trainer.is_global_zero:
            os.replace(tmp, d / TRAINER_CKPT)
        self._last_saved = step
        return d

    def _write_inference(self, pl_module, directory: Path, step: int) -> None:
        from mage.model.checkpoint import save_checkpoint

        directory.mkdir(parents=True, exist_ok=True)
        save_checkpoint(pl_module.inference_model, directory, extra={"step": step, "weights": "ema"})
        self.config.save(directory / TRAIN_CONFIG)

    def _write_final(self, pl_module, step: int) -> None:
        final = self.run_dir / FINAL
        tmp = self.run_dir / f".{FINAL}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        self._write_inference(pl_module, tmp, step)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
