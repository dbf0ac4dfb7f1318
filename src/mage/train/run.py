"""``train(config, data_dir, out_dir, resume=False)``: one training run, start to finish.

Wires the pieces together: the data (mage.train.data), the LightningModule
(mage.train.module), the checkpoints (mage.train.callbacks) and a Lightning Trainer
that owns the loop, devices, DDP, precision, gradient clipping, the progress bar and the
CSV logs. The run folder's layout is documented in mage.model.checkpoint_paths.

``trainer.ckpt`` is a torch pickle of the run's own state and is loaded with
``weights_only=True`` (plain tensors and containers only); ``--resume`` first reads it
with :func:`check_trainer_ckpt`, so a damaged or tampered file is a one-line error.

Multi-process runs (``strategy="ddp"``) are started by Lightning, which re-runs the
command line once per extra process; every process calls ``train`` with the same
arguments and only global rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import io
import json
import logging
import re
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ThroughputMonitor
from lightning.pytorch.loggers import CSVLogger

from mage.core.atomic import atomic_write
from mage.model.checkpoint_paths import (
    CHECKPOINTS,
    FINAL,
    LOGS,
    TRAIN_CONFIG,
    TRAINER_CKPT,
    TRAINING_DATA,
    latest_checkpoint,
    list_checkpoints,
)
from mage.train.callbacks import FirstAndLastStepLogger, RunCheckpoints, StepProgressBar
from mage.train.config import RUNTIME_FIELDS, TrainConfig
from mage.train.data import WindowDataModule
from mage.train.module import MageTrainingModule


def resolve_precision(config: TrainConfig) -> TrainConfig:
    """``config`` with bf16-mixed replaced by 32 (and a warning) when it runs on CPU."""
    if config.precision != "bf16-mixed":
        return config
    on_cpu = config.accelerator == "cpu" or (config.accelerator == "auto" and not torch.cuda.is_available())
    if not on_cpu:
        return config
    warnings.warn("precision 'bf16-mixed' is for GPUs; this run is on CPU and uses '32' "
                  "(the saved train_config.json says so)", stacklevel=2)
    return dataclasses.replace(config, precision="32")


def _check_run_folder(config: TrainConfig, run: Path, resume: bool) -> Path | None:
    """The checkpoint to resume from (or None), after checking that ``run`` suits."""
    if not resume:
        if list_checkpoints(run) or (run / FINAL).exists():
            raise ValueError(f"{run}: already holds a training run ({CHECKPOINTS}/ or {FINAL}/); "
                             "pass --resume to continue it, or choose another --out")
        return None
    if not run.is_dir():
        raise FileNotFoundError(f"--resume: {run} does not exist (start a run without --resume)")
    saved_path = run / TRAIN_CONFIG
    if saved_path.is_file():
        saved = TrainConfig.load(saved_path)
        changed = [d for d in saved.differences(config) if d not in RUNTIME_FIELDS]
        if changed:
            raise ValueError(
                f"--resume: the config differs from {saved_path} in {', '.join(changed)}; a "
                f"resumed run must learn the same thing (only {', '.join(RUNTIME_FIELDS)} may "
                "change); resume without --config/--preset to use the saved one")
        if saved.max_steps != config.max_steps:
            warnings.warn(f"--resume: max_steps changed from {saved.max_steps} to "
                          f"{config.max_steps}; the cosine LR schedule is stretched from here",
                          stacklevel=3)
    ckpt = latest_checkpoint(run)
    if ckpt is None:
        warnings.warn(f"--resume: {run} has no complete checkpoint yet; starting from step 0",
                      stacklevel=3)
    else:
        check_trainer_ckpt(ckpt / TRAINER_CKPT)
    return ckpt


def check_trainer_ckpt(path: str | Path) -> None:
    """Raise ValueError (one line naming ``path``) unless ``path`` loads with
    ``torch.load(weights_only=True)`` as a dict with Lightning's ``state_dict``."""
    path = Path(path)
    hint = (f"delete {path.parent} to resume from the checkpoint before it, or start a new run")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # untrusted bytes: any failure of the loader is the file's fault
        msg = " ".join(str(err).split())[:160]
        raise ValueError(f"{path}: not a readable training checkpoint ({type(err).__name__}: "
                         f"{msg}); {hint}") from None
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict):
        raise ValueError(f"{path}: not a Lightning training checkpoint (no state_dict); {hint}")


def train(config: TrainConfig, data_dir: str | Path, out_dir: str | Path, resume: bool = False) -> Path:
    """Train ``config`` on the ``config.train_splits`` (default "train") of the processed dataset ``data_dir``.

    Writes the run folder ``out_dir`` (layout: mage.model.checkpoint_paths) and returns the
    inference checkpoint folder ``out_dir/final``. ``resume=True`` continues from the
    newest complete checkpoint with the same step, optimizer, LR schedule, EMA and data
    order (the config may differ only in RUNTIME_FIELDS).
    """
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config: expected a TrainConfig, got {type(config).__name__}")
    run, data_dir = Path(out_dir), Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: no such data folder (expected a processed data set "
                                "with manifest.json and sequences/, see `mage data build`)")
    config = resolve_precision(config)
    ckpt = _check_run_folder(config, run, resume)

    with _quiet_lightning():
        return _fit(config, run, data_dir, ckpt)


# Lightning's informational lines and warnings that say nothing about this run: the
# hardware summary (printed by us in one line), a cloud-logging advertisement, the model
# summary table with its "Total FLOPs: 0", PyTorch deprecation notices from inside
# Lightning, and the log-interval hint for runs shorter than an epoch.
_QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                  "lightning.pytorch.accelerators.cuda", "lightning.pytorch.utilities.distributed")
_QUIET_WARNINGS = (".*is deprecated.*", ".*smaller than the logging interval.*",
                   ".*your dataloader is not resumable.*", ".*does not have many workers.*",
                   ".*GPU available but not used.*")


@contextlib.contextmanager
def _quiet_lightning():
    loggers = [logging.getLogger(name) for name in _QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            # Mid-epoch resume is exact here (WindowSampler skips the batches already
            # seen), which Lightning cannot know; the rest: see _QUIET_WARNINGS.
            for pattern in _QUIET_WARNINGS:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _fit(config: TrainConfig, run: Path, data_dir: Path, ckpt: Path | None) -> Path:
    L.seed_everything(config.seed, workers=False, verbose=False)  # same init on every rank
    data = WindowDataModule(data_dir, config)
    data.setup("fit")
    training_data = _check_training_data(run, data.split, config, resumed=ckpt is not None)
    module = MageTrainingModule(config)
    module.set_normalization(data.split.cond_mean, data.split.cond_std)

    trainer = L.Trainer(
        accelerator=config.accelerator, devices=config.devices, num_nodes=config.num_nodes,
        strategy=config.strategy,
        precision="32-true" if config.precision == "32" else config.precision,
        max_steps=config.max_steps, max_epochs=-1,
        gradient_clip_val=config.grad_clip or None, gradient_clip_algorithm="norm",
        log_every_n_steps=config.log_every,
        logger=CSVLogger(run, name=LOGS, flush_logs_every_n_steps=config.log_every),
        callbacks=[StepProgressBar(), LearningRateMonitor(logging_interval="step"),
                   ThroughputMonitor(batch_size_fn=_batch_size,
                                     window_size=max(2, min(100, config.log_every))),
                   FirstAndLastStepLogger(config.log_every), RunCheckpoints(run, config)],
        enable_model_summary=False,  # its table is noise here; parameters are printed below
        enable_checkpointing=True,  # by RunCheckpoints alone (Lightning adds no default one)
        use_distributed_sampler=False,  # WindowSampler shards by rank itself
        num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=run,
    )
    if trainer.is_global_zero:
        run.mkdir(parents=True, exist_ok=True)
        config.save(run / TRAIN_CONFIG)
        with atomic_write(run / TRAINING_DATA, "w") as fh:
            json.dump(training_data, fh, indent=1)
        split = data.split
        params = sum(p.numel() for p in module.model.parameters())
        print(f"mage train: {len(split.motions)} sequences of {'+'.join(config.train_splits)} "
              f"({split.num_frames} frames; "
              f"{len(split.padded)} padded, {len(split.skipped)} skipped), {len(data.windows)} "
              f"windows of {config.model.window} frames; model {params / 1e6:.2f} M parameters; "
              f"{trainer.world_size} process(es) x batch {config.batch_size}, {torch.get_num_threads()} thread(s), "
              f"precision {config.precision}; " + (f"resuming from {ckpt}" if ckpt else "starting at step 0"),
              flush=True)
        if config.source_balance > 0:
            shares = ", ".join(f"{name or '(top folder)'} {share:.0%}" for name, share in data.source_shares().items())
            print(f"mage train: source_balance {config.source_balance:g}, windows drawn per source: {shares}",
                  flush=True)
    trainer.fit(module, datamodule=data, ckpt_path=str(ckpt / TRAINER_CKPT) if ckpt else None,
                weights_only=True)
    return run / FINAL


def _check_training_data(run: Path, split, config: TrainConfig, resumed: bool) -> dict:
    """Which sequences this run trains on, as recorded in RUN/training_data.json (written
    with the config): a resumed run must train on the same ones as when it started:
    ValueError if they changed (a rebuilt dataset, a new val split), a warning for runs
    that predate the record."""
    ids = sorted(split.ids + split.skipped)
    now = {"splits": list(config.train_splits), "sequences": len(ids),
           "ids_sha1": hashlib.sha1("\n".join(ids).encode()).hexdigest()}
    path = run / TRAINING_DATA
    if resumed and path.is_file():
        before = json.loads(path.read_text())
        if before.get("ids_sha1") != now["ids_sha1"]:
            raise ValueError(
                f"--resume: the training sequences differ from when {run} started ({path}: "
                f"{before.get('sequences')} sequences of {'+'.join(before.get('splits', []))}, now "
                f"{now['sequences']}): a rebuilt dataset or another split; start a new run")
    elif resumed:
        warnings.warn(f"--resume: {run} has no {TRAINING_DATA} (an older run): cannot check that it "
                      "trains on the same sequences as before", stacklevel=3)
    return now


def _batch_size(batch) -> int:
    return int(batch["x0"].shape[0])


def read_metrics(run_dir: str | Path) -> list[dict[str, float]]:
    """The run's logged rows, by step, across restarts.

    Each (re)start logs into its own ``logs/version_<i>/metrics.csv``; a later version
    replaces the rows of earlier ones from its first step on (a resumed run repeats
    the steps after its checkpoint). Empty cells are left out of each row.
    """
    root = Path(run_dir) / LOGS
    versions = sorted((int(m.group(1)), d) for d in root.glob("version_*")
                      if (m := re.fullmatch(r"version_(\d+)", d.name)))
    rows: list[dict[str, float]] = []
    for _, d in versions:
        path = d / "metrics.csv"
        if not path.is_file():
            continue
        text = path.read_text()
        if not text.endswith("\n"):  # a process killed while writing: drop the partial line
            text = text[: text.rfind("\n") + 1]
        new = [{k: float(v) for k, v in r.items() if k is not None and v not in ("", None)}
               for r in csv.DictReader(io.StringIO(text, newline=""))]
        new = [r for r in new if "step" in r]
        if not new:
            continue
        first = min(r["step"] for r in new)
        rows = [r for r in rows if r["step"] < first] + new
    return sorted(rows, key=lambda r: r["step"])
