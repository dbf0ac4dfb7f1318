"""Model card numbers and the `mage model` command."""

import json

import pytest
import torch

from mage.cli.main import main
from mage.model import MageConfig, MageModel
from mage.model.card import model_card, time_sampling
from mage.model.checkpoint import save_checkpoint


def test_flops_match_a_hand_count_for_a_single_stage_mlp():
    D, N, L = 32, 8, 2
    cfg = MageConfig.preset("ablation-s3").with_overrides(width=D, window=N, depth={"S3": L}, mlp_ratio=2.0)
    H = 2 * D
    card = model_card(MageModel(cfg), steps=3)
    time_embed = 2 * (2 * D * D)  # two Linear(D, D) on one timestep
    fuse = 2 * N * (54 + 22 * 6) * D
    block = 2 * D * N * N + 2 * (2 * N * D * H)  # frame mixing + feature MLP
    head = 2 * N * D * 22 * 6
    assert card.flops_per_call_by_stage == {"S3": fuse + L * block + head, "time_embed": time_embed}
    assert card.flops_per_call == time_embed + fuse + L * block + head
    assert card.flops_per_window == 3 * card.flops_per_call
    assert card.flops_per_frame_offline == pytest.approx(card.flops_per_window / N)
    assert card.weights_bytes == 4 * (sum(p.numel() for p in MageModel(cfg).parameters()) + 2 * 54)
    assert 0 < card.activations_bytes_largest <= card.activations_bytes_total
    # the largest activation is one (1, N, hidden) tensor of floats
    assert card.activations_bytes_largest >= 4 * N * H


def test_card_covers_every_stage_in_both_modes():
    for name in ("ablation-s0", "ablation-sequential"):
        cfg = MageConfig.preset(name).with_overrides(width=32, window=8)
        card = model_card(MageModel(cfg))
        assert set(cfg.scales) <= set(card.flops_per_call_by_stage)
        assert all(card.flops_per_call_by_stage[s] > 0 for s in cfg.scales)
        text = card.format()
        assert "parameters:" in text and all(f"  {s} " in text for s in cfg.scales)


def test_time_sampling_reports_positive_numbers():
    cfg = MageConfig.preset("mage-small").with_overrides(width=32, window=8)
    t = time_sampling(MageModel(cfg), batch=2, repeats=2, warmup=1)
    assert t["median_ms"] > 0 and t["p95_ms"] >= t["median_ms"]
    assert t["frames_per_s"] == pytest.approx(2 * 8 / (t["median_ms"] / 1e3))


def test_cli_model_list_and_info(capsys, tmp_path):
    assert main(["model", "list"]) == 0
    out = capsys.readouterr().out
    assert "mage-small" in out and "ablation-sequential" in out
    from mage.model.checkpoint_paths import DEFAULT_CHECKPOINT, available_checkpoints

    packaged = out.split("packaged checkpoints")[1]  # trained weights listed apart from presets
    assert all(name in packaged for name in available_checkpoints())
    assert f"{DEFAULT_CHECKPOINT} " in packaged and "(default)" in packaged and "CC BY-NC" in packaged
    assert main(["model", "info", "mage-small", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["parameters"]["total"] == 908_317 and info["window"] == 48
    assert info["flops_per_window"] == 4 * info["flops_per_call"]
    torch.manual_seed(0)
    cfg = MageConfig.preset("mage-small").with_overrides(width=32)
    save_checkpoint(MageModel(cfg), tmp_path / "ckpt")
    assert main(["model", "info", str(tmp_path / "ckpt"), "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert f"checkpoint {tmp_path / 'ckpt'}" in out and "DDIM steps: 2" in out and "S2" in out


def test_cli_model_errors(capsys):
    assert main(["model", "info", "no-such-preset"]) == 2
    err = capsys.readouterr().err
    assert "neither a preset" in err and "mage-paper" in err
    assert main(["model"]) == 1  # no sub-command: help
