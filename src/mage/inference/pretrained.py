"""``load_pretrained(name_or_path)``: a model from a packaged checkpoint name or a folder.

A checkpoint is a folder with ``config.json`` and ``model.safetensors`` (written by
:func:`mage.model.checkpoint.save_checkpoint`). Names resolve to the folders shipped in
the package under ``mage/assets/checkpoints/<name>/``; anything else is taken as a path.
"""

from __future__ import annotations

from pathlib import Path

CHECKPOINT_FILES = ("config.json", "model.safetensors")
# The model every command and ``load_pretrained()`` use when none is named: the most
# accurate bundled checkpoint (its model card, README.md in its folder, gives the data,
# the licence and the held-out metrics).
DEFAULT_CHECKPOINT = "full-medium"
PACKAGED_DIR = Path(__file__).resolve().parents[1] / "assets" / "checkpoints"


CARD_FILE = "card.json"  # optional: {"licence": ..., "commercial_use": bool, "data": ...}


def checkpoint_card(folder: str | Path) -> dict:
    """The checkpoint's ``card.json`` (licence of its weights, commercial use, training
    data), or {} when it has none (a user's own run). Pure Python, no torch."""
    import json

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


def available_checkpoints() -> list[str]:
    """Names of the packaged checkpoints that are complete (both files present)."""
    if not PACKAGED_DIR.is_dir():
        return []
    return sorted(d.name for d in PACKAGED_DIR.iterdir()
                  if d.is_dir() and all((d / f).is_file() for f in CHECKPOINT_FILES))


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """The checkpoint folder of a packaged name, a checkpoint folder or a training run
    folder (which means ``RUN/final``, see :mod:`mage.train.checkpoints`)."""
    from mage.train.checkpoints import resolve_checkpoint as resolve_path

    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = path.exists() or "/" in text or "\\" in text or text.startswith(".")
    if looks_like_path:
        folder = resolve_path(path)
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


def load_pretrained(name_or_path: str | Path = DEFAULT_CHECKPOINT, device: str = "cpu"):
    """A MageModel in eval mode on ``device`` from a packaged name or a checkpoint folder
    (default: the bundled :data:`DEFAULT_CHECKPOINT`)."""
    import torch

    from mage.model.checkpoint import load_checkpoint

    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device: {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but CUDA is not available here; use cpu")
    return load_checkpoint(resolve_checkpoint(name_or_path), device=device).eval()
