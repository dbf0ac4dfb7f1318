"""Save and load MAGE checkpoints: a directory with two files, no pickle anywhere.

    DIR/model.safetensors   every weight and buffer of the model's state_dict (the
                            condition normalisation included)
    DIR/config.json         {"format": "mage-checkpoint-v1", "config": MageConfig.to_dict(),
                             "extra": {...anything JSON the caller stored...}}

Each file is written atomically (``mage.core.atomic``); the weights are written first, so
a directory with a config.json always has the weights that go with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from mage.core.atomic import atomic_write
from mage.model.checkpoint_paths import CONFIG_NAME, WEIGHTS_NAME
from mage.model.config import MageConfig
from mage.model.mage_model import MageModel

FORMAT = "mage-checkpoint-v1"


def save_checkpoint(model: MageModel, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` to ``directory`` (created if needed); returns the directory.

    extra: JSON-serialisable metadata to keep beside the config (e.g. training step,
    dataset name); read it back with :func:`read_checkpoint_info`.
    """
    if not isinstance(model, MageModel):
        raise ValueError(f"model: expected a MageModel, got {type(model).__name__}")
    extra = dict(extra or {})
    try:
        config_text = json.dumps(
            {"format": FORMAT, "config": model.config.to_dict(), "extra": extra}, indent=2)
    except (TypeError, ValueError) as err:
        raise ValueError(f"extra: must be JSON-serialisable ({err})") from None
    directory = Path(directory)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    blob = save(tensors, metadata={"format": FORMAT})
    with atomic_write(directory / WEIGHTS_NAME, "wb") as fh:
        fh.write(blob)
    with atomic_write(directory / CONFIG_NAME, "w") as fh:
        fh.write(config_text + "\n")
    return directory


def read_checkpoint_info(directory: str | Path) -> tuple[MageConfig, dict[str, Any]]:
    """(config, extra) of a checkpoint directory, without loading the weights."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"{directory}: checkpoint directory not found (expected a directory with "
            f"{WEIGHTS_NAME} and {CONFIG_NAME}, as written by save_checkpoint)")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a MAGE checkpoint directory holds "
                                f"{WEIGHTS_NAME} and {CONFIG_NAME}")
    try:
        meta = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{path}: format {found!r} is not {FORMAT!r}")
    unknown = sorted(set(meta) - {"format", "config", "extra"})
    if unknown or "config" not in meta:
        raise ValueError(f"{path}: expected keys format, config, extra; got {sorted(meta)}")
    try:
        cfg = MageConfig.from_dict(meta["config"])
    except ValueError as err:
        raise ValueError(f"{path}: invalid config: {err}") from None
    return cfg, dict(meta.get("extra") or {})


def load_checkpoint(directory: str | Path, device: str | torch.device = "cpu") -> MageModel:
    """Rebuild the model from ``config.json`` and load ``model.safetensors`` (strict).

    Returns the model on ``device`` in eval mode. Raises FileNotFoundError for missing
    files and ValueError when the weights do not match the config.
    """
    cfg, _ = read_checkpoint_info(directory)
    path = Path(directory) / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; a MAGE checkpoint directory holds "
                                f"{WEIGHTS_NAME} and {CONFIG_NAME}")
    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{path}: cannot read safetensors file ({err})") from None
    model = MageModel(cfg)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = sorted(k for k in set(expected) & set(tensors) if expected[k].shape != tensors[k].shape)
    if missing or unexpected or wrong:
        details = "; ".join(
            f"{label}: {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
            for label, keys in (("missing", missing), ("unexpected", unexpected),
                                ("wrong shape", wrong)) if keys)
        raise ValueError(f"{path}: weights do not match {CONFIG_NAME} ({details})")
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval()
