"""Bundled checkpoints: model cards, licences, the default model, the package budget."""

import json

import pytest

from mage.model.checkpoint_paths import (
    CARD_FILE,
    DEFAULT_CHECKPOINT,
    PACKAGED_DIR,
    available_checkpoints,
    checkpoint_card,
    licence_notice,
)

PACKAGE_BUDGET_BYTES = 40 * 1024 * 1024  # all bundled checkpoints together (data issue)


def test_default_is_packaged():
    assert DEFAULT_CHECKPOINT in available_checkpoints()


@pytest.mark.parametrize("name", available_checkpoints())
def test_every_packaged_checkpoint_has_a_card_with_its_licence(name):
    folder = PACKAGED_DIR / name
    card = checkpoint_card(folder)
    assert card["licence"] and card["data"] and isinstance(card["commercial_use"], bool)
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert card["licence"].split(" (")[0] in readme  # the card's text names the same licence
    if not card["commercial_use"]:
        assert "non-commercial" in readme.lower()
        alternative = card["commercial_alternative"]
        assert alternative in available_checkpoints()
        assert checkpoint_card(PACKAGED_DIR / alternative)["commercial_use"] is True


@pytest.mark.parametrize("name", available_checkpoints())
def test_card_training_command_reproduces_the_packaged_train_config(name):
    """The `mage train` command quoted in a model card, run through the CLI's own config
    builder, gives the packaged train_config.json (so the card says how to retrain it)."""
    import argparse
    import re
    import shlex

    from mage.cli import train as cli
    from mage.train.config import TrainConfig

    folder = PACKAGED_DIR / name
    quoted = re.findall(r"`(mage train [^`]+)`", (folder / "README.md").read_text(encoding="utf-8"))
    assert len(quoted) == 1, f"{name}: expected one `mage train ...` command in its card"
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    args = parser.parse_args(shlex.split(quoted[0])[1:])
    built = cli.build_config(args, cuda_available=False)
    # through TrainConfig and JSON both: settings added since a model was trained take
    # their defaults, tuples compare as the file's lists
    packaged = TrainConfig.from_dict(json.loads((folder / "train_config.json").read_text()))
    assert json.loads(json.dumps(built.to_dict())) == json.loads(json.dumps(packaged.to_dict()))


def test_bundled_checkpoints_fit_the_package_budget():
    total = sum(f.stat().st_size for f in PACKAGED_DIR.rglob("*") if f.is_file())
    assert total <= PACKAGE_BUDGET_BYTES


def test_licence_notice_only_for_non_commercial_weights(tmp_path):
    assert licence_notice(tmp_path) is None  # a user's own run has no card
    (tmp_path / CARD_FILE).write_text(json.dumps({"licence": "CC BY-NC 4.0", "commercial_use": False,
                                                  "commercial_alternative": "free-model"}))
    line = licence_notice(tmp_path)
    assert "CC BY-NC 4.0" in line and "--ckpt free-model" in line
    (tmp_path / CARD_FILE).write_text(json.dumps({"licence": "MIT", "commercial_use": True}))
    assert licence_notice(tmp_path) is None


def test_unreadable_card_is_a_one_line_error(tmp_path):
    (tmp_path / CARD_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="card.json: not a readable model card"):
        checkpoint_card(tmp_path)
