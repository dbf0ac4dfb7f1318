import json
import subprocess
import sys

import pytest

from mage.core import multiscale
from mage.model import PRESETS, MageConfig
from mage.model.config import DEFAULT_GROUPS, PRESET_DESCRIPTIONS


def test_presets_exist_and_round_trip_through_json():
    assert {"mage-paper", "mage-small", "ablation-s3", "ablation-s2s3", "ablation-s0",
            "ablation-cf", "ablation-cfrec", "ablation-sequential"} <= set(PRESETS)
    assert set(PRESET_DESCRIPTIONS) == set(PRESETS)
    for name in PRESETS:
        cfg = MageConfig.preset(name)
        again = MageConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
        assert again == cfg, name


def test_paper_and_small_presets_have_the_issue_settings():
    paper, small = MageConfig.preset("mage-paper"), MageConfig.preset("mage-small")
    assert (paper.width, paper.window, paper.sampling_steps) == (512, 120, 4)
    assert paper.scales == ("S1", "S2", "S3") and paper.mode == "gradual" and paper.fusion == "c+f+frec"
    assert 40 <= small.window <= 60 and 128 <= small.width <= 192 and small.sampling_steps == 4


def test_ablations_differ_from_paper_only_where_named():
    paper = MageConfig.preset("mage-paper").to_dict()
    expected = {
        "ablation-s3": {"scales", "depth"}, "ablation-s2s3": {"scales", "depth"},
        "ablation-s0": {"scales", "depth"}, "ablation-cf": {"fusion"},
        "ablation-cfrec": {"fusion"}, "ablation-sequential": {"mode", "fusion", "xt_input"},
    }
    for name, keys in expected.items():
        d = MageConfig.preset(name).to_dict()
        assert {k for k in d if d[k] != paper[k]} == keys, name
    assert MageConfig.preset("ablation-s3").scales == ("S3",)
    assert MageConfig.preset("ablation-s0").scales == ("S0", "S1", "S2", "S3")


def test_unknown_keys_raise_and_list_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['widht'\].*valid keys:.*width"):
        MageConfig.from_dict({"widht": 128})
    with pytest.raises(ValueError, match="widht"):
        MageConfig.preset("mage-small").with_overrides(widht=3)
    with pytest.raises(ValueError, match="unknown 'mage-huge'.*mage-paper"):
        MageConfig.preset("mage-huge")


@pytest.mark.parametrize("overrides, match", [
    ({"width": "512"}, "width: expected an integer"),
    ({"width": 512.0}, "width: expected an integer"),
    ({"window": True}, "window: expected an integer"),
    ({"eta": "0"}, "eta: expected a number"),
    ({"scales": "S3"}, "scales: expected a list"),
    ({"depth": [4, 4]}, "depth: expected a mapping"),
    ({"width": 0}, "width: must be >= 1"),
    ({"scales": ["S3", "S1"]}, "scales: must run coarse to fine"),
    ({"scales": ["S1", "S2"]}, "end with 'S3'"),
    ({"scales": ["S4", "S3"]}, r"scales: unknown \['S4'\]"),
    ({"mode": "parallel"}, "mode: unknown 'parallel'; valid: gradual, sequential"),
    ({"fusion": "c+x"}, "fusion: unknown"),
    ({"block": "lstm"}, "block: unknown"),
    ({"timestep_spacing": "uniform"}, "timestep_spacing: unknown"),
    ({"mode": "sequential"}, "fusion: 'c\\+f\\+frec' needs a latent F"),
    ({"mode": "sequential", "fusion": "c+frec", "xt_input": "first"}, "xt_input"),
    ({"depth": {"S5": 2}}, r"depth: unknown scale\(s\) \['S5'\]"),
    ({"depth": {"S1": 0}}, "depth: every used stage needs >= 1 block"),
    ({"stage_loss_weights": {"S2": -1.0}}, "stage_loss_weights: must be >= 0"),
    ({"groups": {"S1": [[0, 1]]}}, "groups\\['S1'\\]: must partition"),
    ({"groups": {"S3": [[j] for j in range(22)]}}, "S3 is always the 22 joints"),
    ({"block": "transformer", "width": 30, "heads": 4}, "not divisible by heads"),
    ({"sampling_steps": 2000}, "exceeds train_timesteps"),
    ({"window": 1, "velocity_weight": 1.0}, "window >= 2"),
    ({"window": 2, "acceleration_weight": 1.0}, "window >= 3"),
    ({"acceleration_weight": -1.0}, "acceleration_weight: must be >= 0"),
])
def test_invalid_values_raise_clear_errors(overrides, match):
    with pytest.raises(ValueError, match=match):
        MageConfig.preset("mage-paper").with_overrides(**overrides)


def test_with_overrides_merges_dicts_and_converts_lists():
    cfg = MageConfig.preset("mage-paper").with_overrides(depth={"S3": 7}, scales=["S2", "S3"])
    assert cfg.depth["S3"] == 7 and cfg.depth["S1"] == MageConfig().depth["S1"]
    assert cfg.scales == ("S2", "S3")
    assert MageConfig(eta=1).eta == 1.0 and isinstance(MageConfig(eta=1).eta, float)


def test_from_dict_takes_defaults_for_missing_keys():
    assert MageConfig.from_dict({}) == MageConfig.preset("mage-paper")
    with pytest.raises(ValueError, match="expected a mapping"):
        MageConfig.from_dict([("width", 3)])


def test_default_groups_are_the_core_groupings():
    assert DEFAULT_GROUPS == {"S0": multiscale.S0_GROUPS, "S1": multiscale.S1_GROUPS,
                              "S2": multiscale.S2_GROUPS}
    cfg = MageConfig.preset("ablation-s0")
    assert [cfg.num_nodes(s) for s in cfg.scales] == [1, 6, 11, 22]


def test_non_nested_groups_are_rejected_when_the_hierarchy_is_built():
    s1 = [list(g) for g in DEFAULT_GROUPS["S1"]]
    s1[0], s1[1] = [0, 3, 6, 9, 12], [15]  # head split: S2's (12, 15) no longer fits in one S1 node
    cfg = MageConfig().with_overrides(groups={"S1": s1})
    with pytest.raises(ValueError, match="not inside one group"):
        cfg.hierarchy()


def test_config_module_does_not_import_torch():
    code = "import sys, mage.model.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "False", out.stderr
