"""The checkpoints of a training run, and where they live.

Layout of a run folder RUN::

    RUN/train_config.json                 the resolved TrainConfig of the run
    RUN/checkpoints/step_000500/          every ``checkpoint_every`` steps, and at the end
        model.safetensors, config.json    the EMA model for inference (save_checkpoint)
        train_config.json
        trainer.ckpt                      Lightning's full training state (for --resume)
    RUN/final/                            the inference checkpoint at the end of training
        model.safetensors, config.json, train_config.json
    RUN/logs/version_<i>/metrics.csv      CSV logs, one version per (re)start

``trainer.ckpt`` is written last and atomically (temporary name, then rename), so a
step folder that has it is complete; a run killed at any moment resumes from the newest
such folder. It is a torch pickle of the run's own state and is loaded with
``weights_only=True`` (plain tensors and containers only); ``--resume`` first reads it
with :func:`check_trainer_ckpt`, so a damaged or tampered file is a one-line error.

Which folder an inference checkpoint path means (``resolve_checkpoint``, for
``mage eval --ckpt``): a folder holding ``model.safetensors`` is itself; a run folder
means ``RUN/final``; anything else is an error naming what is there.

Pure Python (no torch, no Lightning), so that evaluation can use it cheaply; the writer is
mage.train.callbacks.RunCheckpoints.
"""

from __future__ import annotations

import re
from pathlib import Path

CHECKPOINTS = "checkpoints"
FINAL = "final"
TRAINER_CKPT = "trainer.ckpt"
TRAIN_CONFIG = "train_config.json"
TRAINING_DATA = "training_data.json"  # which sequences the run trains on (checked on resume)
WEIGHTS = "model.safetensors"
_STEP_RE = re.compile(r"^step_(\d+)$")


def step_dir(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS / f"step_{step:06d}"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, folder) of every complete checkpoint (one with trainer.ckpt), by step."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        m = _STEP_RE.match(d.name)
        if m and (d / TRAINER_CKPT).is_file():
            found.append((int(m.group(1)), d))
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder of a run, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def check_trainer_ckpt(path: str | Path) -> None:
    """Raise ValueError (one line naming ``path``) unless ``path`` loads with
    ``torch.load(weights_only=True)`` as a dict with Lightning's ``state_dict``."""
    import torch

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


def resolve_checkpoint(path: str | Path) -> Path:
    """The inference checkpoint folder that ``path`` means (see the module docstring)."""
    path = Path(path)
    if (path / WEIGHTS).is_file():
        return path
    if (path / FINAL / WEIGHTS).is_file():
        return path / FINAL
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint folder not found (no such checkpoint or run folder)")
    hint = ""
    if list_checkpoints(path):
        hint = (f"; the run has no {FINAL}/ (unfinished?): pass one of its checkpoints, "
                f"e.g. {latest_checkpoint(path)}")
    raise FileNotFoundError(
        f"{path}: not a checkpoint (no {WEIGHTS}) nor a finished run (no {FINAL}/{WEIGHTS}){hint}")
