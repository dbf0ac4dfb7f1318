"""The paper's experiments (scales, fusion, designs, cross-source) on a processed dataset (resumable).

Each (variant, seed) is trained with the SAME budget (steps, batch, data), then scored on
the held-out split with every protocol metric and the gait metrics, offline and online;
each saved checkpoint is also scored offline on the first ``--curve-sequences`` test
sequences, which gives the held-out learning curve (does the run plateau?). A cross-data
evaluation (``--cross DIR``) scores the final weights on another dataset's test split:
the protocol-2 analogue (train on one family of sources, test on another).

    python -m research.paper_experiments.run --data data/full --name full_scales \\
        --variants s3-only s2s3 mage s0-mage --seeds 0 1 --max-steps 4000

Finished runs are kept (``RUNS/<variant>_seed<k>/eval.json``) and skipped, so a
benchmark spans sessions; ``--report-only`` rewrites the report from what is finished.
Writes ``OUT/<name>.json``, ``OUT/<name>.md`` and PNG plots (learning curves, metric bars
with the spread over seeds). Threads: one per process (``--threads``), which on a busy
2-core machine is the fastest setting measured for this model size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from benchmarks.common import (
    ROOT,
    Subset,
    budget_config,
    finished_run,
    run_benchmark,
    train_or_resume,
    write_json,
    write_markdown,
)

# name -> (description, model overrides on top of --preset, training overrides).
# The scale variants keep the total depth of MAGE (6 blocks for mage-small) so that they
# compare structure, not capacity. "mage" is the recipe of the bundled models.
RECIPE = {"velocity_weight": 10.0}
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "mage": ("MAGE S1+S2+S3, [C+F+F_rec], gradual (the bundled models' recipe)", dict(RECIPE), {}),
    "mage-no-vel": ("MAGE without the joint-velocity loss (recipe ablation)", {"velocity_weight": 0.0}, {}),
    "s3-only": ("single stage S3 (AGRoL-like baseline)", {**RECIPE, "scales": ["S3"], "depth": {"S3": 6}}, {}),
    "s2s3": ("two stages S2+S3", {**RECIPE, "scales": ["S2", "S3"], "depth": {"S2": 3, "S3": 3}}, {}),
    "s0-mage": ("four stages S0+S1+S2+S3", {**RECIPE, "scales": ["S0", "S1", "S2", "S3"],
                                            "depth": {"S0": 2, "S1": 2, "S2": 1, "S3": 1}}, {}),
    "fusion-cf": ("MAGE, fusion [C+F]", {**RECIPE, "fusion": "c+f"}, {}),
    "fusion-cfrec": ("MAGE, fusion [C+F_rec]", {**RECIPE, "fusion": "c+frec"}, {}),
    "sequential": ("MAGE, sequential (one diffusion model per stage)",
                   {**RECIPE, "mode": "sequential", "fusion": "c+frec", "xt_input": "all"}, {}),
    # Why does S2+S3 beat MAGE at the plateau? At the same 6 blocks S2+S3 gives its final
    # stage 3, MAGE 2. Written before the run: if that depth is the reason, this variant
    # closes at least half of MAGE's offline MPJVE and jitter gaps to S2+S3.
    "mage-deep-s3": ("MAGE with S2+S3's final-stage depth (blocks S1 1, S2 2, S3 3)",
                     {**RECIPE, "depth": {"S1": 1, "S2": 2, "S3": 3}}, {}),
    # Second explanation, written before its runs (stage_diagnosis.py and per_joint.py on
    # the plateau runs: about 3/4 of MAGE's extra jitter over S2+S3 is in the knees, ankles
    # and feet, and giving the next stage the true S1 or S2 state removes little of it, so
    # it is not S1's decoded state passed on). The 6-node S1 target pools each leg into one
    # node; if supervising the first 2 blocks with it is why MAGE is jitterier than S2+S3,
    # the same network without the S1 loss closes at least half of MAGE's offline MPJVE and
    # jitter gaps to S2+S3 (mean of 2 seeds).
    # Its rule in the reverse cross-source setting, written before those runs
    # (cross_bandai_to_permissive_plateau: trained on Bandai, 4000 steps, scored on the
    # unseen CMU + HDM05 clips, where MAGE's H-PE is worse than S3's on both seeds): if the
    # 6-node target is also why, this variant removes at least half of MAGE's H-PE gap to
    # S3 there (mean of 2 seeds).
    "mage-no-s1-loss": ("MAGE without the S1 stage's loss (S1 weight 0)",
                        {**RECIPE, "stage_loss_weights": {"S0": 0.5, "S1": 0.0, "S2": 0.5, "S3": 1.0}}, {}),
}
# Records written before the recipes had a val split trained on their train split, which
# then held every clip outside test: what is now train + val.
OLD_TRAIN = ["train", "val"]
HEADLINE = ("mpjre", "mpjpe", "mpjve", "jitter", "h_pe", "l_pe", "stride_ratio", "foot_sliding")
MODES = ("offline", "online")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "data" / "full"), help="processed dataset (train + test)")
    p.add_argument("--name", default="experiments", help="report name (OUT/NAME.json, .md, *.png)")
    p.add_argument("--runs", default=None, help="training runs folder (default runs/NAME)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"), help="report folder")
    p.add_argument("--preset", default="mage-small", help="base model preset of every variant")
    p.add_argument("--variants", nargs="+", default=["s3-only", "mage"], choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--max-steps", type=int, default=2000, help="training steps of every run")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--train-splits", nargs="+", default=["train"], metavar="SPLIT",
                   help="splits to train on (default train; 'train val' = every clip outside test, "
                        "what the recipes' train split held before they had a val split)")
    p.add_argument("--curve-sequences", type=int, default=40, help="test sequences per learning-curve point")
    p.add_argument("--cross", default=None, help="another processed dataset: also score its test split")
    p.add_argument("--cross-subjects", default="", metavar="PREFIX",
                   help="score only the --cross test clips whose subject (split group) starts with PREFIX, "
                        "e.g. bandai_ (a source family never seen in training)")
    p.add_argument("--rescore-cross", action="store_true",
                   help="score finished runs again on --cross when that dataset was rebuilt since")
    p.add_argument("--online-stride", type=int, default=4,
                   help="score online on every k-th test clip (online samples a window per frame)")
    p.add_argument("--threads", type=int, default=1, help="torch threads of this process")
    p.add_argument("--accelerator", default="auto")
    p.add_argument("--report-only", action="store_true", help="only rewrite the report from finished runs")
    p.add_argument("--note", default=None,
                   help="a caveat printed at the top of the report (kept by --report-only rewrites)")
    args = p.parse_args(argv)
    args.runs = args.runs or str(ROOT / "runs" / args.name)
    return args


def train_config(args, variant: str, seed: int):
    _, model_over, train_over = VARIANTS[variant]
    return budget_config(args.preset, model_over, args.max_steps, args.batch_size, seed,
                         args.accelerator, train_splits=tuple(args.train_splits), **train_over)


def score(model, dataset, mode: str, seed: int, limit: int | None = None, every: int = 1) -> dict:
    """Test-split metrics of every ``every``-th clip (the first ``limit`` of them)."""
    from mage.evaluate.protocol import evaluate
    from mage.inference.options import SamplingOptions
    from mage.inference.sequence import model_predict_fn

    return evaluate(model_predict_fn(model, SamplingOptions(mode, seed=seed)), Subset(dataset, every, limit), "test",
                    method="m", seed=seed, progress=False).metrics


def learning_curve(run_dir: Path, dataset, args, seed: int) -> list[dict]:
    """Held-out offline metrics of every saved checkpoint (step, mpjpe, jitter, ...)."""
    from mage.model.checkpoint import load_checkpoint
    from mage.model.checkpoint_paths import list_checkpoints

    points = []
    for step, ckpt in list_checkpoints(run_dir):
        m = score(load_checkpoint(ckpt).eval(), dataset, "offline", seed, args.curve_sequences)
        points.append({"step": step, **{k: m[k] for k in ("mpjpe", "l_pe", "jitter", "stride_ratio")}})
    return points


def train_losses(run_dir: Path) -> list[tuple[int, float]]:
    import csv

    out = []
    for path in sorted(run_dir.glob("logs/*/metrics.csv")):
        with open(path, newline="") as fh:
            for row in csv.DictReader(fh):
                if row.get("train/loss"):
                    out.append((int(row["step"]), float(row["train/loss"])))
    return out


def _rescore_online(args, run_dir: Path, record: dict, seed: int) -> dict:
    """A finished run scored online on another clip stride: score it again on this one."""
    from mage.data.dataset import ProcessedDataset
    from mage.model.checkpoint import load_checkpoint

    model = load_checkpoint(record["checkpoint"]).eval()
    record["metrics"]["online"] = score(model, ProcessedDataset(args.data), "online", seed, every=args.online_stride)
    record["online_stride"] = args.online_stride
    return _save_record(run_dir, record)


def _cross_score(args, model, seed: int) -> dict:
    """Offline metrics on the --cross dataset's test split (its --cross-subjects clips),
    tagged with that build's creation time."""
    from mage.data.dataset import ProcessedDataset

    data = ProcessedDataset(args.cross)
    cross = Subset(data, subject_prefix=args.cross_subjects)
    return {"data": args.cross, "subjects": args.cross_subjects or "all", "clips": len(cross.ids("test")),
            "data_created": data.manifest.get("created", ""), "metrics": score(model, cross, "offline", seed)}


def _rescore_cross(args, run_dir: Path, record: dict, seed: int) -> dict:
    """A finished run whose cross dataset was rebuilt since it was scored: score it again."""
    from mage.data.dataset import ProcessedDataset
    from mage.model.checkpoint import load_checkpoint

    if record.get("cross", {}).get("data_created") == ProcessedDataset(args.cross).manifest.get("created", ""):
        return record
    record["cross"] = _cross_score(args, load_checkpoint(record["checkpoint"]).eval(), seed)
    return _save_record(run_dir, record)


def _save_record(run_dir: Path, record: dict) -> dict:
    """Write a run's record (RUNS/<variant>_seed<k>/eval.json, atomically); returns it."""
    from mage.core.atomic import atomic_write

    with atomic_write(run_dir / "eval.json", "w") as fh:
        json.dump(record, fh, indent=1)
    return record


def run_one(args, variant: str, seed: int) -> dict:
    """Train (or resume) and score one variant/seed; returns its record (eval.json)."""
    from mage.data.dataset import ProcessedDataset
    from mage.model.checkpoint import load_checkpoint

    run_dir, record = finished_run(args.runs, variant, seed)
    if record is not None and args.cross and args.rescore_cross:
        record = _rescore_cross(args, run_dir, record, seed)
    if record is not None:
        if record.get("online_stride") != args.online_stride:  # same online clips in every row
            return _rescore_online(args, run_dir, record, seed)
        return record
    final, train_seconds = train_or_resume(train_config(args, variant, seed), args.data, run_dir)
    model = load_checkpoint(final).eval()
    dataset = ProcessedDataset(args.data)
    record = {
        "variant": variant, "seed": seed, "max_steps": args.max_steps, "batch_size": args.batch_size,
        "train_splits": list(args.train_splits),
        "parameters": sum(p.numel() for p in model.parameters()), "train_seconds": train_seconds,
        "metrics": {mode: score(model, dataset, mode, seed, every=1 if mode == "offline" else args.online_stride)
                    for mode in MODES},
        "online_stride": args.online_stride,
        "curve": learning_curve(run_dir, dataset, args, seed),
        "train_loss": train_losses(run_dir),
        "checkpoint": str(final),
    }
    if args.cross:
        record["cross"] = _cross_score(args, model, seed)
    from mage.evaluate.protocol import machine_info

    record["machine"] = machine_info("cpu")
    return _save_record(run_dir, record)


def finished_records(args) -> list[dict]:
    """The finished runs of this budget: same steps and the same training splits."""
    records = [json.loads(p.read_text()) for p in sorted(Path(args.runs).glob("*_seed*/eval.json"))]
    records = [r for r in records if r["variant"] in VARIANTS and r["max_steps"] == args.max_steps
               and r.get("train_splits", OLD_TRAIN) == list(args.train_splits)]
    return sorted(records, key=lambda r: (list(VARIANTS).index(r["variant"]), r["seed"]))


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def summarise(records: list[dict]) -> dict:
    out: dict[str, dict] = {}
    for variant in VARIANTS:
        rs = [r for r in records if r["variant"] == variant]
        if not rs:
            continue
        s = {"description": VARIANTS[variant][0], "seeds": [r["seed"] for r in rs],
             "parameters": rs[0]["parameters"],
             "train_minutes": statistics.fmean(r["train_seconds"] for r in rs) / 60}
        for mode in MODES:
            keys = rs[0]["metrics"][mode].keys()
            s[mode] = {k: _mean_std([r["metrics"][mode][k] for r in rs]) for k in keys}
        if all("cross" in r for r in rs):
            keys = rs[0]["cross"]["metrics"].keys()
            s["cross"] = {k: _mean_std([r["cross"]["metrics"][k] for r in rs]) for k in keys}
        out[variant] = s
    if "s3-only" in out:
        for variant, s in out.items():
            if variant == "s3-only":
                continue
            for part, key in (("offline", "vs_single_stage_percent"), ("cross", "cross_vs_single_stage_percent")):
                base = out["s3-only"].get(part)
                if base is not None and part in s:
                    s[key] = {k: 100.0 * (s[part][k][0] - base[k][0]) / base[k][0]
                              for k in ("mpjre", "mpjve", "jitter", "mpjpe", "l_pe") if base[k][0]}
    return out


def plot(records: list[dict], summary: dict, out: Path, name: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    order = list(dict.fromkeys(r["variant"] for r in records))
    for r in records:  # one colour per variant, one line style per seed
        label = f"{r['variant']} s{r['seed']}"
        style = dict(color=plt.cm.tab10(order.index(r["variant"]) % 10),
                     linestyle=("-", "--", ":", "-.")[r["seed"] % 4], label=label)
        if r["train_loss"]:
            steps, loss = zip(*r["train_loss"])
            axes[0].plot(steps, loss, **style)
        if r["curve"]:
            axes[1].plot([p["step"] for p in r["curve"]], [p["mpjpe"] for p in r["curve"]], marker="o", **style)
            axes[2].plot([p["step"] for p in r["curve"]], [p["jitter"] for p in r["curve"]], marker="o", **style)
    for ax, title in zip(axes, ("training loss", "held-out MPJPE (cm), offline", "held-out Jitter (10^2 m/s^3)")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    files.append(_save(fig, out / f"{name}_curves.png"))

    fig, axes = plt.subplots(1, len(HEADLINE), figsize=(3 * len(HEADLINE), 3.5))
    variants = list(summary)
    for ax, key in zip(axes, HEADLINE):
        means = [summary[v]["offline"][key][0] for v in variants]
        stds = [summary[v]["offline"][key][1] or 0.0 for v in variants]
        ax.bar(range(len(variants)), means, yerr=stds, capsize=3, color="tab:blue")
        ax.set_xticks(range(len(variants)), variants, rotation=60, ha="right", fontsize=7)
        ax.set_title(key, fontsize=9)
    files.append(_save(fig, out / f"{name}_bars.png"))
    return files


def _save(fig, path: Path) -> str:
    """Write a figure as PNG atomically, close it; its file name (for the Markdown)."""
    import matplotlib.pyplot as plt

    from mage.core.atomic import atomic_path

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path.name


def _note(args, out: Path) -> str:
    """--note, else with --report-only the note of the report already there (rewriting
    the same runs keeps their caveat; a run that trains starts without one)."""
    if args.note is not None:
        return args.note
    old = out / f"{args.name}.json"
    keep = args.report_only and old.is_file()
    return json.loads(old.read_text()).get("note", "") if keep else ""


def write_report(records: list[dict], args) -> None:
    from mage.evaluate.metrics import METRICS

    out = Path(args.out)
    summary = summarise(records)
    machine = records[0]["machine"] if records else {}
    doc = {"benchmark": args.name, "data": args.data, "base_preset": args.preset,
           "max_steps": args.max_steps, "batch_size": args.batch_size, "machine": machine,
           "summary": summary, "runs": records, "note": _note(args, out)}
    write_json(out, args.name, doc)  # before the plots: a plotting failure keeps the numbers
    pngs = plot(records, summary, out, args.name) if records else []
    units = {m.key: f"{m.label} ({m.unit})" for m in METRICS}
    lines = [f"# Experiments: {args.name}", ""] + ([f"**Note.** {doc['note']}", ""] if doc["note"] else []) + [
             f"Data `{args.data}` (test split); base preset `{args.preset}`; every run {args.max_steps} steps of "
             f"batch {args.batch_size} on the split(s) "
             f"{', '.join(sorted({'+'.join(r.get('train_splits', OLD_TRAIN)) for r in records}) or ['train'])}; "
             f"machine: {machine.get('cpu', '?')}, {machine.get('cpu_threads', '?')} "
             "thread(s). Mean ± std over seeds. Offline on every test clip, online on every "
             f"{args.online_stride}th. \"train min\" is wall-clock on a shared machine (other jobs ran "
             "beside most runs): a rough cost, not a speed comparison. Produced by "
             f"`python -m research.paper_experiments.run` (numbers from `{args.name}.json`).", ""]
    for mode in MODES:
        lines += [f"## {mode}", "", "| variant | seeds | params | train min | "
                  + " | ".join(units[k] for k in HEADLINE) + " |", "|---" * (4 + len(HEADLINE)) + "|"]
        for variant, s in summary.items():
            cells = [f"{s[mode][k][0]:.2f}" + (f" ± {s[mode][k][1]:.2f}" if s[mode][k][1] is not None else "")
                     for k in HEADLINE]
            lines.append(f"| {variant}: {s['description']} | {len(s['seeds'])} | {s['parameters'] / 1e6:.2f} M | "
                         f"{s['train_minutes']:.1f} | " + " | ".join(cells) + " |")
        lines.append("")
    rel = {v: s["vs_single_stage_percent"] for v, s in summary.items() if "vs_single_stage_percent" in s}
    if rel:
        lines += ["## Against the single-stage S3 model (offline, negative = lower)", ""]
        lines += [f"- `{v}`: " + ", ".join(f"{k} {x:+.1f}%" for k, x in r.items()) for v, r in rel.items()]
        lines += ["", "The paper's claims: MPJRE about -5%, MPJVE about -10%, Jitter about -11%.", ""]
    cross = {v: s["cross"] for v, s in summary.items() if "cross" in s}
    if cross:
        which = f"subjects {args.cross_subjects}*" if args.cross_subjects else "all clips"
        lines += [f"## Cross-data: test split of `{args.cross}`, {which} (offline, mean ± std over seeds)", "",
                  "| variant | " + " | ".join(units[k] for k in HEADLINE) + " |", "|---" * (1 + len(HEADLINE)) + "|"]
        lines += [f"| {v} | " + " | ".join(f"{c[k][0]:.2f}" + (f" ± {c[k][1]:.2f}" if c[k][1] is not None else "")
                                           for k in HEADLINE) + " |" for v, c in cross.items()]
        crel = {v: s["cross_vs_single_stage_percent"] for v, s in summary.items()
                if "cross_vs_single_stage_percent" in s}
        if crel:
            lines += ["", "Against the single-stage S3 model on these clips (negative = lower):", ""]
            lines += [f"- `{v}`: " + ", ".join(f"{k} {x:+.1f}%" for k, x in r.items()) for v, r in crel.items()]
        lines.append("")
    lines += [f"![{p}]({p})" for p in pngs]
    write_markdown(out, args.name, lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    return run_benchmark(args, "full", run_one, lambda a: write_report(finished_records(a), a))


if __name__ == "__main__":
    sys.exit(main())
