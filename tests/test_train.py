"""Training (mage.train, `mage train`): config, windows + augmentation, sampler, runs,
checkpoints, kill -9 resume and a 2-process DDP run on CPU, all with a tiny model on a
tiny synthetic data set written here in the ``mage-dataset-v1`` layout."""

from __future__ import annotations

import csv
import dataclasses
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch

from mage.core import Motion
from mage.core import rotations as rot
from mage.core.kinematics import forward_kinematics
from mage.core.skeleton import Skeleton
from mage.core.tracking import TRACKED_JOINTS
from mage.train.config import TrainConfig

TINY_MODEL = {"preset": "mage-small", "width": 16, "window": 8, "depth": {"S1": 1, "S2": 1, "S3": 1}}
N = TINY_MODEL["window"]


# --- a tiny data set -------------------------------------------------------------------
def smooth_motion(T: int, seed: int, fps: float = 60.0) -> Motion:
    """An upright body with smooth random joint rotations, turning and drifting."""
    g = torch.Generator().manual_seed(seed)
    t = (torch.arange(T, dtype=torch.float64) / fps)[:, None, None]
    amp = 0.4 * torch.rand(22, 3, generator=g, dtype=torch.float64)
    freq = 0.3 + 1.5 * torch.rand(22, 3, generator=g, dtype=torch.float64)
    phase = 2 * math.pi * torch.rand(22, 3, generator=g, dtype=torch.float64)
    R = rot.axis_angle_to_matrix(amp * torch.sin(2 * math.pi * freq * t + phase))
    yaw = t[:, 0, 0] * torch.randn((), generator=g, dtype=torch.float64)
    up = rot.rotation_about_axis(torch.tensor(math.pi / 2), "x").double()
    R[:, 0] = rot.rotation_about_axis(yaw, "z").double() @ up @ R[:, 0]
    trans = torch.cumsum(0.01 * torch.randn(T, 3, generator=g, dtype=torch.float64), 0)
    trans[:, 2] = 0.9
    return Motion(R.float(), trans.float(), fps)


def write_dataset(root: Path, train=(60, 45, 80, 5), test=(30,)) -> Path:
    """A mage-dataset-v1 folder; the lengths are record rows (source frames - 1)."""
    from mage.data.dataset import write_manifest, write_record

    seqs, splits = {}, {"train": [], "test": []}
    for split, lengths in (("train", train), ("test", test)):
        for i, T in enumerate(lengths):
            id = f"{split}_{i:02d}"
            frames = write_record(root / "sequences" / f"{id}.npz", smooth_motion(T + 1, len(seqs)),
                                  source=f"synthetic/{id}")
            seqs[id] = {"file": f"sequences/{id}.npz", "source": f"synthetic/{id}",
                        "subject": "s0", "frames": frames, "rig": "smpl"}
            splits[split].append(id)
    write_manifest(root, {"format": "mage-dataset-v1", "fps": 60, "splits": splits, "sequences": seqs})
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("ds"))


def tiny_config(**kw) -> TrainConfig:
    base = {"model": TINY_MODEL, "batch_size": 4, "max_steps": 6, "warmup_steps": 2,
            "checkpoint_every": 3, "log_every": 1, "num_workers": 0, "accelerator": "cpu",
            "precision": "32"}
    return TrainConfig(**{**base, **kw})


# --- config ------------------------------------------------------------------------------
def test_config_defaults_are_agrol_like_and_round_trip(tmp_path):
    cfg = TrainConfig()
    assert (cfg.lr, cfg.weight_decay, cfg.model.window) == (3e-4, 1e-4, 120)
    cfg2 = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert cfg2 == cfg
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == cfg


def test_config_unknown_key_lists_valid_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epochs'\].*batch_size"):
        TrainConfig.from_dict({"epochs": 10})
    with pytest.raises(ValueError, match="valid keys"):
        TrainConfig.from_dict({"model": {"preset": "mage-small", "widht": 3}})


def test_config_model_forms():
    from mage.model import MageConfig

    preset = MageConfig.preset("mage-small")
    assert TrainConfig.from_dict({"model": "mage-small"}).model == preset
    over = TrainConfig.from_dict({"model": {"preset": "mage-small", "width": 64}}).model
    assert over.width == 64 and over.window == preset.window
    full = TrainConfig.from_dict({"model": over.to_dict()}).model
    assert full == over
    with pytest.raises(ValueError, match="preset"):
        TrainConfig.from_dict({"model": "no-such-preset"})


def test_config_yaml_file_with_scientific_floats(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: mage-small\nlr: 1e-4\nmax_steps: 10\nprecision: 32\nrandom_yaw: false\n")
    cfg = TrainConfig.load(path)
    assert (cfg.lr, cfg.max_steps, cfg.precision, cfg.random_yaw) == (1e-4, 10, "32", False)
    (tmp_path / "c.toml").write_text("")
    with pytest.raises(ValueError, match="yaml"):
        TrainConfig.load(tmp_path / "c.toml")


@pytest.mark.parametrize("bad,match", [
    ({"precision": "16-mixed"}, "precision.*bf16-mixed"),
    ({"mirror_prob": 1.5}, "mirror_prob"),
    ({"batch_size": 0}, "batch_size"),
    ({"devices": "all"}, "devices"),
    ({"random_yaw": 1}, "random_yaw"),
    ({"strategy": "fsdp"}, "strategy.*ddp"),
    ({"source_balance": -0.1}, "source_balance"),
    ({"source_balance": 2}, "source_balance"),
])
def test_config_rejects_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict(bad)


def test_config_set_overrides():
    cfg = TrainConfig().with_overrides(["lr=1e-4", "model.width=64", "model.depth.S3=6",
                                        "random_yaw=false", "devices=2", "warmup_steps=10"])
    assert (cfg.lr, cfg.model.width, cfg.model.depth["S3"], cfg.random_yaw, cfg.devices,
            cfg.warmup_steps) == (1e-4, 64, 6, False, 2, 10)
    assert cfg.model.depth["S1"] == TrainConfig().model.depth["S1"]
    with pytest.raises(ValueError, match="unknown key 'lrr'.*valid keys.*lr"):
        TrainConfig().with_overrides(["lrr=1"])
    with pytest.raises(ValueError, match="key=value"):
        TrainConfig().with_overrides(["lr"])
    with pytest.raises(ValueError, match="integer"):
        TrainConfig().with_overrides(["max_steps=1.5"])


def test_train_splits_setting():
    assert TrainConfig().train_splits == ("train",)
    for text in ("train_splits=train,val", 'train_splits=["train", "val"]'):
        assert TrainConfig().with_overrides([text]).train_splits == ("train", "val")
    for bad in ("train_splits=train,test", "train_splits=,", "train_splits=all", "train_splits=train,train"):
        with pytest.raises(ValueError, match="train_splits.*never test or all"):
            TrainConfig().with_overrides([bad])


def test_bf16_falls_back_to_32_on_cpu_with_a_warning():
    from mage.train.run import resolve_precision

    with pytest.warns(UserWarning, match="bf16-mixed.*CPU"):
        cfg = resolve_precision(TrainConfig(accelerator="cpu", precision="bf16-mixed"))
    assert cfg.precision == "32"


def test_lr_schedule_warmup_then_cosine():
    from mage.train.module import warmup_cosine

    f = [warmup_cosine(s, 10, 110, 0.1) for s in range(111)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a < b for a, b in itertools.pairwise(f[:10]))  # warm-up rises
    assert all(a >= b for a, b in itertools.pairwise(f[9:]))  # cosine falls
    assert f[60] == pytest.approx(0.55) and f[110] == pytest.approx(0.1)


# --- windows and augmentation ---------------------------------------------------------
def _split(dataset, **kw):
    from mage.train.data import TrainingSplit

    return TrainingSplit.load(dataset, N, **kw)


def test_windows_without_augmentation_equal_the_stored_rows(dataset):
    from mage.data.dataset import ProcessedDataset
    from mage.train.data import TrainingWindows

    ds, split = ProcessedDataset(dataset), _split(dataset)
    windows = TrainingWindows(split.motions, N, stride=3)
    unpadded = [w for w in range(len(windows)) if split.ids[int(windows.sequence[w])] not in split.padded]
    for w in (unpadded[0], unpadded[7], unpadded[-1]):
        rec = ds.load(split.ids[int(windows.sequence[w])])
        s = int(windows.starts[w])
        item = windows[w]
        assert item["x0"].shape == (N, 22, 6) and item["cond"].shape == (N, 54)
        torch.testing.assert_close(item["x0"], rec.rot6d[s:s + N], atol=1e-5, rtol=0)
        torch.testing.assert_close(item["cond"], rec.condition[s:s + N], atol=1e-4, rtol=0)


def _tracked_from_x0(x0):
    """Global rotations (N, 3, 3, 3) and positions relative to the head (N, 3, 3) of the
    tracked joints, by FK of the window's own 6D (translation-free)."""
    fk = forward_kinematics(rot.rot6d_to_matrix(x0.double()), None, Skeleton.smpl22())
    idx = list(TRACKED_JOINTS)
    p = fk.positions[:, idx]
    return fk.global_rotations[:, idx], p - p[:, :1]


@pytest.mark.parametrize("mirror_prob,random_yaw", [(0.0, False), (1.0, False), (0.0, True), (1.0, True)])
def test_augmented_condition_describes_the_augmented_body(dataset, mirror_prob, random_yaw):
    from mage.train.data import TrainingWindows

    split = _split(dataset)
    plain = TrainingWindows(split.motions, N)
    aug = TrainingWindows(split.motions, N, mirror_prob=mirror_prob, random_yaw=random_yaw, seed=3)
    for k in (2, 40):
        item = aug[k]
        R, p_rel = _tracked_from_x0(item["x0"])
        cond = item["cond"].double()
        # the condition's tracked rotations and head-relative positions are those of the
        # body in x0, whatever the augmentation did
        torch.testing.assert_close(cond[:, :18], rot.matrix_to_rot6d(R).reshape(N, 18), atol=1e-4, rtol=0)
        pos = cond[:, 36:45].reshape(N, 3, 3)
        torch.testing.assert_close(pos - pos[:, :1], p_rel, atol=1e-4, rtol=0)
        changed = not torch.allclose(item["x0"], plain[k]["x0"], atol=1e-4)
        assert changed == (mirror_prob > 0 or random_yaw)
        if random_yaw and mirror_prob == 0:  # only the root turns; heights are kept
            torch.testing.assert_close(item["x0"][:, 1:], plain[k]["x0"][:, 1:])
            heights = cond[:, 38:45:3], plain[k]["cond"][:, 38:45:3].double()
            torch.testing.assert_close(*heights, atol=1e-4, rtol=0)


def test_augmentation_is_a_function_of_seed_and_draw(dataset):
    from mage.train.data import TrainingWindows

    split = _split(dataset)
    a = TrainingWindows(split.motions, N, mirror_prob=0.5, random_yaw=True, seed=1)
    b = TrainingWindows(split.motions, N, mirror_prob=0.5, random_yaw=True, seed=1)
    n = len(a)
    torch.testing.assert_close(a[5]["cond"], b[5]["cond"])
    assert not torch.allclose(a[5]["cond"], a[5 + n]["cond"])  # same window, another draw


def test_short_sequences_are_padded_or_skipped(dataset):
    from mage.data.dataset import ProcessedDataset
    from mage.train.data import TrainingWindows

    padded = _split(dataset)
    assert padded.padded == ["train_03"] and padded.skipped == []
    i = padded.ids.index("train_03")
    assert padded.motions[i].num_frames == N + 1
    windows = TrainingWindows(padded.motions, N)
    w = int((windows.sequence == i).nonzero()[0])
    item = windows[w]
    rec = ProcessedDataset(dataset).load("train_03")  # 5 rows: 4 padding rows in front
    torch.testing.assert_close(item["x0"][-5:], rec.rot6d, atol=1e-5, rtol=0)
    torch.testing.assert_close(item["x0"][0], item["x0"][3])
    assert item["cond"][:3, 45:54].abs().max() == 0  # no motion over the padding

    skipped = _split(dataset, short_sequences="skip")
    assert skipped.skipped == ["train_03"] and "train_03" not in skipped.ids


def test_several_training_splits_are_loaded_together(dataset, tmp_path):
    import shutil

    from mage.data.dataset import ProcessedDataset

    root = tmp_path / "ds"
    shutil.copytree(dataset, root)
    manifest = json.loads((root / "manifest.json").read_text())
    train = manifest["splits"]["train"]
    manifest["splits"] = {"train": train[:-1], "val": train[-1:], "test": manifest["splits"]["test"]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    assert _split(root).ids == train[:-1]
    both = _split(root, split=("train", "val"))
    assert both.ids == train
    all_rows = torch.cat([ProcessedDataset(root).load(i).condition for i in train]).double()
    torch.testing.assert_close(both.cond_mean.double(), all_rows.mean(0), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        _split(root, split=("train", "dev"))
    with pytest.raises(ValueError, match="test sequence"):  # whatever the split is called
        _split(root, split="all")


def test_normalisation_statistics(dataset):
    from mage.data.dataset import ProcessedDataset

    ds = ProcessedDataset(dataset)
    all_rows = torch.cat([ds.load(i).condition for i in ds.ids("train")]).double()
    split = _split(dataset)
    torch.testing.assert_close(split.cond_mean.double(), all_rows.mean(0), atol=1e-5, rtol=0)
    torch.testing.assert_close(split.cond_std.double(), all_rows.std(0, unbiased=False).clamp_min(1e-3),
                               atol=1e-5, rtol=1e-4)
    assert (_split(dataset, std_floor=0.5).cond_std >= 0.5).all()


# --- sampler --------------------------------------------------------------------------
def test_sampler_shards_are_disjoint_and_deterministic():
    from mage.train.data import WindowSampler

    n, B = 103, 5
    ranks = [WindowSampler(n, B, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(3)
    k0, k1 = list(ranks[0]), list(ranks[1])
    assert len(k0) == len(k1) == len(ranks[0]) == (n // (2 * B)) * B
    assert not set(k0) & set(k1)
    assert len({k % n for k in k0 + k1}) == len(k0 + k1)  # distinct windows
    again = WindowSampler(n, B, num_replicas=2, rank=0, seed=7)
    again.set_epoch(3)
    assert list(again) == k0
    again.set_epoch(4)
    assert list(again) != k0


def test_sampler_resume_skips_exactly_the_batches_done():
    from mage.train.data import WindowSampler

    n, B = 50, 4  # 12 batches per epoch
    full = WindowSampler(n, B, seed=1)
    full.set_epoch(2)
    resumed = WindowSampler(n, B, seed=1, start_step=2 * 12 + 5)  # 5 batches into epoch 2
    resumed.set_epoch(2)
    assert list(resumed) == list(full)[5 * B:]
    resumed.set_epoch(3)
    full.set_epoch(3)
    assert list(resumed) == list(full)


def test_sampler_repeats_tiny_data_with_fresh_draws():
    from mage.train.data import WindowSampler

    s = WindowSampler(3, 8, num_replicas=2, rank=1)
    ks = list(s)
    assert len(ks) == 8 and len(set(ks)) == 8  # every draw its own augmentation
    assert {k % 3 for k in ks} == {0, 1, 2}


def test_source_weights_give_each_source_its_tempered_share():
    from mage.train.data import source_weights

    sources = ["big"] * 900 + ["small"] * 100
    assert source_weights(sources, 0.0) is None and source_weights(["a"] * 5, 1.0) is None
    for alpha in (0.5, 1.0):
        w = source_weights(sources, alpha)
        share_small = float(w[900:].sum())
        expected = 100 ** (1 - alpha) / (100 ** (1 - alpha) + 900 ** (1 - alpha))  # 0.25, 0.5
        assert w.sum().item() == pytest.approx(1.0)
        assert share_small == pytest.approx(expected)
        assert len(set(w[:900].tolist())) == 1  # equal within a source
    with pytest.raises(ValueError, match="source_balance"):
        source_weights(sources, 1.5)


def test_weighted_sampler_draws_the_shares_and_resumes_exactly():
    from mage.train.data import WindowSampler, source_weights

    n, B = 1000, 10  # 100 batches per epoch
    w = source_weights(["big"] * 900 + ["small"] * 100, 1.0)
    s = WindowSampler(n, B, seed=3, weights=w)
    draws = []
    for epoch in range(5):
        s.set_epoch(epoch)
        draws += list(s)
    assert len(draws) == len(set(draws)) == 5 * n  # a fresh number (augmentation) per draw
    small = sum(k % n >= 900 for k in draws) / len(draws)
    assert abs(small - 0.5) < 0.03  # 5000 draws: std of the share ~0.007
    full = WindowSampler(n, B, seed=3, weights=w)
    full.set_epoch(2)
    resumed = WindowSampler(n, B, seed=3, weights=w, start_step=2 * 100 + 7)
    resumed.set_epoch(2)
    assert list(resumed) == list(full)[7 * B:]
    with pytest.raises(ValueError, match="weights"):
        WindowSampler(n, B, weights=w[:10])


def test_augmentation_seeds_stay_apart_for_large_draw_numbers():
    from mage.train.data import _SEED_STRIDE, _mix

    assert _mix(1, 5) == _SEED_STRIDE + 5  # the linear mix below 2^40, as before
    big = 3 * _SEED_STRIDE + 7  # a weighted sampler's draw number after a few epochs
    assert _mix(0, big) != _mix(1, big - _SEED_STRIDE)  # the linear mix made these equal
    assert _mix(0, big) == _mix(0, big) and 0 <= _mix(0, big) < 1 << 63


def test_datamodule_weights_windows_by_the_source_of_their_sequence(dataset):
    from mage.data.sequence_ids import source_of
    from mage.train.data import WindowDataModule

    dm = WindowDataModule(dataset, tiny_config(source_balance=1.0))
    dm.setup()
    assert dm.train_dataloader().sampler.weights is None  # one source: uniform
    dm.split.ids = [f"{'ab'[i % 2]}__{id}" for i, id in enumerate(dm.split.ids)]  # two sources
    assert {source_of(id) for id in dm.split.ids} == {"a", "b"}
    assert source_of("train_00") == "" and source_of("CMU__01__01_01_poses") == "CMU"
    w = dm.train_dataloader().sampler.weights
    of_a = torch.tensor([dm.split.ids[i].startswith("a__") for i in dm.windows.sequence.tolist()])
    assert float(w[of_a].sum()) == pytest.approx(0.5)  # balance 1: equal shares
    assert dm.source_shares() == pytest.approx({"a": 0.5, "b": 0.5})
    dm.config = tiny_config(source_balance=0.0)
    natural = float(of_a.double().mean())
    assert dm.source_shares() == pytest.approx({"a": natural, "b": 1 - natural})


# --- runs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def finished_run(dataset, tmp_path_factory):
    from mage.train.run import train

    run = tmp_path_factory.mktemp("run") / "r"
    cfg = tiny_config(mirror_prob=0.5, random_yaw=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        final = train(cfg, dataset, run)
    return run, cfg, final


def test_run_folder_layout_and_final_checkpoint(finished_run, dataset):
    from mage.model.checkpoint import load_checkpoint, read_checkpoint_info
    from mage.model.checkpoint_paths import list_checkpoints, resolve_checkpoint
    from mage.train.data import TrainingSplit
    from mage.train.run import read_metrics

    run, cfg, final = finished_run
    assert final == run / "final"
    assert [s for s, _ in list_checkpoints(run)] == [3, 6]
    for d in [run / "final", run / "checkpoints" / "step_000003"]:
        assert {"model.safetensors", "config.json", "train_config.json"} <= {p.name for p in d.iterdir()}
        assert TrainConfig.load(d / "train_config.json") == cfg
    assert TrainConfig.load(run / "train_config.json") == cfg
    model_cfg, extra = read_checkpoint_info(final)
    assert model_cfg == cfg.model and extra["step"] == 6

    # final = the EMA weights of the last step, with the normalisation statistics
    model = load_checkpoint(resolve_checkpoint(run))
    state = torch.load(run / "checkpoints" / "step_000006" / "trainer.ckpt", weights_only=True)["state_dict"]
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, state[f"ema.module.{name}"])
    assert any(not torch.equal(state[f"model.{k}"], state[f"ema.module.{k}"])
               for k in model.state_dict() if "net." in k)
    split = TrainingSplit.load(dataset, N)
    torch.testing.assert_close(model.cond_mean, split.cond_mean)
    torch.testing.assert_close(model.cond_std, split.cond_std)

    rows = [r for r in read_metrics(run) if "train/loss" in r]
    assert [int(r["step"]) for r in rows] == list(range(6))
    assert all(math.isfinite(r["train/loss"]) for r in rows)
    lrs = [r["lr"] for r in read_metrics(run) if "lr" in r]
    assert lrs[0] == pytest.approx(cfg.lr / 2) and lrs[1] == pytest.approx(cfg.lr)


def test_resolve_checkpoint_rule(finished_run, tmp_path):
    from mage.model.checkpoint_paths import resolve_checkpoint

    run, _, _ = finished_run
    assert resolve_checkpoint(run) == run / "final"
    step = run / "checkpoints" / "step_000003"
    assert resolve_checkpoint(step) == step
    with pytest.raises(FileNotFoundError, match="no such"):
        resolve_checkpoint(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="not a checkpoint"):
        resolve_checkpoint(tmp_path)


def test_fresh_run_into_an_existing_run_is_refused(finished_run, dataset):
    from mage.train.run import train

    run, cfg, _ = finished_run
    with pytest.raises(ValueError, match="--resume"):
        train(cfg, dataset, run)
    with pytest.raises(ValueError, match="differs.*lr"):
        train(tiny_config(lr=1e-3, mirror_prob=0.5, random_yaw=True), dataset, run, resume=True)


def test_resume_refuses_other_training_sequences(finished_run, dataset, tmp_path):
    import shutil

    from mage.model.checkpoint_paths import TRAINING_DATA
    from mage.train.run import train

    run, cfg, _ = finished_run
    record = json.loads((run / TRAINING_DATA).read_text())
    assert record["splits"] == ["train"] and record["sequences"] == len(
        json.loads((Path(dataset) / "manifest.json").read_text())["splits"]["train"])
    root = tmp_path / "ds"  # the same data, one training sequence moved to a val split
    shutil.copytree(dataset, root)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["splits"]["val"] = manifest["splits"]["train"][-1:]
    manifest["splits"]["train"] = manifest["splits"]["train"][:-1]
    (root / "manifest.json").write_text(json.dumps(manifest))
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with pytest.raises(ValueError, match="training sequences differ"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_steps changed: stretched LR schedule
        train(dataclasses.replace(cfg, max_steps=cfg.max_steps + 1), root, copy, resume=True)


def test_cli_reports_user_errors(tmp_path, dataset, capsys):
    from mage.cli.main import main

    def cli(*args):
        code = main(["train", *map(str, args)])
        return code, capsys.readouterr().err

    code, err = cli("--data", dataset, "--out", tmp_path / "r")
    assert code == 2 and "--config CFG or --preset NAME" in err
    code, err = cli("--preset", "mage-small", "--data", dataset, "--out", tmp_path / "r", "--set", "lrr=1")
    assert code == 2 and "unknown key 'lrr'" in err
    code, err = cli("--preset", "mage-small", "--data", tmp_path / "missing", "--out", tmp_path / "r")
    assert code == 2 and "missing: no such folder" in err
    code, err = cli("--data", dataset, "--out", tmp_path / "r", "--resume")
    assert code == 2 and "train_config.json not found" in err


def test_cli_builds_config_from_flags():
    import argparse

    from mage.cli import train as cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--preset", "mage-small", "--data", "d", "--out", "o",
                              "--max-steps", "7", "--devices", "2", "--strategy", "ddp",
                              "--precision", "32", "--seed", "5", "--set", "batch_size=3"])
    cfg = cli.build_config(args)
    assert cfg.model == TrainConfig(model="mage-small").model
    assert (cfg.max_steps, cfg.devices, cfg.strategy, cfg.precision, cfg.seed,
            cfg.batch_size) == (7, 2, "ddp", "32", 5, 3)


def test_cpu_preset_fills_only_the_unset_settings(tmp_path, capsys):
    import argparse

    from mage.cli import train as cli
    from mage.train.config import CPU_DEFAULTS

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())

    def build(*extra, cuda):
        args = parser.parse_args(["train", "--preset", "mage-small", "--data", "d", "--out", "o", *extra])
        return cli.build_config(args, cuda_available=cuda)

    cpu = build(cuda=False)
    assert {k: getattr(cpu, k) for k in CPU_DEFAULTS} == CPU_DEFAULTS == \
        {"batch_size": 64, "num_workers": 0, "precision": "32", "log_every": 10}
    assert "CPU preset" in capsys.readouterr().out
    mine = build("--set", "batch_size=8", "--precision", "32", cuda=False)
    assert (mine.batch_size, mine.num_workers) == (8, 0)
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps({"model": "mage-small", "num_workers": 3}))
    args = parser.parse_args(["train", "--config", str(cfg_file), "--data", "d", "--out", "o"])
    assert cli.build_config(args, cuda_available=False).num_workers == 3  # the file's setting stays
    gpu = build(cuda=True)
    assert (gpu.batch_size, gpu.num_workers, gpu.precision) == (256, 2, "bf16-mixed")
    forced = build("--accelerator", "cpu", cuda=True)
    assert forced.batch_size == 64


def test_cli_short_run_is_quiet_with_progress_and_first_and_last_steps_logged(dataset, tmp_path):
    """A run shorter than log_every still logs its first and last steps; the output is
    our lines and one progress bar with steps/s and the ETA, no third-party noise."""
    from mage.train.run import read_metrics

    run = tmp_path / "r"
    cmd = [sys.executable, "-m", "mage.cli.main", "train", "--preset", "mage-small", "--data", str(dataset),
           "--out", str(run), "--max-steps", "7", "--set", "model.width=16", "--set", "model.window=8",
           "--set", "model.depth.S1=1", "--set", "model.depth.S2=1", "--set", "model.depth.S3=1",
           "--set", "batch_size=4", "--set", "warmup_steps=2", "--set", "log_every=5",
           "--accelerator", "cpu"]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stdout + out.stderr
    assert "step/s" in text and "7/7" in text  # the bar: steps per second, over the whole run
    assert "<" in text.split("7/7")[0]  # tqdm's "elapsed<remaining" (the ETA)
    for noise in ("Tip", "litlogger", "FLOPs", "deprecated", "GPU available", "TPU available",
                  "Warning", "┃"):
        assert noise not in text, f"{noise!r} in the output:\n{text}"
    steps = sorted(int(r["step"]) for r in read_metrics(run) if "train/loss" in r)
    assert steps == [0, 4, 6]  # first, every log_every (step 5 = index 4), last
    lr_steps = sorted(int(r["step"]) for r in read_metrics(run) if "lr" in r)
    assert 0 in lr_steps and 6 in lr_steps


def _losses(run):
    from mage.train.run import read_metrics

    rows = read_metrics(run)
    return ({int(r["step"]): r["train/loss"] for r in rows if "train/loss" in r},
            {int(r["step"]): r["lr"] for r in rows if "lr" in r})


@pytest.mark.slow
def test_kill9_then_resume_continues_like_an_uninterrupted_run(dataset, tmp_path):
    from mage.model.checkpoint import load_checkpoint
    from mage.model.checkpoint_paths import list_checkpoints
    from mage.train.run import train

    steps = 30
    cfg = tiny_config(max_steps=steps, checkpoint_every=4, warmup_steps=5, mirror_prob=0.5,
                      random_yaw=True, num_workers=0)
    cfg_path = tmp_path / "cfg.json"
    cfg.save(cfg_path)
    # a run killed (SIGKILL) soon after its first checkpoint
    run = tmp_path / "run"
    log = tmp_path / "killed.log"
    with log.open("w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "mage.cli.main", "train", "--config", str(cfg_path),
                                 "--data", str(dataset), "--out", str(run)], stdout=fh, stderr=fh,
                                # one thread, like this process (conftest): same float reductions
                                env={**os.environ, "OMP_NUM_THREADS": "1"})
        try:
            deadline = time.time() + 120
            while not list_checkpoints(run) and proc.poll() is None and time.time() < deadline:
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
    done = list_checkpoints(run)
    assert done and done[-1][0] < steps and not (run / "final").exists(), \
        f"not killed mid-run: {done}\n{log.read_text()[-3000:]}"
    k = done[-1][0]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # resumed with its saved config (as `mage train --out RUN --resume` does)
        train(TrainConfig.load(run / "train_config.json"), dataset, run, resume=True)
        # reference: uninterrupted, with a DataLoader worker (data must not depend on it)
        ref = tmp_path / "ref"
        train(dataclasses.replace(cfg, num_workers=1), dataset, ref)
    assert [s for s, _ in list_checkpoints(run)][-1] == steps

    # the resumed run logs into a new version that starts at the checkpoint step, and
    # the merged curve is the uninterrupted one (same batches, augmentation, noise, LR,
    # optimizer and EMA state)
    second = max((run / "logs").glob("version_*")) / "metrics.csv"
    with second.open() as fh:
        resumed_steps = [int(float(r["step"])) for r in csv.DictReader(fh) if r.get("train/loss")]
    assert resumed_steps[0] == k and resumed_steps[-1] == steps - 1
    loss_run, lr_run = _losses(run)
    loss_ref, lr_ref = _losses(ref)
    assert sorted(loss_ref) == list(range(steps))
    # Lightning logs step k - 1's row after the callbacks of that batch, so a SIGKILL that
    # lands between checkpoint k and that row loses the row (seen on a loaded machine);
    # the training state is unaffected. Every other step must be there.
    assert set(range(steps)) - set(loss_run) <= {k - 1}
    for s in sorted(loss_run):
        assert lr_run[s] == pytest.approx(lr_ref[s], rel=1e-12)
        assert loss_run[s] == pytest.approx(loss_ref[s], rel=1e-5), s
    a, b = load_checkpoint(run / "final"), load_checkpoint(ref / "final")
    for (name, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(va, vb, atol=1e-6, rtol=1e-5, msg=name)


def test_cli_resume_uses_the_saved_config(finished_run):
    import argparse

    from mage.cli import train as cli

    run, cfg, _ = finished_run
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(["train", "--data", "d", "--out", str(run), "--resume", "--max-steps", "9"])
    assert cli.build_config(args) == dataclasses.replace(cfg, max_steps=9)


DDP_SCRIPT = textwrap.dedent("""
    # Runs `mage train` with the sampler recording what each rank draws. Lightning's DDP
    # launcher re-runs this script for rank 1, so the recording applies to every rank.
    import json, os, sys
    from mage.train import data

    _iter = data.WindowSampler.__iter__

    def recording_iter(self):
        ks = list(_iter(self))
        path = os.path.join(os.environ["RECORD_DIR"], f"rank{self.rank}_epoch{self.epoch}.json")
        with open(path, "w") as fh:
            json.dump({"world": self.num_replicas, "n": self.num_windows, "k": ks}, fh)
        return iter(ks)

    data.WindowSampler.__iter__ = recording_iter
    from mage.cli.main import main
    sys.exit(main(sys.argv[1:]))
""")


@pytest.mark.slow
def test_ddp_two_cpu_processes(dataset, tmp_path):
    from mage.model.checkpoint import load_checkpoint
    from mage.model.checkpoint_paths import list_checkpoints

    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    record = tmp_path / "record"
    record.mkdir()
    cfg_path = tmp_path / "cfg.json"
    tiny_config(max_steps=3, checkpoint_every=2, batch_size=3).save(cfg_path)
    run = tmp_path / "run"
    out = subprocess.run(
        [sys.executable, str(script), "train", "--config", str(cfg_path), "--data", str(dataset),
         "--out", str(run), "--accelerator", "cpu", "--devices", "2", "--strategy", "ddp"],
        capture_output=True, text=True, env={**os.environ, "RECORD_DIR": str(record)}, timeout=240,
        check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    assert [s for s, _ in list_checkpoints(run)] == [2, 3]
    load_checkpoint(run / "final")
    assert TrainConfig.load(run / "train_config.json").devices == 2
    r0 = json.loads((record / "rank0_epoch0.json").read_text())
    r1 = json.loads((record / "rank1_epoch0.json").read_text())
    assert r0["world"] == r1["world"] == 2
    assert len(r0["k"]) == len(r1["k"]) > 0 and not set(r0["k"]) & set(r1["k"])
