import json
import subprocess
import sys
import textwrap
import time

import pytest


def test_mage_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "mage.cli.main", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "env" in out.stdout


def test_no_command_prints_help_and_exits_1():
    out = subprocess.run([sys.executable, "-m", "mage.cli.main"], capture_output=True, text=True)
    assert out.returncode == 1 and "usage" in out.stdout


def test_import_mage_is_light_and_fast():
    code = "import sys, mage; print('torch' in sys.modules)"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    assert out.stdout.strip() == "False"  # no heavy import at package import
    assert elapsed < 5.0  # generous; the real figure is ~0.05 s (no torch import)


BAD_ARGUMENTS = [  # (argv, text the error line must contain); run before any heavy import
    (["predict", "--input", "IN.bvh", "-o", "x.txt"], "x.txt: cannot tell the output format"),
    (["predict", "--input", "missing.bvh", "-o", "x.npz"], "missing.bvh: input file not found"),
    (["predict", "--input", "IN.bvh", "-o", "x.npz", "--ckpt", "mage-small"], "is a model preset"),
    (["predict", "--input", "IN.bvh", "-o", "x.npz", "--threads", "0"], "--threads: must be >= 1"),
    (["predict", "--input", "IN.bvh", "-o", "FILE/x.npz"], "FILE is a file, not a folder"),
    (["predict", "--input", "IN.bvh", "-o", "x.npz", "--consistency", "1"], "--consistency: expected a lambda"),
    (["predict", "--input", "IN.bvh", "-o", "x.npz", "--batch-size", "0"], "--batch-size: must be >= 1, got 0"),
    (["predict", "--input", "IN.bvh", "-o", "x.npz", "--overlap", "-1"], "--overlap: must be >= 0"),
    (["serve", "--steps", "0"], "--steps: expected a positive number of DDIM steps, got 0"),
    (["serve", "--consistency", "-0.1"], "--consistency: expected a lambda in [0, 1)"),
    (["export", "--onnx", "x.txt"], "x.txt: unknown ONNX type"),
    (["export", "--onnx", "x.onnx", "--ckpt", "no/such/run"], "no/such/run"),
    (["render", "missing.npz", "-o", "x.mp4"], "missing.npz: motion file not found"),
    (["render", "IN.bvh", "-o", "x.avi"], "x.avi: unknown video type"),
    (["render", "IN.bvh", "--gt", "missing.npz", "-o", "x.mp4"], "missing.npz: motion file not found"),
    (["view", "missing.npz", "--no-browser"], "missing.npz: motion file not found"),
    (["demo", "--input", "missing.bvh"], "missing.bvh: input file not found"),
    (["demo", "-o", "FILE/out"], "FILE is a file, not a folder"),
    (["train", "--preset", "mage-small", "--data", "missing", "--out", "run"], "--data missing: no such folder"),
    (["eval", "--data", "missing", "--out", "report"], "--data missing: no such folder"),
    (["eval", "--data", ".", "--out", "report", "--consistency", "2"], "--consistency: expected a lambda"),
    (["serve", "--onnx", "missing.onnx"], "missing.onnx: ONNX file not found"),
    (["model", "info", "no-such-model"], "no-such-model"),
    # sample:NAME (the clips shipped with the package): an unknown name lists the samples
    (["demo", "--input", "sample:jog"],
     "sample:jog: unknown sample; samples: sample:walk, sample:run, sample:jump, sample:reach"),
    (["predict", "--input", "sample:", "-o", "x.npz"], "sample:: unknown sample; samples: sample:walk"),
    (["render", "sample:walk", "--gt", "sample:Walk", "-o", "x.mp4"], "sample:Walk: unknown sample"),
    (["view", "sample:jog", "--no-browser"], "sample:jog: unknown sample"),
]


def test_bad_arguments_fail_fast_in_one_format(tmp_path):
    """Every command checks its arguments and file names before importing torch,
    Lightning or matplotlib, and reports them as `mage: error: NAME: problem`."""
    (tmp_path / "IN.bvh").write_text("HIERARCHY\n")
    (tmp_path / "FILE").write_text("")
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys, time
        from mage.cli.main import main
        cases = {BAD_ARGUMENTS!r}
        out = []
        for argv, _ in cases:
            err = io.StringIO()
            t0 = time.perf_counter()
            with contextlib.redirect_stderr(err):
                try:
                    rc = main(argv)
                except SystemExit as e:
                    rc = e.code
            out.append([rc, err.getvalue(), time.perf_counter() - t0])
        heavy = [m for m in ("torch", "lightning", "matplotlib", "onnxruntime") if m in sys.modules]
        print(json.dumps({{"results": out, "heavy": heavy}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    for (argv, expected), (rc, err, seconds) in zip(BAD_ARGUMENTS, doc["results"]):
        assert rc == 2, (argv, rc, err)
        lines = [line for line in err.splitlines() if line.startswith("mage: error: ")]
        assert len(lines) == 1 and expected in lines[0], (argv, err)
        assert seconds < 2.0, (argv, seconds)
    assert doc["heavy"] == []  # nothing heavy was imported to reject any of them


def test_argparse_errors_use_the_same_format(capsys):
    from mage.cli.main import main

    with pytest.raises(SystemExit) as exit:
        main(["predict", "--input", "x.bvh"])
    assert exit.value.code == 2
    assert "mage: error: predict: the following arguments are required: -o/--output" in capsys.readouterr().err


def test_data_info_on_an_exported_amass_npz_needs_no_body_model(tmp_path, capsys):
    """Metadata of an AMASS-style npz (as `mage data export --format amass` writes it)
    without the SMPL-H model: frames, fps, duration, gender."""
    from mage.cli.main import main
    from mage.demo.synthetic import synthetic_motion

    synthetic_motion(duration_s=4.0, fps=60).save(tmp_path / "walk.npz")
    assert main(["data", "export", str(tmp_path / "walk.npz"), "-o", str(tmp_path / "am.npz"),
                 "--format", "amass", "--gender", "female"]) == 0
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "am.npz")]) == 0
    out = capsys.readouterr().out
    for line in ("format: amass", "frames: 240", "fps: 60", "duration: 4.00 s", "gender: female"):
        assert line in out, out
    assert "--body-model" in out  # the height says what it needs


def test_thread_defaults_are_the_measured_ones():
    """Every torch command has --threads, defaulting to the thread count that was fastest
    for its kind of work in the latency benchmark's threads section."""
    from pathlib import Path

    from mage.cli.common import DEFAULT_THREADS
    from mage.cli.main import build_parser

    doc = json.loads((Path(__file__).resolve().parents[1] / "benchmarks" / "latency" / "results"
                      / "threads.json").read_text())
    for kind, default in DEFAULT_THREADS.items():
        rows = [r for r in doc["rows"] if r["kind"] == kind and r["load"] == "busy" and "error" not in r]
        assert rows and max(rows, key=lambda r: r["value"])["threads"] == default, kind
    parser = build_parser()
    expected = {"demo": "offline", "train": "train", "eval": "offline", "predict": "offline",
                "serve": "stream", "export": "offline"}
    sub = next(a for a in parser._actions if hasattr(a, "choices") and a.choices and "demo" in a.choices)
    for command, kind in expected.items():
        threads = [a for a in sub.choices[command]._actions if a.dest == "threads"]
        assert threads and threads[0].default == DEFAULT_THREADS[kind], command
