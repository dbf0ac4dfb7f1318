"""What the benchmarks and the research studies share: one budget for every variant,
train-or-resume, cached held-out scoring of checkpoints, the rule that picks the online
consistency lambda, the timing of streamed frames, the arguments of an analysis of
finished runs, and the atomic JSON + Markdown report.

Imported as ``benchmarks.common`` by the engineering benchmarks (``benchmarks.<name>.run``)
and by the studies under ``research/``; both run as modules from the repository root
(``python -m benchmarks.latency.run``), so no script changes the import path.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def budget_config(preset: str, model_overrides: dict, max_steps: int, batch_size: int, seed: int,
                  accelerator: str = "auto", **train_overrides):
    """A TrainConfig with the benchmarks' fixed budget: warm-up 5% of the steps, five
    checkpoints, one process, no loader workers, bf16 on GPU (32 on CPU)."""
    from mage.model import MageConfig
    from mage.train.config import TrainConfig

    model = MageConfig.preset(preset).to_dict()
    model.update(model_overrides)
    return TrainConfig.from_dict({
        "model": model, "batch_size": batch_size, "max_steps": max_steps,
        "warmup_steps": max(1, max_steps // 20), "checkpoint_every": max(100, max_steps // 5),
        "log_every": 50, "seed": seed, "num_workers": 0, "accelerator": accelerator,
        "devices": 1, "precision": "bf16-mixed", **train_overrides,
    })


class Subset:
    """Every ``every``-th clip of a split of a processed dataset (the first ``first`` of
    them; only subjects (split groups) starting with ``subject_prefix`` when given): a
    dataset view for mage.evaluate.protocol.evaluate (online scoring, learning curves,
    one source family of a cross-data test)."""

    def __init__(self, dataset, every: int = 1, first: int | None = None, subject_prefix: str = ""):
        self.dataset, self.every, self.first, self.subject_prefix = dataset, every, first, subject_prefix
        self.fps, self.root = dataset.fps, getattr(dataset, "root", "")

    def ids(self, split):
        ids = self.dataset.ids(split)
        if self.subject_prefix:
            ids = [i for i in ids if self.dataset.info(i).get("subject", "").startswith(self.subject_prefix)]
        return ids[::self.every][:self.first]

    def load(self, id):
        return self.dataset.load(id)


def finished_run(runs: str | Path, variant: str, seed: int) -> tuple[Path, dict | None]:
    """(run folder of variant/seed, its eval.json record if the run is finished)."""
    import json

    run_dir = Path(runs) / f"{variant}_seed{seed}"
    record = run_dir / "eval.json"
    return run_dir, (json.loads(record.read_text()) if record.is_file() else None)


def train_or_resume(config, data: str | Path, run_dir: Path) -> tuple[Path, float]:
    """Train ``config`` into ``run_dir`` (resuming a killed run); (final folder, seconds)."""
    from mage.model.checkpoint_paths import latest_checkpoint
    from mage.train.run import train

    t0 = time.perf_counter()
    final = train(config, data, run_dir, resume=latest_checkpoint(run_dir) is not None)
    return final, time.perf_counter() - t0


def run_benchmark(args, recipe: str, run_one, records_and_report) -> int:
    """The resumable main loop: every variant of every seed (seed-major, so that a partial
    benchmark already compares all variants), the report rewritten after each run.
    ``records_and_report(args)`` rewrites the report from what is finished on disk."""
    import sys

    if not (Path(args.data) / "manifest.json").is_file():
        print(f"{args.data}: no processed dataset; build it with "
              f"`mage data build --recipe {recipe} -o {args.data}`", file=sys.stderr)
        return 2
    for seed in args.seeds:
        for variant in [] if args.report_only else args.variants:
            print(f"== {variant} seed {seed}", flush=True)
            run_one(args, variant, seed)
            records_and_report(args)
    records_and_report(args)
    return 0


def _spin() -> None:  # a competing program: one core spinning
    while True:
        pass


class cpu_load:
    """``with cpu_load("busy"):`` runs the block beside one spinning process per core but
    one (another program sharing the CPU); ``cpu_load("idle")`` adds nothing."""

    def __init__(self, load: str):
        import os

        if load not in ("idle", "busy"):
            raise ValueError(f"load: expected 'idle' or 'busy', got {load!r}")
        self.processes = max(1, (os.cpu_count() or 1) - 1) if load == "busy" else 0
        self._hogs = []

    def __enter__(self):
        import multiprocessing

        self._hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(self.processes)]
        for h in self._hogs:
            h.start()
        return self

    def __exit__(self, *exc):
        for h in self._hogs:
            h.terminate()
        return False


def fingerprint(*paths: Path) -> str:
    """8 hex digits of the sha1 of the files' bytes: cache keys change with the weights or
    the data build, not only with their names."""
    import hashlib

    h = hashlib.sha1()
    for path in paths:
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:8]


def model_tag(name: str) -> str:
    """Cache tag of a checkpoint: its name plus the fingerprint of its weights and its
    config.json (which holds the sampling settings: DDIM steps, eta, initial noise scale),
    so a checkpoint whose sampling was edited is scored afresh."""
    from mage.model.checkpoint_paths import resolve_checkpoint

    folder = resolve_checkpoint(name)
    return f"{Path(name).name if Path(name).exists() else name.replace('/', '_')}-" \
           f"{fingerprint(folder / 'model.safetensors', folder / 'config.json')}"


def dataset_cache(cache_root: str | Path, data: str | Path) -> Path:
    """The cache folder of one built dataset: named after it and keyed by its manifest, so
    cached scores are never reused for a rebuilt dataset."""
    data = Path(data)
    return Path(cache_root) / f"{data.name}-{fingerprint(data / 'manifest.json')}"


def run_eval(key: str, cache: Path, fn) -> dict:
    """fn() -> EvalResult, cached as ``cache/key.json`` (mean metrics, seconds, machine and
    per-sequence rows) and reused when that file exists."""
    path = cache / f"{key}.json"
    if path.is_file():
        return json.loads(path.read_text())
    t0 = time.perf_counter()
    r = fn()
    doc = {"metrics": r.metrics, "seconds": time.perf_counter() - t0, "machine": r.machine,
           "rows": [{"id": s.id, "subject": s.subject, "frames": s.frames, "metrics": s.metrics}
                    for s in r.sequences]}
    cache.mkdir(parents=True, exist_ok=True)
    from mage.core.atomic import atomic_write

    with atomic_write(path, "w") as fh:
        json.dump(doc, fh)
    return doc


def online_predictor(model, consistency: float):
    """predict_fn (mage.evaluate.protocol) of the online mode, seed 0, with a given
    consistency lambda."""
    from mage.inference.options import SamplingOptions
    from mage.inference.sequence import model_predict_fn

    return model_predict_fn(model, SamplingOptions("online", seed=0, consistency=consistency))


# The data issue's online jitter target (x the ground truth's), which the lambda rule aims at.
ONLINE_JITTER_TARGET = 2.0


def choose_consistency(validation: dict[float, dict]) -> float:
    """The rule that picks the online consistency lambda on the validation split: the
    smallest lambda (the least carry-over, hence the least lag) whose online jitter is at
    most ``ONLINE_JITTER_TARGET`` times the ground truth's; if none is, the
    lambda with the lowest jitter ratio.

    ``validation``: {lambda: metrics} of a model trained on the train split alone (the
    default model's recipe), online on the recipe's val split: groups that no model here
    trained on and that mirror the test groups' kinds (``mage.data.recipes``). The rule
    was written down (commit "choose_consistency on the val split") before any val
    metric existed; the default model, refit on train + val, inherits the chosen value."""
    ok = [lam for lam in sorted(validation) if meets_online_jitter(validation[lam])]
    return ok[0] if ok else min(validation, key=lambda lam: jitter_ratio(validation[lam]))


def jitter_ratio(metrics: dict) -> float:
    """Jitter over the ground truth's (both 10^2 m/s^3, so the ratio has no unit)."""
    return metrics["jitter"] / metrics["gt_jitter"]


def meets_online_jitter(metrics: dict) -> bool:
    """The online jitter target: at most ``ONLINE_JITTER_TARGET`` x the ground truth's."""
    return jitter_ratio(metrics) <= ONLINE_JITTER_TARGET


def sweep_until_chosen(score_at, lambdas) -> tuple[float, dict[float, dict]]:
    """``choose_consistency`` without scoring more than it needs: ``score_at(lam)`` ->
    metrics, called for the lambdas in increasing order until one meets the jitter
    target (no larger lambda can be the smallest that does); all of them only when none
    does. Returns (the chosen lambda, {lambda: metrics} of those scored): the same choice
    as ``choose_consistency`` on the full sweep (tests/test_consistency_rule.py); (None,
    {}) for no lambdas."""
    scored: dict[float, dict] = {}
    for lam in sorted(lambdas):
        scored[lam] = score_at(lam)
        if meets_online_jitter(scored[lam]):
            break
    return (choose_consistency(scored) if scored else None), scored


# --- streamed frames ------------------------------------------------------------------
STREAM_FPS = 60  # the model's frame rate (mage.core.constants.MODEL_FPS)


def stream_frames(tracking, count: int | None = None) -> list:
    """The first ``count`` frames (default all) of a z-up ``Tracking`` at 60 fps as the
    TrackingFrame messages a headset would stream (``DeviceConfig()``: the devices are
    the SMPL joints)."""
    from mage.inference.device import DeviceConfig
    from mage.inference.tracking_log import TrackingFrame

    P, Q = DeviceConfig().to_devices(tracking.rotations, tracking.positions)
    n = tracking.num_frames if count is None else count
    return [TrackingFrame(P[i].numpy(), Q[i].numpy(), i / STREAM_FPS) for i in range(n)]


def percentile(values, q: float) -> float:
    """The q-th percentile of ``values`` by the nearest rank of the sorted values (no
    interpolation: a value that was measured)."""
    values = sorted(values)
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]


def time_pushes(streamer, frames, rate: float) -> dict:
    """ms per ``streamer.push`` over ``frames``; ``rate`` > 0 sends them at that many per
    second (as a live stream does: the CPU idles between frames), 0 back to back. A push
    returns its pose on the CPU, so on CUDA each timing includes the GPU's work."""
    times = []
    start = time.perf_counter()
    for i, f in enumerate(frames):
        if rate > 0:
            time.sleep(max(0.0, start + i / rate - time.perf_counter()))
        t0 = time.perf_counter()
        streamer.push(f)
        times.append((time.perf_counter() - t0) * 1e3)
    return {"p50": statistics.median(times), "p95": percentile(times, 95), "p99": percentile(times, 99),
            "max": max(times), "mean": statistics.fmean(times), "frames": len(times)}


def finished_runs_parser(doc: str, name: str, every: int, out: Path) -> argparse.ArgumentParser:
    """The arguments of an analysis of finished experiment runs (``RUNS/<variant>/final``)
    on every ``--every``-th test clip: --data, --runs, --variants, --every, --name, --out
    (default ``out``, the study's results folder), --threads."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "data" / "full"))
    p.add_argument("--runs", required=True, help="experiment runs folder (runs/NAME)")
    p.add_argument("--variants", nargs="+", required=True, help="run folders, e.g. mage_seed0")
    p.add_argument("--every", type=int, default=every, help="every k-th test clip")
    p.add_argument("--name", default=name)
    p.add_argument("--out", default=str(out))
    p.add_argument("--threads", type=int, default=1)
    return p


def write_json(out: str | Path, name: str, doc: dict) -> None:
    """OUT/NAME.json (``doc``, indented), written atomically (a crash leaves the previous file)."""
    from mage.core.atomic import atomic_write

    with atomic_write(Path(out) / f"{name}.json", "w") as fh:
        json.dump(doc, fh, indent=1)


def write_markdown(out: str | Path, name: str, lines: list[str]) -> None:
    """OUT/NAME.md (``lines``), written atomically; prints it."""
    from mage.core.atomic import atomic_write

    with atomic_write(Path(out) / f"{name}.md", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


def write_json_and_markdown(out: str | Path, name: str, doc: dict, lines: list[str]) -> None:
    """:func:`write_json` then :func:`write_markdown`."""
    write_json(out, name, doc)
    write_markdown(out, name, lines)
