"""The bundled checkpoint: found by name, loads without pickle, and is the documented model."""

import json
from pathlib import Path

import torch

import mage
from mage.inference.pretrained import PACKAGED_DIR, available_checkpoints


def test_cmu_small_is_packaged_and_loads():
    assert "cmu-small" in available_checkpoints()
    folder = PACKAGED_DIR / "cmu-small"
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    assert size < 10 * 2**20  # the budget for a committed checkpoint
    model = mage.load_pretrained("cmu-small")
    assert model.window == 48 and model.config.width == 160
    assert sum(p.numel() for p in model.parameters()) == 908_317
    # the normalisation statistics of the training split are in the weights (not identity)
    stats = [b for n, b in model.named_buffers() if "std" in n]
    assert stats and not torch.allclose(stats[0], torch.ones_like(stats[0]))
    # the committed evaluation report describes this checkpoint
    report = json.loads((folder / "eval_offline" / "metrics.json").read_text())
    assert report["num_sequences"] == 32 and report["split"] == "test"
    assert Path(report["settings"]["checkpoint"]).name == "cmu-small"
