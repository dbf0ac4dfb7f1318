"""`mage demo`: the pipeline on the synthetic input and on a user's file (tiny untrained model)."""

import re
from pathlib import Path

import pytest
import torch

from mage.cli.main import main
from mage.core import Motion
from mage.data.bvh import load_bvh
from mage.demo.run import OUTPUT_FILES, run_demo
from mage.demo.synthetic import synthetic_tracking
from mage.model import MageConfig, MageModel
from mage.model.checkpoint import save_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    save_checkpoint(MageModel(MageConfig.preset("mage-small").with_overrides(width=16, window=16)), path)
    return path


def test_demo_synthetic_writes_consistent_outputs(tmp_path, tiny_ckpt, capsys):
    rc = main(["demo", "-o", str(tmp_path / "out"), "--ckpt", str(tiny_ckpt), "--duration", "5", "--gif"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "SYNTHETIC" in printed and "done in" in printed
    out = tmp_path / "out"
    pred = Motion.load(out / "prediction.npz")
    tracking, _ = synthetic_tracking(duration_s=5.0, fps=60)
    assert pred.num_frames == tracking.num_frames == 300
    # placed by the tracked head: the predicted head joint is on the tracker
    assert torch.allclose(pred.joint_positions()[:, 15], tracking.positions[:, 0], atol=1e-4)
    back = load_bvh(out / "prediction.bvh", rig="smpl")
    k = back.meta.get("dropped_leading_frames", 0)  # an untrained model's first frames may jump
    assert back.num_frames == pred.num_frames - k and k < 30
    assert torch.allclose(back.joint_positions()[:, 15], pred.joint_positions()[k:, 15], atol=1e-3)
    assert (out / "demo.gif").stat().st_size > 1000
    page = (out / "viewer.html").read_text()
    assert "prediction" in page and "synthetic reference" in page
    written = {p.name for p in out.iterdir()}
    assert written == {"prediction.npz", "prediction.bvh", "synthetic_reference.npz", "demo.gif",
                       "preview.png", "viewer.html"}
    assert written <= set(OUTPUT_FILES) | {"demo.gif"}
    # the README's table of what the demo writes is this list, and its picture is a preview.png
    readme = (ROOT / "README.md").read_text()
    outputs = readme.split("| file | what it is |", 1)[1].split("\n\n", 1)[0]  # that table only
    table = set(re.findall(r"^\| `([\w.]+)` \|", outputs, flags=re.M))
    assert table == written - {"demo.gif"} | {"demo.mp4"}, table
    import imageio.v2 as imageio

    shown = imageio.imread(ROOT / "docs" / "images" / "demo_frame.png")
    assert shown.shape[:2] == imageio.imread(out / "preview.png").shape[:2] == (540, 960)


def test_demo_on_a_motion_file_prints_metrics(tmp_path, tiny_ckpt):
    _, reference = synthetic_tracking(duration_s=4.0, fps=60)
    reference.save(tmp_path / "walk.npz")
    result = run_demo(tmp_path / "out", input_path=tmp_path / "walk.npz", ckpt=str(tiny_ckpt),
                      render=False, log=lambda _: None)
    assert result.metrics is not None and result.metrics["h_pe"] >= 0
    assert result.metrics["mpjpe"] > 0  # an untrained model is not the ground truth
    assert set(result.seconds) >= {"input", "model", "predict", "write", "metrics", "viewer"}
    assert "ground truth (npz)" in result.outputs


def test_demo_errors(tmp_path, tiny_ckpt, capsys):
    assert main(["demo", "-o", str(tmp_path), "--ckpt", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
    assert main(["demo", "-o", str(tmp_path), "--ckpt", str(tiny_ckpt), "--input", str(tmp_path / "x.bvh")]) == 2
    assert "x.bvh: input file not found" in capsys.readouterr().err
