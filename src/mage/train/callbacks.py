"""The Lightning callbacks of a training run.

- ``RunCheckpoints`` writes the run's checkpoints (layout: mage.model.checkpoint_paths);
- ``StepProgressBar``: one bar over the run's steps with steps/s and ETA;
- ``FirstAndLastStepLogger``: the first and last steps always reach the CSV log.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Checkpoint, ProgressBar
from tqdm.auto import tqdm

from mage.model.checkpoint import save_checkpoint
from mage.model.checkpoint_paths import FINAL, TRAIN_CONFIG, TRAINER_CKPT, step_dir
from mage.train.config import TrainConfig


class RunCheckpoints(Checkpoint):
    """Writes RUN/checkpoints/step_XXXXXX every ``config.checkpoint_every`` optimizer steps
    and at the end of training, and RUN/final at the end.

    It is a Lightning ``Checkpoint`` callback, so Lightning runs it after the other
    callbacks; the module updates its EMA in ``optimizer_step``, so the EMA saved at step
    s is that of step s. Lightning writes the CSV row of the batch that ends at step s
    after its callbacks, so a run killed (SIGKILL) right after checkpoint s can lack that
    one log row; the resumed training itself is exact (tests/test_train.py).
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


class StepProgressBar(ProgressBar):
    """One progress bar over the optimizer steps of the whole run (not per epoch):
    steps/s, elapsed, ETA and the latest loss. Rank 0 only."""

    def __init__(self):
        super().__init__()
        self._enabled = True
        self._bar = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        if not (self._enabled and trainer.is_global_zero):
            return
        self._bar = tqdm(total=trainer.max_steps, initial=trainer.global_step, desc="train",
                         unit="step", dynamic_ncols=True, smoothing=0.05)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._bar is None:
            return
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            self._bar.set_postfix(loss=f"{float(loss):.4f}", refresh=False)
        self._bar.update(trainer.global_step - self._bar.n)

    def on_train_end(self, trainer: L.Trainer, pl_module) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class FirstAndLastStepLogger(L.Callback):
    """Logs the first step of every (re)start and the last step of the run to the loggers
    (the CSV), besides Lightning's every ``log_every`` steps, so that even a run shorter
    than ``log_every`` leaves a loss curve with its end points."""

    def __init__(self, log_every: int):
        self.log_every = log_every
        self._first = None
        self._lr = None

    def on_train_start(self, trainer: L.Trainer, pl_module) -> None:
        self._first = trainer.global_step + 1

    def on_train_batch_start(self, trainer: L.Trainer, pl_module, batch, batch_idx) -> None:
        # the learning rate of this step (the scheduler moves on before the step ends)
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step  # optimizer steps done, this one included
        if step not in (self._first, trainer.max_steps) or step % self.log_every == 0:
            return  # Lightning logs multiples of log_every itself
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        if self._lr is not None:
            metrics["lr"] = self._lr
        metrics["epoch"] = trainer.current_epoch
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step - 1)  # Lightning's step column: steps before this one
