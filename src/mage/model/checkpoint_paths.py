"""Where checkpoints live: the files of one, the layout of a training run, the packaged
ones, and :func:`resolve_checkpoint` (a name or a path -> the folder to load).

A checkpoint is a folder with ``config.json`` and ``model.safetensors`` (written by
:func:`mage.model.checkpoint.save_checkpoint`) and, for the packaged ones, a
``card.json`` (licence of the weights, training data). The packaged checkpoints are the
folders under ``mage/assets/checkpoints/<name>/``.

Layout of a training run folder RUN (written by :mod:`mage.train`)::

    RUN/train_config.json                 the resolved TrainConfig of the run
    RUN/training_data.json                which sequences the run trains on (checked on resume)
    RUN/checkpoints/step_000500/          every ``checkpoint_every`` steps, and at the end
        model.safetensors, config.json    the EMA model for inference (save_checkpoint)
        train_config.json
        trainer.ckpt                      Lightning's full training state (for --resume)
    RUN/final/                            the inference checkpoint at the end of training
        model.safetensors, config.json, train_config.json
    RUN/logs/version_<i>/metrics.csv      CSV logs, one version per (re)start

``trainer.ckpt`` is written last and atomically, so a step folder that has it is
complete (:func:`list_checkpoints` lists only those).

Pure Python (no torch): the command line resolves ``--ckpt`` with it before importing torch.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

# --- the files of a checkpoint folder
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME)
CARD_FILE = "card.json"  # optional: {"licence": ..., "commercial_use": bool, "data": ...}

# --- the layout of a training run folder (module docstring)
CHECKPOINTS = "checkpoints"
FINAL = "final"
LOGS = "logs"
TRAINER_CKPT = "trainer.ckpt"
TRAIN_CONFIG = "train_config.json"
TRAINING_DATA = "training_data.json"
_STEP_RE = re.compile(r"^step_(\d+)$")

# --- the packaged checkpoints
PACKAGED_DIR = Path(__file__).resolve().parents[1] / "assets" / "checkpoints"
# The model every command and ``load_pretrained()`` use when none is named: the most
# accurate bundled checkpoint (its model card, README.md in its folder, gives the data,
# the licence and the held-out metrics).
DEFAULT_CHECKPOINT = "full-medium"


def step_dir(run_dir: str | Path, step: int) -> Path:
    """RUN/checkpoints/step_XXXXXX of optimizer step ``step``."""
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


def available_checkpoints() -> list[str]:
    """Names of the packaged checkpoints that are complete (both files present)."""
    if not PACKAGED_DIR.is_dir():
        return []
    return sorted(d.name for d in PACKAGED_DIR.iterdir()
                  if d.is_dir() and all((d / f).is_file() for f in CHECKPOINT_FILES))


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """The checkpoint folder of a packaged name, a checkpoint folder or a training run
    folder (which means ``RUN/final``). FileNotFoundError (one line, naming what is there)
    for anything else or for a folder that lacks one of :data:`CHECKPOINT_FILES`."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = path.exists() or "/" in text or "\\" in text or text.startswith(".")
    if looks_like_path:
        folder = _checkpoint_in(path)
    else:
        folder = PACKAGED_DIR / text
        if not folder.is_dir():
            names = available_checkpoints()
            known = ", ".join(names) if names else "none are installed"
            raise FileNotFoundError(
                f"{text!r} is neither a packaged checkpoint nor an existing folder; packaged "
                f"checkpoints: {known} (a checkpoint is a folder with {' + '.join(CHECKPOINT_FILES)})")
    missing = [f for f in CHECKPOINT_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: incomplete checkpoint, missing {', '.join(missing)} "
                                f"(expected {' + '.join(CHECKPOINT_FILES)})")
    return folder


def _checkpoint_in(path: Path) -> Path:
    """A folder holding the weights is itself; a finished run folder means RUN/final."""
    if (path / WEIGHTS_NAME).is_file():
        return path
    if (path / FINAL / WEIGHTS_NAME).is_file():
        return path / FINAL
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint folder not found (no such checkpoint or run folder)")
    hint = ""
    if list_checkpoints(path):
        hint = (f"; the run has no {FINAL}/ (unfinished?): pass one of its checkpoints, "
                f"e.g. {latest_checkpoint(path)}")
    raise FileNotFoundError(
        f"{path}: not a checkpoint (no {WEIGHTS_NAME}) nor a finished run (no {FINAL}/{WEIGHTS_NAME}){hint}")


def checkpoint_card(folder: str | Path) -> dict:
    """The checkpoint's ``card.json`` (licence of its weights, commercial use, training
    data), or {} when it has none (a user's own run). ValueError for an unreadable one."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        return {}
    try:
        card = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable model card ({err})") from None
    if not isinstance(card, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return card


def licence_notice(folder: str | Path) -> str | None:
    """One line to show a user of a checkpoint whose weights are not for commercial use."""
    card = checkpoint_card(folder)
    if card.get("commercial_use", True):
        return None
    alternative = card.get("commercial_alternative")
    return (f"note: {Path(folder).name} is licensed {card.get('licence', 'for non-commercial use')}"
            + (f"; for commercial use pass --ckpt {alternative}" if alternative else ""))
