"""Inference latency and throughput of MAGE on this machine's CPU (batch 1 streaming).

    python -m benchmarks.latency.run                          # mage-small + mage-paper, torch + onnx
    python -m benchmarks.latency.run --models mage-small --backends onnx
    python -m benchmarks.latency.run --models tiny --out /tmp/bench   # smoke test (seconds)
    python -m benchmarks.latency.run --threads-section    # only the threads section (below)
    python -m benchmarks.latency.run --peer    # only the peer section (AGRoL-class reference)

For each model and backend (PyTorch; ONNX Runtime on the exported sampler graph), in a
fresh subprocess so that its peak memory is its own:

- online: ``Streamer.push`` per frame, batch 1, on the built-in synthetic walk
  (mage.demo.synthetic); p50 / p95 / p99 / max in ms after a warm-up;
- offline: ``predict_sequence(mode="offline")`` frames per second (overlapping
  windows, ``DEFAULT_BATCH_SIZE`` per call) at the commands' default thread count
  (``mage.cli.common.DEFAULT_THREADS["offline"]``), median of repeats;
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

Peer section (``--peer``, and part of every full run; written into latency.json and
latency.md): the AGRoL-class reference (``benchmarks.latency.reference``, written from
AGRoL's published description: 12 MLP blocks, width 512, window 196, 5 sampling steps,
7.47 M parameters) against mage-paper and mage-small, all in ONE process and
INTERLEAVED (round after round, each model in turn; online, one push of each model in
turn), so that the load of a shared machine hits them alike. Each figure's ratio to
the reference is the median of the per-round ratios; wall-clock and process CPU time
are both recorded, with the load average and the matmul peak of the same run.
Variants: the reference with AGRoL's non-overlapping windows; mage-paper at the default
overlap and at overlap 0; bfloat16 autocast (``precision="bf16"``, an approximation)
for both models.

Threads section (``--threads-section``; written to OUT/threads.json and rendered at the
end of latency.md, leaving the rest of the report as it is): the work of each command
kind with 1 thread and with every core, on an idle CPU and with one competing busy
process per core but one (another program sharing the CPU), each in a fresh process:
batch-1 streaming (``Streamer.push``: mage predict --mode online, mage serve), offline
batches (``predict_sequence`` 64 windows per call: mage predict, mage eval, mage demo)
and training steps (mage-small, batch 64, forward + backward + AdamW: mage train). The
CLI's default thread counts (mage.cli.common.DEFAULT_THREADS) are chosen from it.
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

from benchmarks.common import ROOT, Subset, cpu_load, percentile, stream_frames, time_pushes

HERE = Path(__file__).resolve().parent
# This script in a fresh process (a worker mode), run from the repository root.
SELF = [sys.executable, "-m", "benchmarks.latency.run"]

# Per model: online frames timed per setting, offline sequence length (frames), repeats.
SETTINGS = {
    "mage-small": {"online_frames": 300, "offline_frames": 3600, "offline_repeats": 3},
    "mage-paper": {"online_frames": 30, "offline_frames": 900, "offline_repeats": 1},
    "tiny": {"online_frames": 30, "offline_frames": 200, "offline_repeats": 1},
}
DEFAULT_SETTINGS = {"online_frames": 100, "offline_frames": 1200, "offline_repeats": 1}
# issue 16: batch-1 p95 back to back (a 90 Hz headset's 11 ms budget), per backend, on the
# best thread count; offline FLOP/s as a fraction of the measured matmul peak
TARGETS = {"mage-small": {"online_p95_ms": {"torch": 11.0, "onnx": 5.0}, "offline_peak_fraction": 0.5}}
WARMUP_PUSHES = 20


TRAINED = {"mage-small": "full-small"}  # preset -> the bundled checkpoint trained with it


def _build_model(name: str):
    """(model, weights description): the bundled checkpoint of the preset if there is one
    (timings do not depend on the weights; the seam-jitter figures do), else random weights."""
    import torch

    from mage.inference.pretrained import load_pretrained
    from mage.model import MageConfig, MageModel
    from mage.model.checkpoint_paths import available_checkpoints

    if TRAINED.get(name) in available_checkpoints():
        return load_pretrained(TRAINED[name]), f"bundled checkpoint {TRAINED[name]} (trained)"
    torch.manual_seed(0)
    if name == "tiny":
        cfg = MageConfig.preset("mage-small").with_overrides(window=8, width=16, depth={"S1": 1, "S2": 1, "S3": 1})
    else:
        cfg = MageConfig.preset(name)
    return MageModel(cfg).eval(), "random weights (no trained checkpoint yet)"


def _matmul_peak_flops(n: int = 1024, repeats: int = 10) -> dict[str, float]:
    """FLOP/s of a plain float32 (n x n) @ (n x n), best of ``repeats``, with each kernel at
    hand: PyTorch's default (``a @ b``: MKL, far from this CPU's peak on AMD), oneDNN's
    (what mage's ``Linear`` runs at inference) and onnxruntime's (MLAS; a one-node MatMul
    graph). The % of peak in the reports is against the fastest of them."""
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
    bt = b.t().contiguous()  # (out, in), a Linear's weight layout
    onednn = lambda: torch.ops.mkldnn._linear_pointwise(a, bt, None, "none", [], "")  # noqa: E731
    return {"torch": best(lambda: a @ b), "torch_onednn": best(onednn),
            "onnxruntime": best(lambda: sess.run(None, feeds))}


def worker(name: str, backend: str, thread_counts: list[int]) -> dict:
    """All measurements of one (model, backend); runs in its own process."""
    import torch

    from mage.cli.common import DEFAULT_THREADS
    from mage.core.kinematics import place_by_head
    from mage.core.rotations import rot6d_to_matrix
    from mage.core.skeleton import Skeleton
    from mage.demo.synthetic import synthetic_tracking
    from mage.inference.onnx_export import OnnxMageModel, export_onnx
    from mage.inference.options import DEFAULT_BATCH_SIZE, SamplingOptions
    from mage.inference.seams import offline_boundaries, seam_jitter
    from mage.inference.sequence import predict_sequence, window_starts
    from mage.inference.streaming import Streamer
    from mage.model.card import model_card

    settings = SETTINGS.get(name, DEFAULT_SETTINGS)
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    # offline at the commands' default thread count (mage predict / eval / demo), which the
    # threads section chose (a 2-core machine shared with other jobs: 1); the matmul peak
    # that the offline FLOP/s are compared with at the same count
    offline_threads = DEFAULT_THREADS["offline"] or max(thread_counts)
    torch.set_num_threads(offline_threads)
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
    if backend == "onnx":
        runner = OnnxMageModel(path, threads=offline_threads)
    duration = max(4.0, (settings["offline_frames"] + 2) / 60, (settings["online_frames"] + WARMUP_PUSHES + 2) / 60)
    tracking, _ = synthetic_tracking(duration_s=duration, fps=60)
    frames = stream_frames(tracking)

    # --- online: Streamer.push, batch 1, per thread count; back to back and paced ---
    n_online = settings["online_frames"]
    online = {}
    for th in thread_counts:
        torch.set_num_threads(th)
        streamer = Streamer(OnnxMageModel(path, threads=th) if backend == "onnx" else model, backend)
        for f in frames[:WARMUP_PUSHES]:
            streamer.push(f)
        online[f"threads_{th}"] = {
            pacing: time_pushes(streamer, frames[WARMUP_PUSHES:WARMUP_PUSHES + n_online], rate)
            for pacing, rate in (("back_to_back", 0.0), ("paced_60hz", 60.0))}
    torch.set_num_threads(offline_threads)
    out["online_ms"] = online
    best = min(online.values(), key=lambda o: o["paced_60hz"]["p95"])["paced_60hz"]
    out["online_best_paced"] = {"threads": int(min(online, key=lambda k: online[k]["paced_60hz"]["p95"])[8:]),
                                **best}
    out["online_flops_per_frame"] = card.flops_per_window
    out["online_achieved_gflops"] = card.flops_per_window / (best["p50"] / 1e3) / 1e9

    # --- offline: predict_sequence, overlapping windows batched as by default ---
    cond = tracking.condition()[: settings["offline_frames"]]
    T = cond.shape[0]
    overlap = N // 4
    predict_sequence(runner, cond[: 2 * N], SamplingOptions("offline"))  # warm-up
    runs = []
    offline = SamplingOptions("offline", overlap=overlap, batch_size=DEFAULT_BATCH_SIZE)
    for _ in range(settings["offline_repeats"]):
        t0 = time.perf_counter()
        d6 = predict_sequence(runner, cond, offline)
        runs.append(time.perf_counter() - t0)
    fps_off = T / statistics.median(runs)
    n_windows = len(window_starts(T, N, overlap))
    out["offline"] = {"frames": T, "overlap": overlap, "windows": n_windows, "batch_size": DEFAULT_BATCH_SIZE,
                      "threads": offline_threads, "frames_per_s": fps_off, "repeats": len(runs)}
    out["offline_flops_per_frame"] = card.flops_per_window * n_windows / T
    out["offline_achieved_gflops"] = out["offline_flops_per_frame"] * fps_off / 1e9

    # --- jitter at window seams vs inside windows (torch only) ---
    if backend == "torch":
        heads, sk = tracking.positions[1:T + 1, 0], Skeleton.smpl22()
        jit = {}
        for ov in (0, overlap):
            pred = d6 if ov == overlap else predict_sequence(model, cond, SamplingOptions("offline", overlap=ov))
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
    med = {k: statistics.median(r["matmul_peak_gflops"].get(k, 0.0) for r in results)
           for k in ("torch", "torch_onednn", "onnxruntime")}
    return (f"median over the runs: PyTorch default (MKL) {med['torch']:.0f}, PyTorch oneDNN "
            f"{med['torch_onednn']:.0f}, onnxruntime {med['onnxruntime']:.0f} GFLOP/s")


def render_markdown(doc: dict, out: Path | None = None) -> str:
    """latency.md: the measurements of ``doc``, then the threads section if OUT/threads.json exists."""
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
        "`predict_sequence(mode=\"offline\")`, windows overlapping by window/4, batched "
        f"{ok[0]['offline'].get('batch_size', 64) if ok else '-'} per call, with the commands' default "
        "thread count (mage.cli.common.DEFAULT_THREADS). "
        "FLOPs: matrix products only (mage.model.card); % peak = achieved FLOP/s over the "
        "fastest 1024x1024 float32 matmul at hand (PyTorch's default, oneDNN, onnxruntime), measured in the same "
        f"process at the offline thread count ({_peaks(ok)}).",
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
    lines += ["", "Targets (mage-small): online p95 back to back <= 11 ms (PyTorch) and <= 5 ms (ONNX), "
              "offline >= 50% of the matmul peak."]
    for r in ok:
        t = TARGETS.get(r["model"])
        if t:
            p95 = min(o["back_to_back"]["p95"] for o in r["online_ms"].values())
            want, frac = t["online_p95_ms"][r["backend"]], r["peak_fraction_offline"]
            lines.append(f"- {r['model']} {r['backend']}: online p95 {_fmt(p95)} ms "
                         f"({'met' if p95 <= want else 'MISSED'}), offline {100 * frac:.0f}% of the peak "
                         f"({'met' if frac >= t['offline_peak_fraction'] else 'MISSED'})")
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
    if doc.get("peer"):
        lines += render_peer(doc["peer"])
    if out is not None and (Path(out) / "threads.json").is_file():
        lines += render_threads(json.loads((Path(out) / "threads.json").read_text()))
    return "\n".join(lines)


# --- peer section: the AGRoL-class reference, interleaved in one process ---------------
PEER_TARGETS = {"offline_speedup": 1.5, "online_time_ratio": 0.5}  # mage-paper torch vs reference
PEER_ROUNDS, PEER_OFFLINE_FRAMES, PEER_ONLINE_FRAMES = 3, 1800, 24


def _sample_flops(sampler) -> int:
    """FLOPs (matrix products) of one batch-1 sample of a window (FlopCounterMode)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from mage.model.onednn import onednn_linear
    from mage.model.pipeline import as_sampler

    sampler = as_sampler(sampler)
    cond = torch.zeros(1, int(sampler.window), 54)
    # FlopCounterMode counts aten's matrix products only: count with torch's default kernel
    with torch.inference_mode(), onednn_linear(False), FlopCounterMode(display=False) as counter:
        sampler.sample(cond, 0)
    return counter.get_total_flops()


def _kernel(variant: str):
    """The float32 kernel a peer-section row runs with: PyTorch's default for the rows that
    say so, else oneDNN (mage's default; plain ``nn.Linear`` layers ignore the switch)."""
    from mage.model.onednn import onednn_linear

    return onednn_linear("PyTorch's default" not in variant)


def _with_mage_linears(module):
    """A copy of ``module`` whose ``nn.Linear`` layers are mage's ``Linear`` (same weights):
    the reference with mage's inference kernel. (deepcopy also rebinds the copy's pipeline
    to the copy: its bound ``denoise`` and ``model`` are copied through the memo.)"""
    import copy

    from mage.model.onednn import Linear, convert_linears

    return convert_linears(copy.deepcopy(module), Linear)


def peer_worker() -> dict:
    """The peer comparison (module docstring); runs in its own process."""
    import torch

    from benchmarks.latency.reference import DESCRIPTION, NAME, build_reference
    from mage.demo.synthetic import synthetic_tracking
    from mage.inference.options import DEFAULT_BATCH_SIZE, SamplingOptions
    from mage.inference.sequence import predict_sequence, window_starts
    from mage.inference.streaming import Streamer
    from mage.model.pipeline import MagePipeline

    torch.set_num_threads(1)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    peaks = _matmul_peak_flops()
    ref = build_reference()
    paper, paper_weights = _build_model("mage-paper")
    small, small_weights = _build_model("mage-small")
    # name -> (sampler for predict_sequence, Streamer argument + precision, offline overlap,
    # the float32 model whose FLOPs it does: quantised layers escape FlopCounterMode)
    ref_onednn = _with_mage_linears(ref)
    variants = {
        NAME: (ref, (ref, "fp32"), 0, ref),
        f"{NAME}, kernel: oneDNN (as mage's)": (ref_onednn, (ref_onednn, "fp32"), 0, ref),
        f"{NAME} bf16": (MagePipeline.from_denoise(ref.config, ref.denoise, ref, precision="bf16"), None, 0, ref),
        "mage-paper": (paper, (paper, "fp32"), None, paper),
        "mage-paper, kernel: PyTorch's default (MKL)": (paper, (paper, "fp32"), None, paper),
        "mage-paper overlap 0": (paper, None, 0, paper),
        "mage-paper bf16": (MagePipeline.from_model(paper, "bf16"), (paper, "bf16"), None, paper),
        "mage-paper int8": (MagePipeline.from_model(paper, "int8"), (paper, "int8"), None, paper),
        "mage-small": (small, (small, "fp32"), None, small),
        "mage-small int8": (MagePipeline.from_model(small, "int8"), (small, "int8"), None, small),
    }
    flops = {name: _sample_flops(v[3]) for name, v in variants.items()}
    tracking, _ = synthetic_tracking(duration_s=(PEER_OFFLINE_FRAMES + 2) / 60, fps=60)
    cond = tracking.condition()[:PEER_OFFLINE_FRAMES]
    T = cond.shape[0]
    out = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "reference": NAME, "reference_description": DESCRIPTION, "threads": 1, "rounds": PEER_ROUNDS,
           "batch_size": DEFAULT_BATCH_SIZE,
           "load_before": load_before, "matmul_peak_gflops": {k: v / 1e9 for k, v in peaks.items()},
           "weights": {"mage-paper": paper_weights, "mage-small": small_weights, NAME: "random weights"},
           "parameters": {NAME: sum(p.numel() for p in ref.parameters()),
                          "mage-paper": sum(p.numel() for p in paper.parameters()),
                          "mage-small": sum(p.numel() for p in small.parameters())},
           "offline": {}, "online": {}}

    # offline: predict_sequence, batched as by default; every variant once per round
    timings = {k: {"wall": [], "cpu": []} for k in variants}
    for name, (sampler, _, overlap, _) in variants.items():
        with _kernel(name):
            # warm-up
            predict_sequence(sampler, cond[: 2 * int(sampler.window)], SamplingOptions("offline", overlap=overlap))
    for _ in range(PEER_ROUNDS):
        for name, (sampler, _, overlap, _) in variants.items():
            offline = SamplingOptions("offline", overlap=overlap, batch_size=DEFAULT_BATCH_SIZE)
            w0, c0 = time.perf_counter(), time.process_time()
            with _kernel(name):
                predict_sequence(sampler, cond, offline)
            timings[name]["wall"].append(time.perf_counter() - w0)
            timings[name]["cpu"].append(time.process_time() - c0)
    for name, (sampler, _, overlap, _) in variants.items():
        N = int(sampler.window)
        ov = N // 4 if overlap is None else overlap
        windows = len(window_starts(T, N, ov))
        per_frame = flops[name] * windows / T
        row = {"window": N, "overlap": ov, "windows": windows, "frames": T,
               "gflop_per_frame": per_frame / 1e9}
        for clock in ("wall", "cpu"):
            row[f"frames_per_s_{clock}"] = T / statistics.median(timings[name][clock])
            row[f"speedup_vs_reference_{clock}"] = statistics.median(
                r / t for r, t in zip(timings[NAME][clock], timings[name][clock]))
        row["achieved_gflops_cpu"] = per_frame * row["frames_per_s_cpu"] / 1e9
        out["offline"][name] = row

    # online: Streamer.push, batch 1, back to back, one push of each model in turn
    frames = stream_frames(tracking, 5 + PEER_ONLINE_FRAMES)
    streamers = {name: Streamer(v[1][0], "torch", SamplingOptions(precision=v[1][1])) for name, v in variants.items()
                 if v[1] is not None}
    for f in frames[:5]:
        for name, st in streamers.items():
            with _kernel(name):
                st.push(f)
    ms = {k: {"wall": [], "cpu": []} for k in streamers}
    for f in frames[5:]:
        for name, st in streamers.items():
            w0, c0 = time.perf_counter(), time.process_time()
            with _kernel(name):
                st.push(f)
            ms[name]["wall"].append((time.perf_counter() - w0) * 1e3)
            ms[name]["cpu"].append((time.process_time() - c0) * 1e3)
    for name in streamers:
        row = {"frames": len(ms[name]["wall"]), "gflop_per_frame": flops[name] / 1e9}
        for clock in ("wall", "cpu"):
            v = ms[name][clock]
            row[f"p50_ms_{clock}"], row[f"p95_ms_{clock}"] = statistics.median(v), percentile(v, 95)
            row[f"time_ratio_vs_reference_{clock}"] = statistics.median(
                a / r for a, r in zip(v, ms[NAME][clock]))
        out["online"][name] = row
    out["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    out["accuracy"] = accuracy_of_options()
    return out


ACCURACY_DATA = ROOT / "data" / "full"  # built by `mage data build --recipe full` (not committed)
ACCURACY_EVERY = 4  # every 4th held-out clip (124 of 496): the options' differences are far above its noise


def accuracy_of_options(every: int = ACCURACY_EVERY) -> dict | None:
    """Held-out accuracy of the speed options and of the offline overlap: the default
    model on every ``every``-th test clip of data/full (None when that data set is not
    built); seeds 0-2 of the default give the noise."""
    import torch

    from mage.core import rotations as rot
    from mage.data.dataset import ProcessedDataset
    from mage.evaluate.protocol import evaluate
    from mage.inference.options import SamplingOptions
    from mage.inference.sequence import predict_sequence
    from mage.model.onednn import onednn_linear

    if not (ACCURACY_DATA / "manifest.json").is_file():
        return None
    model, weights = _build_model("mage-small")
    dataset = Subset(ProcessedDataset(ACCURACY_DATA), every=every)
    N = model.window
    options = {f"fp32, overlap {N // 4} (default), seed {s}": {"seed": s} for s in (0, 1, 2)}
    options[f"fp32, torch's default kernel (MKL), overlap {N // 4}"] = {"kernel": "default"}
    options.update({f"fp32, overlap {ov}": {"overlap": ov} for ov in (0, N // 12, N // 8, N // 6, N // 2)})
    options.update({"bf16": {"precision": "bf16"}, "int8": {"precision": "int8"}, "3 steps": {"steps": 3}})
    rows = {}
    for name, kw in options.items():
        kw = dict(kw)
        kernel = kw.pop("kernel", "onednn")

        def predict(cond, head, kw=kw):
            return rot.rot6d_to_matrix(predict_sequence(model, cond, SamplingOptions("offline", **kw)).double())

        t0 = time.process_time()
        with torch.inference_mode(), onednn_linear(kernel == "onednn"):
            r = evaluate(predict, dataset, "test", progress=False)
        rows[name] = {**{k: r.metrics[k] for k in ("mpjre", "mpjpe", "mpjve", "jitter", "gt_jitter")},
                      "cpu_s": time.process_time() - t0}
    return {"model": "mage-small", "weights": weights,
            "data": f"data/full, split test, every {every}th clip", "sequences": len(r.sequences), "rows": rows}


def render_accuracy(acc: dict) -> list[str]:
    rows = acc["rows"]
    base = rows[next(iter(rows))]
    lines = ["", f"Accuracy of the speed options ({acc['model']}, {acc['weights']}, offline, "
             f"{acc['data']}, {acc['sequences']} sequences; CPU s = the whole split, this run; "
             "differences between the three seeds of the default show the noise):", "",
             "| option | MPJRE deg | MPJPE cm | MPJVE cm/s | Jitter 10^2 m/s^3 (x GT) | CPU s |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        gt = f" ({r['jitter'] / r['gt_jitter']:.2f}x)" if "gt_jitter" in r else ""
        lines.append(f"| {name} | {r['mpjre']:.3f} | {r['mpjpe']:.3f} | {r['mpjve']:.2f} | {r['jitter']:.2f}{gt} | "
                     f"{r['cpu_s']:.2f} ({r['cpu_s'] / base['cpu_s']:.2f}x) |")
    return lines


def render_peer(peer: dict) -> list[str]:
    """The peer section of latency.md."""
    ref = peer["reference"]
    pk = peer["matmul_peak_gflops"]
    lines = ["", f"## Against the peer: {ref}", "",
             f"{peer['reference_description']} ({peer['parameters'][ref] / 1e6:.2f} M parameters; "
             f"benchmarks/latency/reference.py). Run {peer.get('date', '-')}; all rows measured in one "
             "process, 1 thread, "
             f"interleaved ({peer['rounds']} offline rounds, each model in turn; online one push "
             f"of each model in turn); load average before {peer['load_before']}, after "
             f"{peer['load_after']}; 1024x1024 float32 matmul in the same process: PyTorch's default "
             f"(MKL) {pk['torch']:.0f}, oneDNN {pk.get('torch_onednn', float('nan')):.0f}, onnxruntime "
             f"{pk['onnxruntime']:.0f} GFLOP/s. mage's layers run float32 inference on oneDNN "
             "(`mage.model.onednn.Linear`); the reference is timed as its own code would run, "
             "with PyTorch's standard layers; the two \"kernel\" rows show each with the other's "
             "kernel. Ratios are medians of "
             "the per-round ratios. CPU = process CPU time (less sensitive to other jobs on a "
             "shared machine than wall-clock). bf16 = bfloat16 autocast, int8 = dynamic int8 "
             "feature MLPs (`precision=`): approximations, their accuracy cost is measured below; "
             "the reference has no int8 row (its layers differ).", "",
             f"Offline (`predict_sequence`, batches of {peer.get('batch_size', 64)} windows; the reference "
             "with AGRoL's non-overlapping windows):", "",
             "| model | window / overlap | GFLOP per frame | frames/s wall | frames/s CPU | "
             f"speed vs {ref} wall / CPU | GFLOP/s (CPU) |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in peer["offline"].items():
        lines.append(f"| {name} | {r['window']} / {r['overlap']} | {r['gflop_per_frame']:.4f} | "
                     f"{_fmt(r['frames_per_s_wall'], 0)} | {_fmt(r['frames_per_s_cpu'], 0)} | "
                     f"{r['speedup_vs_reference_wall']:.2f}x / {r['speedup_vs_reference_cpu']:.2f}x | "
                     f"{r['achieved_gflops_cpu']:.0f} |")
    lines += ["", "Online (`Streamer.push`, batch 1, back to back; ms per frame):", "",
              f"| model | GFLOP per frame | p50 / p95 wall | p50 / p95 CPU | time vs {ref} wall / CPU |",
              "|---|---:|---:|---:|---:|"]
    for name, r in peer["online"].items():
        lines.append(f"| {name} | {r['gflop_per_frame']:.3f} | {_fmt(r['p50_ms_wall'])} / {_fmt(r['p95_ms_wall'])} | "
                     f"{_fmt(r['p50_ms_cpu'])} / {_fmt(r['p95_ms_cpu'])} | "
                     f"{r['time_ratio_vs_reference_wall']:.2f}x / {r['time_ratio_vs_reference_cpu']:.2f}x |")
    off, on = peer["offline"]["mage-paper"], peer["online"]["mage-paper"]
    t = PEER_TARGETS
    lines += ["", f"Targets (mage-paper, PyTorch, fp32, default settings): offline >= {t['offline_speedup']}x "
              f"the reference's frames/s: {off['speedup_vs_reference_wall']:.2f}x wall, "
              f"{off['speedup_vs_reference_cpu']:.2f}x CPU "
              f"({'met' if off['speedup_vs_reference_wall'] >= t['offline_speedup'] else 'MISSED'}); "
              f"online <= {t['online_time_ratio']}x its time per frame: {on['time_ratio_vs_reference_wall']:.2f}x "
              f"wall, {on['time_ratio_vs_reference_cpu']:.2f}x CPU "
              f"({'met' if on['time_ratio_vs_reference_wall'] <= t['online_time_ratio'] else 'MISSED'}).",
              f"Why: offline, mage-paper does {off['gflop_per_frame'] / peer['offline'][ref]['gflop_per_frame']:.2f}x "
              f"the reference's matrix-product work per output frame ({off['gflop_per_frame']:.4f} vs "
              f"{peer['offline'][ref]['gflop_per_frame']:.4f} GFLOP; three stages, 4 steps, the default "
              f"overlap) at {off['achieved_gflops_cpu'] / peer['offline'][ref]['achieved_gflops_cpu']:.2f}x its "
              f"FLOP rate ({off['achieved_gflops_cpu']:.0f} vs {peer['offline'][ref]['achieved_gflops_cpu']:.0f} "
              f"GFLOP/s; the fastest float32 matmul here {max(pk.values()):.0f}); online, "
              f"{on['gflop_per_frame'] / peer['online'][ref]['gflop_per_frame']:.2f}x its work per frame. "
              "At the fastest matmul's rate for every FLOP, the offline ratio could be at most "
              f"{max(pk.values()) / off['gflop_per_frame'] / peer['offline'][ref]['frames_per_s_cpu']:.2f}x; "
              "so the offline target needs less work per output frame than the paper's setting does "
              "(fewer steps or less overlap: their accuracy costs are below), or the bf16 / int8 options.",
              "Weights: " + "; ".join(f"{k}: {v}" for k, v in peer["weights"].items()) + "."]
    if peer.get("accuracy"):
        lines += render_accuracy(peer["accuracy"])
    return lines + [""]


THREAD_KINDS = ("stream", "offline", "train")


def thread_worker(kind: str, threads: int) -> dict:
    """Throughput of one command kind at ``threads`` intra-op threads (own process)."""
    import torch

    torch.set_num_threads(threads)
    from mage.demo.synthetic import synthetic_tracking
    from mage.inference.options import SamplingOptions
    from mage.inference.sequence import predict_sequence
    from mage.inference.streaming import Streamer

    model, _ = _build_model("mage-small")
    tracking, _ = synthetic_tracking(duration_s=21.0, fps=60)
    if kind == "stream":
        frames = stream_frames(tracking, 200)
        streamer = Streamer(model, "torch")
        for f in frames[:20]:
            streamer.push(f)
        t0 = time.perf_counter()
        for f in frames[20:]:
            streamer.push(f)
        return {"unit": "frames/s", "value": 180 / (time.perf_counter() - t0)}
    if kind == "offline":
        cond = tracking.condition()[:1200]
        predict_sequence(model, cond[:200], SamplingOptions("offline"))
        t0 = time.perf_counter()
        predict_sequence(model, cond, SamplingOptions("offline", batch_size=64))
        return {"unit": "frames/s", "value": 1200 / (time.perf_counter() - t0)}
    from mage.model.pipeline import MagePipeline

    model.train()
    pipeline = MagePipeline.from_model(model)
    N = model.window
    x0, cond = torch.randn(64, N, 22, 6), torch.randn(64, N, 54)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for _ in range(6):
        t0 = time.perf_counter()
        loss = pipeline.training_loss({"x0": x0, "cond": cond})["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return {"unit": "steps/s", "value": 1 / statistics.median(times[1:])}


def threads_section(thread_counts: list[int]) -> dict:
    """Every kind x thread count x (idle, busy), each in a fresh process."""

    cores = os.cpu_count() or 1
    rows = []
    for load in ("idle", "busy"):
        with cpu_load(load):
            for kind in THREAD_KINDS:
                for th in thread_counts:
                    proc = subprocess.run([*SELF, "--thread-worker", kind, str(th)], cwd=ROOT,
                                          capture_output=True, text=True, check=False)
                    if proc.returncode != 0:
                        err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                        rows.append({"kind": kind, "threads": th, "load": load, "error": err})
                        continue
                    r = json.loads(proc.stdout.strip().splitlines()[-1])
                    rows.append({"kind": kind, "threads": th, "load": load, **r})
                    print(f"   threads {kind:<8} {th} {load:<5} {r['value']:.1f} {r['unit']}", flush=True)
    return {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cores": cores,
            "busy_processes": max(1, cores - 1), "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "rows": rows}


def render_threads(doc: dict) -> list[str]:
    """The threads section of latency.md."""
    lines = ["", "## Threads: the defaults of the commands", "",
             f"Run {doc['date']} with `python -m benchmarks.latency.run --threads-section` on "
             f"{doc['cores']} logical CPUs (load before: {doc['load_before']}); mage-small with the "
             f"bundled weights, each figure in a fresh process. \"As found\" = the machine as it was "
             "(see the load average: other jobs may be running); \"+ busy\" = "
             f"{doc['busy_processes']} more process(es) spinning on the CPU at the same time (another "
             "program, a second job).", "",
             "| work (commands) | threads | as found | + busy |", "|---|---:|---:|---:|"]
    what = {"stream": "batch-1 streaming, frames/s (predict --mode online, serve)",
            "offline": "offline batches of 64 windows, frames/s (predict, eval, demo)",
            "train": "training steps of batch 64, steps/s (train)"}
    cell = {}
    for r in doc["rows"]:
        cell[(r["kind"], r["threads"], r["load"])] = "failed" if "error" in r else f"{r['value']:,.1f}"
    for kind in THREAD_KINDS:
        for th in sorted({r["threads"] for r in doc["rows"] if r["kind"] == kind}):
            lines.append(f"| {what[kind]} | {th} | {cell.get((kind, th, 'idle'), '-')} | "
                         f"{cell.get((kind, th, 'busy'), '-')} |")
    best = []
    for kind in THREAD_KINDS:
        for load, label in (("idle", "as found"), ("busy", "+ busy")):
            rows = [r for r in doc["rows"] if r["kind"] == kind and r["load"] == load and "error" not in r]
            if rows:
                top = max(rows, key=lambda r: r["value"])
                worst = min(rows, key=lambda r: r["value"])
                best.append(f"{kind} {label}: {top['threads']} ({top['value'] / worst['value']:.1f}x the slowest)")
    from mage.cli.common import DEFAULT_THREADS

    lines += ["", "Fastest thread count per row: " + "; ".join(best) + ".",
              "The commands' defaults (mage.cli.common.DEFAULT_THREADS, shown by each `--threads` help): "
              + ", ".join(f"{k} {v}" for k, v in DEFAULT_THREADS.items()) + ".", ""]
    return lines


def _run_peer() -> dict | None:
    """The peer section in a fresh process (None if it failed)."""
    print("-- peer: interleaved with the AGRoL-class reference", flush=True)
    proc = subprocess.run([*SELF, "--peer-worker"], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print("   failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1], flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    p.add_argument("--models", nargs="+", default=["mage-small", "mage-paper"])
    p.add_argument("--backends", nargs="+", default=["torch", "onnx"], choices=["torch", "onnx"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2],
                   help="intra-op thread counts for the online measurements (default 1 2)")
    p.add_argument("--out", default=str(HERE / "results"), help="output folder")
    p.add_argument("--threads-section", action="store_true",
                   help="only measure the threads section (threads.json) and re-render latency.md")
    p.add_argument("--peer", action="store_true",
                   help="only measure the peer section (AGRoL-class reference) and re-render latency.md")
    p.add_argument("--no-peer", action="store_true", help="skip the peer section in a full run")
    p.add_argument("--peer-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker", nargs=2, metavar=("MODEL", "BACKEND"), help=argparse.SUPPRESS)
    p.add_argument("--thread-worker", nargs=2, metavar=("KIND", "THREADS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(*args.worker, args.threads)))
        return 0
    if args.peer_worker:
        print(json.dumps(peer_worker()))
        return 0
    if args.thread_worker:
        print(json.dumps(thread_worker(args.thread_worker[0], int(args.thread_worker[1]))))
        return 0
    from mage.core.atomic import atomic_write

    out = Path(args.out)
    if args.threads_section:
        counts = sorted({1, os.cpu_count() or 1})
        tdoc = threads_section(counts)
        with atomic_write(out / "threads.json", "w") as fh:
            json.dump(tdoc, fh, indent=2)
        doc = json.loads((out / "latency.json").read_text())
        with atomic_write(out / "latency.md", "w") as fh:
            fh.write(render_markdown(doc, out))
        print("\n".join(render_threads(tdoc)))
        return 0 if all("error" not in r for r in tdoc["rows"]) else 1

    if args.peer:
        doc = json.loads((out / "latency.json").read_text())
        doc["peer"] = _run_peer()
        with atomic_write(out / "latency.json", "w") as fh:
            json.dump(doc, fh, indent=2)
        with atomic_write(out / "latency.md", "w") as fh:
            fh.write(render_markdown(doc, out))
        print("\n".join(render_peer(doc["peer"])) if doc["peer"] else "peer section failed")
        return 0 if doc["peer"] else 1

    doc = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python -m benchmarks.latency.run " + " ".join(argv if argv is not None else sys.argv[1:]),
           "machine": machine(), "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()), "results": []}
    for name in args.models:
        for backend in args.backends:
            print(f"-- {name} / {backend}", flush=True)
            t0 = time.perf_counter()
            proc = subprocess.run([*SELF, "--worker", name, backend, "--threads", *map(str, args.threads)],
                                  cwd=ROOT, capture_output=True, text=True, check=False)
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
    if not args.no_peer:
        doc["peer"] = _run_peer()
    doc["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with atomic_write(out / "latency.json", "w") as fh:
        json.dump(doc, fh, indent=2)
    md = render_markdown(doc, out)
    with atomic_write(out / "latency.md", "w") as fh:
        fh.write(md)
    print(md)
    return 0 if all("error" not in r for r in doc["results"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
