"""Checkpoints: safetensors + config.json, round trip, clear errors, no pickle."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from mage.model import MageConfig, MageModel, MagePipeline
from mage.model.checkpoint import (
    CONFIG_NAME,
    FORMAT,
    WEIGHTS_NAME,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)
from mage.model.config import SCALE_ORDER


def tiny(name="mage-paper", **kw):
    return MageConfig.preset(name).with_overrides(width=32, window=8, depth={s: 1 for s in SCALE_ORDER}, **kw)


@pytest.mark.parametrize("name", ["mage-paper", "ablation-sequential"])
def test_round_trip_gives_identical_samples(tmp_path, name, monkeypatch):
    torch.manual_seed(0)
    model = MageModel(tiny(name))
    model.set_normalization(torch.randn(54), torch.rand(54) + 0.5)
    save_checkpoint(model, tmp_path / "ckpt", extra={"step": 12, "dataset": "synthetic"})
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]
    meta = json.loads((tmp_path / "ckpt" / CONFIG_NAME).read_text())
    assert meta["format"] == FORMAT == "mage-checkpoint-v1"
    assert meta["config"] == model.config.to_dict() and meta["extra"] == {"step": 12, "dataset": "synthetic"}

    def no_pickle(*args, **kwargs):
        raise AssertionError("torch.load (pickle) must not be used")

    monkeypatch.setattr(torch, "load", no_pickle)
    loaded = load_checkpoint(tmp_path / "ckpt")
    assert not loaded.training and loaded.config == model.config
    torch.testing.assert_close(loaded.cond_std, model.cond_std, atol=0, rtol=0)
    cond = torch.randn(2, 8, 54)
    a = MagePipeline.from_model(model.eval()).sample(cond, noise=0)
    b = MagePipeline.from_model(loaded).sample(cond, noise=0)
    assert torch.equal(a, b)
    assert read_checkpoint_info(tmp_path / "ckpt")[1] == {"step": 12, "dataset": "synthetic"}


def test_missing_directory_and_files_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint directory not found"):
        load_checkpoint(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="config.json: missing"):
        load_checkpoint(tmp_path / "empty")
    save_checkpoint(MageModel(tiny()), tmp_path / "c")
    (tmp_path / "c" / WEIGHTS_NAME).unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors: missing"):
        load_checkpoint(tmp_path / "c")


def test_mismatched_config_and_weights_raise(tmp_path):
    save_checkpoint(MageModel(tiny()), tmp_path / "c")
    path = tmp_path / "c" / CONFIG_NAME
    meta = json.loads(path.read_text())
    meta["config"]["width"] = 48
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="weights do not match config.json.*wrong shape"):
        load_checkpoint(tmp_path / "c")
    meta["config"]["width"], meta["config"]["scales"] = 32, ["S3"]
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="unexpected: net.stages.S1"):
        load_checkpoint(tmp_path / "c")
    tensors = load_file(tmp_path / "c" / WEIGHTS_NAME)
    del tensors["cond_mean"]
    save_file(tensors, tmp_path / "c" / WEIGHTS_NAME)
    meta["config"]["scales"] = ["S1", "S2", "S3"]
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="missing: cond_mean"):
        load_checkpoint(tmp_path / "c")


def test_bad_config_json_raises(tmp_path):
    save_checkpoint(MageModel(tiny()), tmp_path / "c")
    path = tmp_path / "c" / CONFIG_NAME
    meta = json.loads(path.read_text())
    for bad, match in (({**meta, "format": "other"}, "format 'other'"),
                       ({**meta, "config": {**meta["config"], "widht": 3}}, "invalid config: .*widht"),
                       ({**meta, "step": 3}, "expected keys format, config, extra")):
        path.write_text(json.dumps(bad))
        with pytest.raises(ValueError, match=match):
            load_checkpoint(tmp_path / "c")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_checkpoint(tmp_path / "c")
    (tmp_path / "c" / WEIGHTS_NAME).write_bytes(b"garbage")
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="cannot read safetensors"):
        load_checkpoint(tmp_path / "c")


def test_save_rejects_bad_inputs_without_writing(tmp_path):
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(MageModel(tiny()), tmp_path / "c", extra={"x": object()})
    assert not (tmp_path / "c").exists()
    with pytest.raises(ValueError, match="expected a MageModel"):
        save_checkpoint(torch.nn.Linear(2, 2), tmp_path / "c")
