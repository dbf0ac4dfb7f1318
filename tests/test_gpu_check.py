"""benchmarks.gpu_check.run: refuses to run without CUDA, and its report says which
training setting failed and why."""

import pytest
import torch

from benchmarks.gpu_check import run as gpu_check


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_exits_2_without_cuda(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--data", str(tmp_path), "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "CUDA is not available" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing written


def test_report_names_a_failed_setting_with_its_last_error_line():
    metrics = {"mpjpe": 7.5, "l_pe": 10.7, "mpjre": 7.9, "jitter": 12.9, "predict_s": 1.0}
    doc = {"machine": "m", "command": "c", "split": "test",
           "train": {"gpu_ok": {"ok": True, "batch": 64, "workers": 4, "precision": "32",
                                "steps_per_s": 25.61, "windows_per_s": 1639.0},
                     "gpu_bad": {"ok": False, "error": "Traceback ...\nRuntimeError: CUDA out of memory"}},
           "agreement": {"offline": {"cpu": metrics, "cuda": metrics, "max_abs_6d_difference": 1.6e-6}},
           "streaming": {"cuda": {"p50_ms": 10.2, "p95_ms": 15.7, "pushes": 300}}}
    md = gpu_check.markdown(doc)
    assert "| gpu_ok | 64 | 4 | 32 | 25.61 | 1639 |" in md
    assert "| gpu_bad | failed: RuntimeError: CUDA out of memory |" in md
    assert "offline 1.60e-06" in md


def test_steps_per_second_times_complete_checkpoints_only(tmp_path):
    import os

    steps_per_second = gpu_check.steps_per_second
    for step, t in ((10, 1000.0), (40, 1010.0), (70, 1013.0)):
        d = tmp_path / "checkpoints" / f"step_{step:06d}"
        d.mkdir(parents=True)
        if step != 70:  # step 70 never got its trainer.ckpt: incomplete, not timed
            (d / "trainer.ckpt").write_bytes(b"")
        os.utime(d, (t, t))
    assert steps_per_second(tmp_path) == (30, 3.0)
    (tmp_path / "checkpoints" / "step_000040" / "trainer.ckpt").unlink()
    with pytest.raises(ValueError, match="1 checkpoint"):
        steps_per_second(tmp_path)
