"""The CUDA code paths on a GPU machine: training throughput, CPU/GPU agreement, latency.

    python -m benchmarks.gpu_check.run --data DIR    # -> benchmarks/gpu_check/results/gpu_check.{json,md}

CI has no GPU, so these paths are otherwise only reached by tests that mock CUDA away.
On a machine with CUDA this script

1. trains the default model's recipe (``mage train`` in a subprocess, the bundled
   full-medium's train_config.json) for ``--steps`` steps on the train split of
   ``--data`` in several settings (batch, data-loader worker processes, precision) and
   reports optimizer steps/s between the first and the last checkpoint (so start-up and
   warm-up are not counted). Every setting runs its main process with ``--threads 1``
   (the loader workers are extra processes); one setting trains on the CPU alone;
2. loads the bf16-mixed GPU run's final checkpoint on the CPU and checks that its
   prediction is finite (a GPU-trained model must serve on a CPU-only machine);
3. scores the bundled default model on every sequence of ``--split`` on the CPU (1
   thread) and on CUDA, offline and online (``mage.evaluate.protocol.evaluate``):
   MPJPE, L-PE, MPJRE, jitter and prediction seconds per device, and the largest
   difference of the 6D output between devices;
4. times ``Streamer.push`` (batch 1, back to back, after a warm-up) on CUDA and on the
   CPU (1 thread) with the latency benchmark's ``time_pushes`` (``benchmarks.common``):
   p50 (median) and p95 (nearest rank) in ms.

Writes OUT/gpu_check.json and OUT/gpu_check.md. Raises SystemExit (exit 2) without CUDA.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import ROOT, STREAM_FPS, stream_frames, time_pushes

RECIPE = ROOT / "src/mage/assets/checkpoints/full-medium/train_config.json"
BF16_SETTING = "gpu_b256_w8_bf16"  # its checkpoint is the one loaded on the CPU
# (name, batch, loader workers, precision, accelerator)
TRAIN_SETTINGS = [
    ("cpu_b64_w0_fp32_1thread", 64, 0, "32", "cpu"),
    ("gpu_b64_w0_fp32", 64, 0, "32", "gpu"),
    ("gpu_b64_w4_fp32", 64, 4, "32", "gpu"),
    (BF16_SETTING, 256, 8, "bf16-mixed", "gpu"),
]


def steps_per_second(run: Path) -> tuple[int, float]:
    """(steps timed, steps/s) between the first and the last complete checkpoint of a
    training run folder, by the folders' mtimes (set when ``trainer.ckpt``, written last,
    is renamed in). ValueError with fewer than two checkpoints."""
    from mage.model.checkpoint_paths import list_checkpoints

    ckpts = list_checkpoints(run)
    if len(ckpts) < 2:
        raise ValueError(f"{run}: {len(ckpts)} checkpoint(s), need two to time the steps between them")
    (first_step, first), (last_step, last) = ckpts[0], ckpts[-1]
    seconds = last.stat().st_mtime - first.stat().st_mtime
    if seconds <= 0:
        raise ValueError(f"{run}: checkpoints {first.name} and {last.name} have the same time")
    return last_step - first_step, (last_step - first_step) / seconds


def train_throughput(data: Path, work: Path, name: str, batch: int, workers: int, precision: str,
                     accelerator: str, steps: int, every: int, timeout: float) -> dict:
    """steps/s of ``mage train`` between its first and last checkpoint (steps_per_second);
    {"ok": False, "error": ...} if it fails or runs past ``timeout`` seconds."""
    out = work / name
    cmd = [sys.executable, "-c", "from mage.cli.main import main; main()", "train",
           "--config", str(RECIPE), "--data", str(data), "--out", str(out),
           "--accelerator", accelerator, "--precision", precision, "--max-steps", str(steps),
           "--threads", "1", "--set", "train_splits=train", "--set", f"batch_size={batch}",
           "--set", f"num_workers={workers}", "--set", f"checkpoint_every={every}",
           "--set", "log_every=50"]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"timed out after {timeout:g} s", "wall_s": timeout}
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"ok": False, "error": proc.stderr[-600:], "wall_s": wall}
    try:
        n, rate = steps_per_second(out)
    except ValueError as e:
        return {"ok": False, "error": str(e), "wall_s": wall}
    return {"ok": True, "batch": batch, "workers": workers, "precision": precision,
            "accelerator": accelerator, "steps_timed": n, "steps_per_s": rate,
            "windows_per_s": rate * batch, "wall_s": wall}


def agreement(data: Path, split: str) -> dict:
    """The bundled default model on CPU and CUDA: protocol metrics and output difference."""
    from mage.data.dataset import ProcessedDataset
    from mage.evaluate.protocol import evaluate
    from mage.inference.options import SamplingOptions
    from mage.inference.pretrained import load_pretrained
    from mage.inference.sequence import model_predict_fn, predict_sequence

    ds = ProcessedDataset(data)
    models = {"cpu": load_pretrained(device="cpu"), "cuda": load_pretrained(device="cuda")}
    out = {}
    for mode in ("offline", "online"):
        row = {}
        for dev, model in models.items():
            r = evaluate(model_predict_fn(model, SamplingOptions(mode)), ds, split, progress=False)
            row[dev] = {k: r.metrics[k] for k in ("mpjpe", "l_pe", "mpjre", "jitter")}
            row[dev]["predict_s"] = r.predict_seconds
        diff = 0.0
        for sid in ds.ids(split):
            cond = torch.as_tensor(ds.load(sid).condition)
            with torch.no_grad():
                a = predict_sequence(models["cpu"], cond, SamplingOptions(mode))
                b = predict_sequence(models["cuda"], cond.cuda(), SamplingOptions(mode)).cpu()
            diff = max(diff, float((a - b).abs().max()))
        row["max_abs_6d_difference"] = diff
        out[mode] = row
    return out


def streaming_latency(pushes: int, warmup: int = 50) -> dict:
    """Streamer.push p50/p95 (ms), batch 1, back to back, on CUDA and on the CPU."""
    from mage.demo.synthetic import MIN_DURATION_S, synthetic_tracking
    from mage.inference.pretrained import load_pretrained
    from mage.inference.streaming import Streamer

    duration = max(MIN_DURATION_S, (pushes + warmup + 2) / STREAM_FPS)
    frames = stream_frames(synthetic_tracking(duration_s=duration, fps=STREAM_FPS)[0])
    out = {}
    for dev in ("cuda", "cpu"):
        streamer = Streamer(load_pretrained(device=dev), "torch")
        for f in frames[:warmup]:
            streamer.push(f)
        t = time_pushes(streamer, frames[warmup:warmup + pushes], 0.0)
        out[dev] = {"p50_ms": t["p50"], "p95_ms": t["p95"], "pushes": t["frames"]}
    return out


def gpu_checkpoint_on_cpu(run: Path, data: Path, split: str) -> dict:
    """The GPU-trained run's final checkpoint loaded on the CPU: finite output, dtype."""
    from mage.data.dataset import ProcessedDataset
    from mage.inference.options import SamplingOptions
    from mage.inference.pretrained import load_pretrained
    from mage.inference.sequence import predict_sequence

    model = load_pretrained(run / "final", device="cpu")
    ds = ProcessedDataset(data)
    cond = torch.as_tensor(ds.load(ds.ids(split)[0]).condition)
    with torch.no_grad():
        d6 = predict_sequence(model, cond, SamplingOptions("offline"))
    dtypes = sorted({str(p.dtype) for p in model.parameters()})
    return {"finite": bool(torch.isfinite(d6).all()), "parameter_dtypes": dtypes,
            "frames": int(d6.shape[0])}


def markdown(doc: dict) -> str:
    lines = ["# GPU check", "", f"Machine: {doc['machine']}. Command: `{doc['command']}`.", "",
             "## Training throughput (default model's recipe, `mage train`)", "",
             "| setting | batch | loader workers | precision | steps/s | windows/s |",
             "| --- | ---: | ---: | --- | ---: | ---: |"]
    for name, r in doc["train"].items():
        if r["ok"]:
            lines.append(f"| {name} | {r['batch']} | {r['workers']} | {r['precision']} | "
                         f"{r['steps_per_s']:.2f} | {r['windows_per_s']:.0f} |")
        else:
            last_line = r["error"].strip().splitlines()[-1] if r["error"].strip() else "?"
            lines.append(f"| {name} | failed: {last_line.replace('|', '/')} | | | | |")
    c = doc.get("gpu_checkpoint_on_cpu")
    if c:
        lines += ["", f"The bf16-mixed GPU run's final checkpoint, loaded on the CPU: parameters "
                  f"{', '.join(c['parameter_dtypes'])}, offline prediction finite: {c['finite']}."]
    lines += ["", f"## The bundled default model on CPU and CUDA ({doc['split']} split of the data above)", "",
              "| mode | device | MPJPE (cm) | L-PE (cm) | MPJRE (deg) | Jitter (10^2 m/s^3) "
              "| predict (s; CPU: 1 thread) |",
              "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for mode, row in doc["agreement"].items():
        for dev in ("cpu", "cuda"):
            m = row[dev]
            lines.append(f"| {mode} | {dev} | {m['mpjpe']:.3f} | {m['l_pe']:.3f} | {m['mpjre']:.3f} | "
                         f"{m['jitter']:.3f} | {m['predict_s']:.2f} |")
    lines += ["", "Largest difference of the 6D output between devices: " + ", ".join(
        f"{mode} {row['max_abs_6d_difference']:.2e}" for mode, row in doc["agreement"].items()) + ".",
        "", "## Streaming latency (`Streamer.push`, batch 1, back to back)", "",
        "| device | p50 (ms) | p95 (ms) | pushes |", "| --- | ---: | ---: | ---: |"]
    for dev, r in doc["streaming"].items():
        lines.append(f"| {dev} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['pushes']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="processed data set (train and --split)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    ap.add_argument("--steps", type=int, default=400, help="training steps per setting")
    ap.add_argument("--cpu-steps", type=int, default=60)
    ap.add_argument("--pushes", type=int, default=300)
    ap.add_argument("--timeout", type=float, default=150, help="seconds per training setting")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: CUDA is not available on this machine", file=sys.stderr)
        raise SystemExit(2)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for the mage train subprocesses (torch is loaded here)
    doc = {"machine": f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores, "
                      f"torch {torch.__version__}, Python {platform.python_version()}",
           "command": "python -m benchmarks.gpu_check.run " + " ".join(argv or sys.argv[1:]),
           "split": args.split, "train": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, batch, workers, precision, accel in TRAIN_SETTINGS:
            steps = args.cpu_steps if accel == "cpu" else args.steps
            every = max(10, steps // 4)
            doc["train"][name] = r = train_throughput(args.data, Path(tmp), name, batch, workers, precision,
                                                      accel, steps, every, args.timeout)
            print(name, json.dumps(r), flush=True)
        if doc["train"][BF16_SETTING]["ok"]:
            doc["gpu_checkpoint_on_cpu"] = gpu_checkpoint_on_cpu(Path(tmp) / BF16_SETTING, args.data, args.split)
            print("gpu checkpoint on cpu", doc["gpu_checkpoint_on_cpu"], flush=True)
    doc["agreement"] = agreement(args.data, args.split)
    print("agreement", json.dumps(doc["agreement"]), flush=True)
    doc["streaming"] = streaming_latency(args.pushes)
    print("streaming", doc["streaming"], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu_check.json").write_text(json.dumps(doc, indent=1))
    (args.out / "gpu_check.md").write_text(markdown(doc))
    print(markdown(doc))


if __name__ == "__main__":
    main()
