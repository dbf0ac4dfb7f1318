"""Inference latency and throughput of MAGE on this machine's CPU (batch 1 streaming).

    python benchmarks/latency/run.py                          # mage-small + mage-paper, torch + onnx
    python benchmarks/latency/run.py --models mage-small --backends onnx
    python benchmarks/latency/run.py --models tiny --out /tmp/bench   # smoke test (seconds)

For each model and backend (PyTorch; ONNX Runtime on the exported sampler graph), in a
fresh subprocess so that its peak memory is its own:

- online: ``Streamer.push`` per frame, batch 1, on the built-in synthetic walk
  (mage.demo.synthetic); p50 / p95 / p99 / max in ms after a warm-up;
- offline: ``predict_sequence(mode="offline")`` frames per second (overlapping
  windows, batched 64 per call), median of repeats;
- FLOPs per output frame (``mage.model.card``: FlopCounterMode, matrix products only)
  and the achieved FLOP/s as a fraction of the plain float32 matmul peak (1024 x 1024,
  same process, same threads; the better of PyTorch's and onnxruntime's kernels)
  measured in the same run;
- peak resident memory (``ru_maxrss``) of the subprocess, and its growth over the
  baseline after imports;
- offline jitter next to window seams vs inside windows (torch only: identical for
  onnx), with and without the cross-fade.

A packaged checkpoint of the model's name (mage/assets/checkpoints/NAME) is used when
it exists; otherwise the weights are RANDOM (timings do not depend on the values;
jitter does, so the jitter rows say nothing about a trained model's quality).
Writes OUT/latency.json and OUT/latency.md (default OUT = benchmarks/latency/results).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Per model: online frames timed per setting, offline sequence length (frames), repeats.
SETTINGS = {
    "mage-small": {"online_frames": 300, "offline_frames": 3600, "offline_repeats": 3},
    "mage-paper": {"online_frames": 30, "offline_frames": 900, "offline_repeats": 1},
    "tiny": {"online_frames": 30, "offline_frames": 200, "offline_repeats": 1},
}
DEFAULT_SETTINGS = {"online_frames": 100, "offline_frames": 1200, "offline_repeats": 1}
TARGETS = {"mage-small": {"online_p95_ms": 11.0, "offline_frames_per_s": 2000.0}}
WARMUP_PUSHES = 20


def _pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


TRAINED = {"mage-small": "cmu-small"}  # preset -> the bundled checkpoint trained with it


def _build_model(name: str):
    """(model, weights description): the bundled checkpoint of the preset if there is one
    (timings do not depend on the weights; the seam-jitter figures do), else random weights."""
    import torch

    from mage.inference.pretrained import available_checkpoints, load_pretrained
    from mage.model import MageConfig, MageModel

    if TRAINED.get(name) in available_checkpoints():
        return load_pretrained(TRAINED[name]), f"bundled checkpoint {TRAINED[name]} (trained)"
    torch.manual_seed(0)
    if name == "tiny":
        cfg = MageConfig.preset("mage-small").with_overrides(window=8, width=16, depth={"S1": 1, "S2": 1, "S3": 1})
    else:
        cfg = MageConfig.preset(name)
    return MageModel(cfg).eval(), "random weights (no trained checkpoint yet)"


def _matmul_peak_flops(n: int = 1024, repeats: int = 10) -> dict[str, float]:
    """FLOP/s of a plain float32 (n x n) @ (n x n), best of ``repeats``, in PyTorch and in
    onnxruntime (a one-node MatMul graph): their BLAS kernels differ (MKL in PyTorch is
    far from this CPU's peak on AMD; onnxruntime's MLAS is not)."""
    import numpy as np
    import onnxruntime as ort
    import torch
    from onnx import TensorProto, helper

    def best(run):
        for _ in range(3):
            run()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
        return 2 * n**3 / min(times)

    a, b = torch.randn(n, n), torch.randn(n, n)
    spec = [helper.make_tensor_value_info(k, TensorProto.FLOAT, [n, n]) for k in "abc"]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "matmul", spec[:2], spec[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    feeds = {"a": a.numpy(), "b": np.ascontiguousarray(b.numpy())}
    return {"torch": best(lambda: a @ b), "onnxruntime": best(lambda: sess.run(None, feeds))}


def _time_pushes(streamer, frames, rate: float) -> dict:
    """ms per ``push`` over ``frames``; ``rate`` > 0 sends them at that many per second
    (as a live stream does: the CPU idles between frames), 0 back to back."""
    times = []
    start = time.perf_counter()
    for i, f in enumerate(frames):
        if rate > 0:
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        t0 = time.perf_counter()
        streamer.push(f)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"p50": statistics.median(times), "p95": _pct(times, 95), "p99": _pct(times, 99),
            "max": max(times), "mean": statistics.fmean(times), "frames": len(times)}


def worker(name: str, backend: str, thread_counts: list[int]) -> dict:
    """All measurements of one (model, backend); runs in its own process."""
    import torch

    from mage.core.kinematics import place_by_head
    from mage.core.rotations import rot6d_to_matrix
    from mage.core.skeleton import Skeleton
    from mage.demo.synthetic import synthetic_tracking
    from mage.inference.device import DeviceConfig
    from mage.inference.onnx_export import OnnxMageModel, export_onnx
    from mage.inference.sequence import offline_boundaries, predict_sequence, seam_jitter, window_starts
    from mage.inference.streaming import Streamer
    from mage.inference.tracking_log import TrackingFrame
    from mage.model.card import model_card

    settings = SETTINGS.get(name, DEFAULT_SETTINGS)
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    peaks = _matmul_peak_flops()
    peak = max(peaks.values())
    model, weights = _build_model(name)
    N, steps = model.window, model.config.sampling_steps
    card = model_card(model)
    out: dict = {"model": name, "backend": backend, "weights": weights, "window": N, "steps": steps,
                 "parameters": card.parameters["total"], "threads": torch.get_num_threads(),
                 "matmul_peak_gflops": {k: v / 1e9 for k, v in peaks.items()}}
    runner = model
    if backend == "onnx":
        tmp = tempfile.mkdtemp(prefix="mage-bench-")
        t0 = time.perf_counter()
        path = export_onnx(model, Path(tmp) / f"{name}.sampler.onnx", "sampler")
        out["onnx_export_s"] = time.perf_counter() - t0
        out["onnx_file_mb"] = path.stat().st_size / 2**20
        runner = OnnxMageModel(path, threads=max(thread_counts))
    torch.set_num_threads(max(thread_counts))
    duration = max(4.0, (settings["offline_frames"] + 2) / 60, (settings["online_frames"] + WARMUP_PUSHES + 2) / 60)
    tracking, _ = synthetic_tracking(duration_s=duration, fps=60)
    P, Q = DeviceConfig().to_devices(tracking.rotations, tracking.positions)
    frames = [TrackingFrame(P[i].numpy(), Q[i].numpy(), i / 60) for i in range(tracking.num_frames)]

    # --- online: Streamer.push, batch 1, per thread count; back to back and paced ---
    n_online = settings["online_frames"]
    online = {}
    for th in thread_counts:
        torch.set_num_threads(th)
        streamer = Streamer(OnnxMageModel(path, threads=th) if backend == "onnx" else model, backend)
        for f in frames[:WARMUP_PUSHES]:
            streamer.push(f)
        online[f"threads_{th}"] = {
            pacing: _time_pushes(streamer, frames[WARMUP_PUSHES:WARMUP_PUSHES + n_online], rate)
            for pacing, rate in (("back_to_back", 0.0), ("paced_60hz", 60.0))}
    torch.set_num_threads(max(thread_counts))
    out["online_ms"] = online
    best = min(online.values(), key=lambda o: o["paced_60hz"]["p95"])["paced_60hz"]
    out["online_best_paced"] = {"threads": int(min(online, key=lambda k: online[k]["paced_60hz"]["p95"])[8:]),
                                **best}
    out["online_flops_per_frame"] = card.flops_per_window
    out["online_achieved_gflops"] = card.flops_per_window / (best["p50"] / 1e3) / 1e9

    # --- offline: predict_sequence, overlapping windows batched 64 ---
    cond = tracking.condition()[: settings["offline_frames"]]
    T = cond.shape[0]
    overlap = N // 4
    predict_sequence(runner, cond[: 2 * N], "offline")  # warm-up
    runs = []
    for _ in range(settings["offline_repeats"]):
        t0 = time.perf_counter()
        d6 = predict_sequence(runner, cond, "offline", overlap=overlap, batch_size=64)
        runs.append(time.perf_counter() - t0)
    fps_off = T / statistics.median(runs)
    n_windows = len(window_starts(T, N, overlap))
    out["offline"] = {"frames": T, "overlap": overlap, "windows": n_windows, "batch_size": 64,
                      "frames_per_s": fps_off, "repeats": len(runs)}
    out["offline_flops_per_frame"] = card.flops_per_window * n_windows / T
    out["offline_achieved_gflops"] = out["offline_flops_per_frame"] * fps_off / 1e9

    # --- jitter at window seams vs inside windows (torch only) ---
    if backend == "torch":
        heads, sk = tracking.positions[1:T + 1, 0], Skeleton.smpl22()
        jit = {}
        for ov in (0, overlap):
            pred = d6 if ov == overlap else predict_sequence(model, cond, "offline", overlap=ov)
            fk, _ = place_by_head(rot6d_to_matrix(pred.double()), heads.double(), sk)
            j = seam_jitter(fk.positions, offline_boundaries(T, N, ov, first_frame=0), fps=60)
            jit[f"overlap_{ov}"] = {k: (v / 100 if k != "ratio" else v) for k, v in j.items()}
        out["offline_jitter_1e2_m_per_s3"] = jit

    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["peak_rss_mb"] = rss_peak / 1024
    out["rss_growth_mb"] = (rss_peak - rss_base) / 1024
    out["peak_fraction_online"] = out["online_achieved_gflops"] * 1e9 / peak
    out["peak_fraction_offline"] = out["offline_achieved_gflops"] * 1e9 / peak
    return out


def machine() -> dict:
    """CPU model (from /proc/cpuinfo), versions: mage.evaluate's machine_info plus ours."""
    import onnxruntime

    from mage.evaluate.protocol import machine_info

    return {**machine_info("cpu"), "logical_cpus": os.cpu_count(), "onnxruntime": onnxruntime.__version__,
            "platform": platform.platform()}


def _fmt(x, digits=2):
    return "-" if x is None else f"{x:,.{digits}f}"


def _peaks(results) -> str:
    if not results:
        return "no results"
    torch_p = statistics.median(r["matmul_peak_gflops"]["torch"] for r in results)
    ort_p = statistics.median(r["matmul_peak_gflops"]["onnxruntime"] for r in results)
    return f"median over the runs: PyTorch {torch_p:.0f} GFLOP/s, onnxruntime {ort_p:.0f} GFLOP/s"


def render_markdown(doc: dict) -> str:
    m = doc["machine"]
    ok = [r for r in doc["results"] if "error" not in r]
    lines = [
        "# MAGE inference latency (CPU)",
        "",
        f"Machine: {m['cpu']}, {m['logical_cpus']} logical CPUs; torch {m['torch']}, "
        f"onnxruntime {m['onnxruntime']}, Python {m['python']}.",
        f"Run {doc['date']} with `{doc['command']}`; load average (1/5/15 min) before: "
        f"{doc['load_before']}, after: {doc['load_after']}. The machine is shared: other work "
        "running at the same time inflates the tails.",
        "",
        "Online = `Streamer.push`, batch 1: one DDIM sample of the causal window per frame, "
        "0 frames of lookahead; frames sent at 60 Hz as a live stream does (the CPU idles "
        "between frames), with the intra-op thread count that gave the lowest p95. Offline = "
        "`predict_sequence(mode=\"offline\")`, windows overlapping by window/4, batched 64 per "
        "call. FLOPs: matrix products only (mage.model.card); % peak = achieved FLOP/s over the "
        "faster of a 1024x1024 float32 matmul in PyTorch and in onnxruntime, measured in the same "
        f"process ({_peaks(ok)}).",
        "",
        "| model | backend | params | online 60 Hz p50 / p95 / p99 ms (threads) | offline frames/s | "
        "GFLOP per frame online / offline | % matmul peak online / offline | peak RSS MB (growth) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["results"]:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['backend']} | failed: {r['error']} | | | | | |")
            continue
        o = r["online_best_paced"]
        lines.append(
            f"| {r['model']} | {r['backend']} | {r['parameters'] / 1e6:.2f} M | "
            f"{_fmt(o['p50'])} / {_fmt(o['p95'])} / {_fmt(o['p99'])} ({o['threads']}) | "
            f"{_fmt(r['offline']['frames_per_s'], 0)} | "
            f"{r['online_flops_per_frame'] / 1e9:.3f} / {r['offline_flops_per_frame'] / 1e9:.4f} | "
            f"{100 * r['peak_fraction_online']:.1f} / {100 * r['peak_fraction_offline']:.1f} | "
            f"{_fmt(r['peak_rss_mb'], 0)} ({_fmt(r['rss_growth_mb'], 0)}) |")
    lines += ["", "Online latency in ms per thread count, back to back and paced at 60 Hz (p50 / p95 / p99):",
              "", "| model | backend | threads | back to back | paced 60 Hz |", "|---|---|---:|---:|---:|"]
    for r in ok:
        for key, o in r["online_ms"].items():
            cells = [f"{_fmt(o[k]['p50'])} / {_fmt(o[k]['p95'])} / {_fmt(o[k]['p99'])}"
                     for k in ("back_to_back", "paced_60hz")]
            lines.append(f"| {r['model']} | {r['backend']} | {key[8:]} | {cells[0]} | {cells[1]} |")
    lines += ["", "Targets (mage-small): online p95 <= 11 ms, offline >= 2000 frames/s."]
    for r in ok:
        t = TARGETS.get(r["model"])
        if t:
            p95, fps = r["online_best_paced"]["p95"], r["offline"]["frames_per_s"]
            lines.append(f"- {r['model']} {r['backend']}: online p95 {_fmt(p95)} ms "
                         f"({'met' if p95 <= t['online_p95_ms'] else 'MISSED'}), offline {_fmt(fps, 0)} "
                         f"frames/s ({'met' if fps >= t['offline_frames_per_s'] else 'MISSED'})")
    jit_rows = [r for r in ok if "offline_jitter_1e2_m_per_s3" in r]
    if jit_rows:
        lines += ["", "Offline jitter (10^2 m/s^3) next to window seams vs inside windows, synthetic walk, "
                  "PyTorch. With random weights this only shows the measurement, not a trained model's "
                  "quality.", "", "| model | overlap | seam | interior | ratio |", "|---|---:|---:|---:|---:|"]
        for r in jit_rows:
            for key, j in r["offline_jitter_1e2_m_per_s3"].items():
                lines.append(f"| {r['model']} | {key.split('_')[1]} | {_fmt(j['seam'])} | "
                             f"{_fmt(j['interior'])} | {_fmt(j['ratio'])} |")
    lines += ["", "Weights: " + "; ".join(sorted({f"{r['model']}: {r['weights']}" for r in ok})), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("--models", nargs="+", default=["mage-small", "mage-paper"])
    p.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2],
                   help="intra-op thread counts for the online measurements (default 1 2)")
    p.add_argument("--out", default=str(HERE / "results"), help="output folder")
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "BACKEND"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads)))
        return 0
    from mage.core.atomic import atomic_write

    doc = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python benchmarks/latency/run.py " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": machine(), "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()), "results": []}
    for name in args.models:
        for backend in args.backends:
            print(f"-- {name} / {backend}", flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, __file__, "--worker", name, backend, "--threads",
                                   *map(str, args.threads)], capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                print(f"   failed: {err}", flush=True)
                doc["results"].append({"model": name, "backend": backend, "error": err})
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["wall_s"] = time.perf_counter() - t0
            doc["results"].append(r)
            best = r["online_best_paced"]
            print(f"   online (60 Hz, {best['threads']} thread(s)) p50 {best['p50']:.2f} ms, p95 {best['p95']:.2f} ms; "
                  f"offline {r['offline']['frames_per_s']:.0f} frames/s ({r['wall_s']:.0f} s)", flush=True)
    doc["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out = Path(args.out)
    with atomic_write(out / "latency.json", "w") as fh:
        json.dump(doc, fh, indent=2)
    md = render_markdown(doc)
    with atomic_write(out / "latency.md", "w") as fh:
        fh.write(md)
    print(md)
    return 0 if all("error" not in r for r in doc["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
