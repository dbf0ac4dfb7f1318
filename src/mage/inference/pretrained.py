"""``load_pretrained(name_or_path)``: a model from a packaged checkpoint name or a folder.

Names and paths resolve as :func:`mage.model.checkpoint_paths.resolve_checkpoint` says:
a packaged name is a folder under ``mage/assets/checkpoints/``, anything else a
checkpoint folder or a training run folder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mage.model.checkpoint import load_checkpoint
from mage.model.checkpoint_paths import DEFAULT_CHECKPOINT, resolve_checkpoint


def load_pretrained(name_or_path: str | Path = DEFAULT_CHECKPOINT, device: str = "cpu"):
    """A MageModel in eval mode on ``device`` from a packaged name or a checkpoint folder
    (default: the bundled :data:`~mage.model.checkpoint_paths.DEFAULT_CHECKPOINT`).
    FileNotFoundError for an unknown name or an incomplete folder; ValueError for a
    device that is not a torch device or CUDA where there is none."""
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise ValueError(f"device: {device!r} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but CUDA is not available here; use cpu")
    return load_checkpoint(resolve_checkpoint(name_or_path), device=device).eval()
