"""The pre-registered adoption rule of research/recipe_ablation/run.py."""

from benchmarks.common import model_tag
from research.recipe_ablation import run as recipe_ablation


def _module():
    return recipe_ablation


def _m(mpjpe=7.0, l_pe=9.0, jitter=10.0, stride=0.9):
    return {"mpjpe": mpjpe, "l_pe": l_pe, "jitter": jitter, "gt_jitter": 5.0, "stride_ratio": stride}


def test_adopts_only_a_smoother_variant_within_the_accuracy_tolerance():
    adopt = _module().adopt
    base = {"offline": _m(), "online": _m()}
    assert adopt(base, {"offline": _m(jitter=9.0), "online": _m(jitter=9.5, mpjpe=7.2)}) == (True, [])
    ok, failed = adopt(base, {"offline": _m(jitter=9.0), "online": _m(jitter=10.0)})
    assert not ok and failed == ["online jitter ratio not lower"]
    ok, failed = adopt(base, {"offline": _m(jitter=9.0, l_pe=9.3), "online": _m(jitter=9.0)})
    assert not ok and failed == ["offline l_pe 9.30 > 1.03 x 9.00"]  # 3.3% worse
    ok, failed = adopt(base, {"offline": _m(jitter=9.0), "online": _m(jitter=9.0, stride=0.6)})
    assert not ok and failed == ["online stride ratio 0.60 < 0.7"]


def test_variant_sampling_takes_only_sampling_keys_and_numbers():
    import argparse

    import pytest

    parse = _module().sampling_override
    assert parse("init_noise_scale=1e-6") == ("init_noise_scale", 1e-6)
    assert parse("sampling_steps=8") == ("sampling_steps", 8)
    args = _module().parse_args(["--baseline", "b", "--variant", "v", "--name", "n",
                                 "--variant-sampling", "eta=0.5", "--variant-sampling", "sampling_steps=8"])
    assert args.variant_sampling == [("eta", 0.5), ("sampling_steps", 8)]  # repeated flags add up
    for bad in ("width=8", "init_noise_scale", "eta=abc"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(bad)


def test_cache_tag_changes_with_the_sampling_config_not_only_the_weights(tmp_path):
    import json
    import shutil

    from mage.model.checkpoint_paths import resolve_checkpoint

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(resolve_checkpoint("cmu-small"), a)
    shutil.copytree(a, b)
    assert model_tag(str(a)).split("-")[-1] == model_tag(str(b)).split("-")[-1]  # same files, same fingerprint
    config = json.loads((b / "config.json").read_text())
    config["init_noise_scale"] = 1e-6
    (b / "config.json").write_text(json.dumps(config))
    assert model_tag(str(a)).split("-")[-1] != model_tag(str(b)).split("-")[-1]
