"""``mage predict``, writers and load_pretrained (tiny random-weight checkpoints)."""

import json

import numpy as np
import pytest
import torch
from inference_helpers import smooth_motion, tiny_model

from mage.cli.main import main
from mage.core import Motion, Tracking
from mage.core import rotations as rot
from mage.inference import pretrained
from mage.inference.device import DeviceConfig
from mage.inference.options import SamplingOptions
from mage.inference.tracking_log import TrackingLog, write_tracking_log
from mage.inference.writers import motion_to_json, write_motion
from mage.model import checkpoint_paths


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    from mage.model.checkpoint import save_checkpoint

    return save_checkpoint(tiny_model(window=8), tmp_path_factory.mktemp("ckpt") / "tiny")


def test_predict_motion_file_prints_metrics_and_writes_json(ckpt, tmp_path, capsys):
    src = tmp_path / "walk.npz"
    smooth_motion(30, fps=120).save(src)  # resampled to 60 fps -> 15 frames
    out = tmp_path / "pred.json"
    assert main(["predict", "--ckpt", str(ckpt), "--input", str(src), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "predicted 15 frames" in text and "MPJPE" in text and "Jitter" in text
    doc = json.loads(out.read_text())
    assert doc["format"] == "mage-pose-json-v1" and doc["num_frames"] == 15 and doc["fps"] == 60
    gt_head = Tracking.from_motion(Motion.load(src).resample(60)).positions[:, 0]
    heads = np.array([f["positions"][15] for f in doc["frames"]])
    assert np.allclose(heads, gt_head.numpy(), atol=1e-4)  # placed by the tracked head


@pytest.mark.parametrize("fmt,suffix", [("npz", ".npz"), ("amass", ".npz"), ("bvh", ".bvh")])
def test_predict_tracking_log_with_gap_to_motion_formats(ckpt, tmp_path, capsys, fmt, suffix):
    tr = Tracking.from_motion(smooth_motion(40))
    P, Q = DeviceConfig("openxr").to_devices(tr.rotations, tr.positions)
    P = P.numpy().copy()
    P[10:30, 2] = np.nan  # right controller lost for 1/3 s
    log_path = tmp_path / "session.csv"
    write_tracking_log(log_path, TrackingLog(np.arange(40) / 60 + 0.004, P, Q.numpy()))
    out = tmp_path / f"pred{suffix}"
    assert main(["predict", "--ckpt", str(ckpt), "--input", str(log_path), "--frame", "openxr",
                 "-o", str(out), "--format", fmt, "--mode", "online", "--steps", "2"]) == 0
    text = capsys.readouterr().out
    assert "warning" in text and "right: tracking lost from 0.154 s to 0.504 s" in text
    from mage.data.io import load_motion

    if fmt == "bvh":  # the file as written (the importer may drop leading frames of a
        from mage.data.bvh import read_bvh  # random model's output as a calibration pose)

        back = read_bvh(out)
        assert back.num_frames == 40 and abs(back.fps - 60) < 1e-6
    elif fmt != "amass":
        back = load_motion(out)
        assert back.num_frames == 40 and back.fps == 60


def test_json_writer_matches_the_motion(tmp_path):
    m = smooth_motion(6)
    path = write_motion(m, tmp_path / "m.json")
    doc = json.loads(path.read_text())
    assert doc == json.loads(json.dumps(motion_to_json(m)))
    q = torch.tensor([f["rotations"] for f in doc["frames"]], dtype=torch.float64)
    assert torch.allclose(rot.quaternion_to_matrix(q), m.rotations.double(), atol=1e-5)
    p = np.array([f["positions"] for f in doc["frames"]])
    assert np.allclose(p, m.joint_positions().numpy(), atol=1e-5)
    assert doc["joint_names"][15] == "head" and doc["parents"][20] == 18
    with pytest.raises(ValueError, match="format 'json' writes .json files"):
        write_motion(m, tmp_path / "m.npz", "json")
    with pytest.raises(ValueError, match="cannot tell the output format"):
        write_motion(m, tmp_path / "m.txt")


def test_predict_errors_are_one_line(ckpt, tmp_path, capsys):
    src = tmp_path / "m.npz"
    smooth_motion(10).save(src)
    cases = [
        (["--input", str(tmp_path / "missing.csv"), "-o", str(tmp_path / "o.npz")],
         "missing.csv: input file not found"),
        (["--input", str(src), "-o", str(tmp_path / "o.npz"), "--frame", "openxr"], "apply to tracking logs"),
        (["--input", str(src), "-o", str(tmp_path / "o.txt")], "cannot tell the output format"),
        (["--input", str(src), "-o", str(tmp_path / "o.npz"), "--device", "cuda"], "CUDA is not available"),
    ]
    if torch.cuda.is_available():
        cases.pop()
    for extra, msg in cases:
        assert main(["predict", "--ckpt", str(ckpt)] + extra) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1


def test_load_pretrained_names_and_paths(ckpt, tmp_path, monkeypatch):
    import shutil

    packaged = tmp_path / "checkpoints"
    shutil.copytree(ckpt, packaged / "demo")
    (packaged / "half").mkdir()
    (packaged / "half" / "config.json").write_text("{}")
    monkeypatch.setattr(checkpoint_paths, "PACKAGED_DIR", packaged)
    assert checkpoint_paths.available_checkpoints() == ["demo"]
    model = pretrained.load_pretrained("demo")
    assert model.window == 8 and not model.training
    assert pretrained.load_pretrained(str(ckpt)).window == 8
    with pytest.raises(FileNotFoundError, match="'mage-huge' is neither .* packaged checkpoints: demo"):
        pretrained.load_pretrained("mage-huge")
    with pytest.raises(FileNotFoundError, match="incomplete checkpoint, missing model.safetensors"):
        pretrained.load_pretrained("half")
    with pytest.raises(FileNotFoundError, match="checkpoint folder not found"):
        pretrained.load_pretrained(str(tmp_path / "nowhere"))


def test_every_cli_choice_is_one_the_modules_accept(tmp_path):
    """--frame and --format offer the torch-free names of mage.inference.options; the
    modules that implement them accept every one."""
    from mage.cli import predict
    from mage.inference.writers import format_from_path

    for convention in predict.CONVENTIONS:
        assert DeviceConfig(convention).convention == convention
    for fmt in predict.OUTPUT_FORMATS:
        suffix = predict.OUTPUT_SUFFIXES[fmt]
        assert predict.output_format(str(tmp_path / f"x{suffix}"), fmt) == fmt
        assert format_from_path(f"x{suffix}") in predict.OUTPUT_FORMATS


def test_predict_online_consistency_option_is_the_carry_over(ckpt, tmp_path, capsys):
    """--consistency L gives what predict_motion gives with consistency L (online)."""
    from mage.inference.sequence import predict_motion
    from mage.model.checkpoint import load_checkpoint

    src = tmp_path / "walk.npz"
    smooth_motion(60, fps=60).save(src)
    tracking = Tracking.from_motion(Motion.load(src))
    model = load_checkpoint(ckpt)
    outputs = {}
    for lam in (0.0, 0.6):
        out = tmp_path / f"pred{lam}.npz"
        assert main(["predict", "--ckpt", str(ckpt), "--input", str(src), "-o", str(out), "--mode", "online",
                     "--consistency", str(lam)]) == 0
        outputs[lam] = Motion.load(out).rotations
        expected = predict_motion(model, tracking, SamplingOptions("online", consistency=lam)).rotations
        torch.testing.assert_close(outputs[lam].float(), expected.float(), atol=1e-5, rtol=0)
    assert not torch.allclose(outputs[0.0], outputs[0.6])
    capsys.readouterr()
