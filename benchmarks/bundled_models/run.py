"""Held-out report of the bundled models: protocol + gait metrics, targets, curves.

    python -m benchmarks.bundled_models.run --data data/full --online-stride 4 \\
        --model full-medium --model full-small --model permissive-small --model cmu-small \\
        --curve runs/full-medium-bal25-tv --curve runs/full-small-tv --curve runs/permissive-small \\
        --validation-model runs/full-medium-bal25-val/final

For every model: offline (seeds 0 and 1: mean and spread) and online (seed 0) on the
test split of ``--data`` (the ``full`` recipe's held-out groups, see
``mage.data.recipes``), the same metrics per source family (CMU / HDM05 / dance sets /
Bandai Namco), and the offline noise-policy diagnosis (the default seeded noise against
zero initial noise: if jitter came from the sampler's noise, zero noise would remove it).
Baselines: the mean pose of the splits the default model trained on (its
``train_config.json``: train, or train + val for a refit model). The first ``--model`` is checked against
the targets of the data issue (MPJPE <= 7 cm, L-PE <= 10 cm, jitter <= 2x the ground
truth's online and <= 2.5x offline, stride ratio >= 0.7, better than the mean pose on
every protocol metric). ``--curve RUN`` adds the held-out learning curve of a training
run (every saved checkpoint, offline, on ``--curve-sequences`` test clips). The online
consistency (lambda) is chosen on the recipe's val split with ``--validation-model`` (the
default model's recipe trained on the train split alone; ``choose_consistency``) and
swept on the default model's test clips beside it, for reference.

Writes ``OUT/bundled_models.json`` and ``.md`` and ``bundled_models_curves.png``.
Resumable: each (model, mode, seed) result is cached in ``--cache`` and reused; the keys
hold fingerprints of the weights and of the data build's manifest, so a retrained model
or a rebuilt dataset is scored afresh.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
from pathlib import Path

from benchmarks.common import (
    ONLINE_JITTER_TARGET,
    ROOT,
    Subset,
    dataset_cache,
    fingerprint,
    jitter_ratio,
    meets_online_jitter,
    model_tag,
    online_predictor,
    run_eval,
    sweep_until_chosen,
)

NAME = "bundled_models"
PROTOCOL_KEYS = ("mpjre", "mpjpe", "mpjve", "jitter", "h_pe", "u_pe", "l_pe", "root_pe")
TABLE_KEYS = ("mpjre", "mpjpe", "l_pe", "h_pe", "mpjve", "jitter", "gt_jitter", "stride_ratio",
              "foot_sliding", "gt_foot_sliding", "floating", "penetration")
SWEEP_KEYS = ("mpjre", "mpjpe", "l_pe", "mpjve", "jitter", "gt_jitter", "stride_ratio")
TARGETS = {"mpjpe": 7.0, "l_pe": 10.0, "stride_ratio": 0.7, "jitter_ratio_online": ONLINE_JITTER_TARGET,
           "jitter_ratio_offline": 2.5}


def ordinal(k: int) -> str:
    """1 -> "1st", 4 -> "4th" (report text)."""
    return f"{k}{'th' if 10 <= k % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(k % 10, 'th')}"


def family(subject: str) -> str:
    """Source family of a split group (see mage.data.recipes)."""
    if subject.startswith("bandai_"):
        return "Bandai Namco"
    if subject.startswith("hdm05_"):
        return "HDM05"
    if subject.split("_")[0] in ("salsa", "indian", "martial"):
        return "CMU dance sets"
    return "CMU"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(ROOT / "data" / "full"))
    p.add_argument("--model", action="append", required=True, help="checkpoint name or folder (repeat)")
    p.add_argument("--curve", action="append", default=[], help="training run folder for a learning curve")
    p.add_argument("--curve-sequences", type=int, default=60)
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1], help="offline seeds")
    p.add_argument("--online-stride", type=int, default=1,
                   help="score online every k-th test clip (online is 1 sample per frame)")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    p.add_argument("--cache", default=str(ROOT / "runs" / "bundled_models_cache"))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--consistency-sweep", nargs="*", type=float, default=[0.0, 0.3, 0.5, 0.7, 0.85],
                   help="online consistency values to compare on the default model")
    p.add_argument("--validation-model", default=None,
                   help="checkpoint of the default model's recipe trained on the train split only: the "
                        "consistency lambda is chosen with it on the val split (none: no choice is made)")
    p.add_argument("--validation-every", type=int, default=1,
                   help="the consistency is chosen on every k-th clip of the val split (default: all, "
                        "the aggregation of the online target; the test split is never used to choose it)")
    return p.parse_args(argv)


def trained_splits(name: str) -> str:
    """The splits a checkpoint trained on ("train+val"), from its train_config.json
    ("train" where it has none or predates the setting)."""
    from mage.model.checkpoint_paths import resolve_checkpoint

    path = resolve_checkpoint(name) / "train_config.json"
    splits = json.loads(path.read_text()).get("train_splits", ["train"]) if path.is_file() else ["train"]
    return "+".join(splits)


def by_family(doc: dict) -> dict[str, dict[str, float]]:
    from mage.evaluate.metrics import aggregate

    groups: dict[str, list[dict]] = {}
    for row in doc["rows"]:
        groups.setdefault(family(row["subject"]), []).append(row["metrics"])
    return {fam: {**aggregate(rows), "clips": len(rows)} for fam, rows in sorted(groups.items())}


def learning_curve(run: Path, dataset, n: int, cache: Path) -> list[dict]:
    from mage.evaluate.protocol import evaluate
    from mage.inference.options import SamplingOptions
    from mage.inference.sequence import model_predict_fn
    from mage.model.checkpoint import load_checkpoint
    from mage.model.checkpoint_paths import list_checkpoints

    points = []
    for step, ckpt in list_checkpoints(run):
        def score(ckpt=ckpt):
            model = load_checkpoint(ckpt).eval()
            return evaluate(model_predict_fn(model, SamplingOptions("offline", seed=0)), Subset(dataset, first=n),
                            "test", progress=False)
        m = run_eval(f"curve_{run.name}_{step}-{fingerprint(ckpt / 'model.safetensors')}_first{n}", cache,
                     score)["metrics"]
        points.append({"step": step, **{k: m[k] for k in ("mpjpe", "l_pe", "jitter", "gt_jitter", "stride_ratio")}})
    return points


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from mage.data.dataset import ProcessedDataset
    from mage.evaluate.baselines import make_baseline
    from mage.evaluate.protocol import evaluate
    from mage.inference.options import ONLINE_CONSISTENCY, SamplingOptions
    from mage.inference.pretrained import load_pretrained
    from mage.inference.sequence import model_predict_fn
    from mage.model.checkpoint_paths import resolve_checkpoint

    dataset = ProcessedDataset(args.data)
    cache = dataset_cache(args.cache, args.data)
    online_set = Subset(dataset, every=args.online_stride)
    results: dict[str, dict] = {}

    mean_splits = trained_splits(args.model[0])  # the data the default model learned from
    base = run_eval(f"mean-pose_{mean_splits}", cache, lambda: evaluate(
        make_baseline("mean-pose", dataset, train_split=mean_splits), dataset, "test",
        method="mean-pose", progress=True))
    results["mean-pose"] = {"offline": base["metrics"], "families": by_family(base), "splits": mean_splits}
    for name in args.model:
        tag = model_tag(name)
        model = load_pretrained(name)
        offline = [run_eval(f"{tag}_offline_s{s}", cache, lambda s=s: evaluate(
            model_predict_fn(model, SamplingOptions("offline", seed=s)), dataset, "test", method=name, seed=s))
            for s in args.seeds]
        online = run_eval(f"{tag}_online_s0_every{args.online_stride}_consistency{ONLINE_CONSISTENCY:g}", cache,
                          lambda: evaluate(online_predictor(model, ONLINE_CONSISTENCY), online_set, "test",
                                           method=name, seed=0))

        quiet = copy.deepcopy(model)  # the noise-policy diagnosis: (almost) no initial noise
        quiet.config = dataclasses.replace(model.config, init_noise_scale=1e-6)
        no_noise = run_eval(f"{tag}_offline_s0_no_noise", cache, lambda: evaluate(
            model_predict_fn(quiet, SamplingOptions("offline", seed=0)), dataset, "test", method=name, seed=0))

        keys = offline[0]["metrics"].keys()
        mean = {k: statistics.fmean(d["metrics"][k] for d in offline) for k in keys}
        spread = {k: statistics.stdev([d["metrics"][k] for d in offline]) for k in keys} if len(offline) > 1 else {}
        results[name] = {
            "checkpoint": str(resolve_checkpoint(name)),
            "parameters": sum(p.numel() for p in model.parameters()),
            "offline": mean, "offline_spread": spread, "online": online["metrics"],
            "offline_no_noise": no_noise["metrics"],
            "online_clips": len(online["rows"]), "families": by_family(offline[0]),
            "offline_seconds": statistics.fmean(d["seconds"] for d in offline),
            "machine": offline[0]["machine"],
        }
    default = args.model[0]
    sweep, validation = {}, {}
    model = load_pretrained(default)
    tag = model_tag(default)
    validation_set = Subset(dataset, every=args.validation_every)
    val_model = load_pretrained(args.validation_model) if args.validation_model else None
    val_tag = model_tag(args.validation_model) if args.validation_model else ""
    if val_model is not None:
        chosen, validation = sweep_until_chosen(lambda lam: run_eval(
            f"{val_tag}_online_s0_val_every{args.validation_every}_consistency{lam:g}", cache,
            lambda: evaluate(online_predictor(val_model, lam), validation_set, "val",
                             method=args.validation_model, seed=0))["metrics"], args.consistency_sweep)
    for lam in args.consistency_sweep:
        sweep[lam] = run_eval(
            f"{tag}_online_s0_every{args.online_stride}_consistency{lam:g}", cache,
            lambda lam=lam: evaluate(online_predictor(model, lam), online_set, "test", method=default,
                                     seed=0))["metrics"]
    results[default]["consistency_sweep"] = sweep
    results[default]["consistency_validation"] = validation
    results[default]["consistency_chosen"] = chosen if val_model is not None else None
    results[default]["validation_model"] = args.validation_model
    results[default]["online_consistency"] = ONLINE_CONSISTENCY
    d = results[default]
    # The targets hold offline and online on the whole test split: the default model is
    # also scored online on every test clip (the tables above may use a stride).
    online_all = run_eval(
        f"{tag}_online_s0_every1_consistency{ONLINE_CONSISTENCY:g}", cache,
        lambda: evaluate(online_predictor(model, ONLINE_CONSISTENCY), dataset, "test", method=default,
                         seed=0))
    d["online_all"] = online_all["metrics"]
    # where the online jitter comes from, on test and on val (the split the lambda was chosen on)
    d["online_all_families"] = by_family(online_all)
    if val_model is not None and args.validation_every == 1:
        d["consistency_validation_families"] = by_family(run_eval(
            f"{val_tag}_online_s0_val_every1_consistency{ONLINE_CONSISTENCY:g}", cache,
            lambda: evaluate(online_predictor(val_model, ONLINE_CONSISTENCY), validation_set, "val",
                             method=args.validation_model, seed=0)))
    checks = {}
    for mode, m in (("offline", d["offline"]), ("online", d["online_all"])):
        checks[f"mpjpe_{mode}"] = (m["mpjpe"], m["mpjpe"] <= TARGETS["mpjpe"])
        checks[f"l_pe_{mode}"] = (m["l_pe"], m["l_pe"] <= TARGETS["l_pe"])
        checks[f"stride_ratio_{mode}"] = (m["stride_ratio"], m["stride_ratio"] >= TARGETS["stride_ratio"])
        checks[f"jitter_ratio_{mode}"] = (jitter_ratio(m), jitter_ratio(m) <= TARGETS[f"jitter_ratio_{mode}"])
    checks.update({
        "beats_mean_pose": (None, not (lost := [k for k in PROTOCOL_KEYS
                                                 if d["offline"][k] >= results["mean-pose"]["offline"][k]])),
    })
    if lost:  # a constant pose has a jitter below the ground truth's: no real motion beats it there
        checks["beats_mean_pose"] = ("loses on " + ", ".join(lost), False)
    curves = {run: learning_curve(Path(run), dataset, args.curve_sequences, cache) for run in args.curve}
    write_report(args, results, checks, curves)
    return 0


def write_report(args, results: dict, checks: dict, curves: dict) -> None:
    from mage.core.atomic import atomic_path, atomic_write
    from mage.evaluate.metrics import METRICS

    out = Path(args.out)
    doc = {"benchmark": NAME, "data": args.data, "default_model": args.model[0], "targets": TARGETS,
           "checks": {k: {"value": v, "met": ok} for k, (v, ok) in checks.items()},
           "results": results, "curves": curves}
    with atomic_write(out / f"{NAME}.json", "w") as fh:
        json.dump(doc, fh, indent=1)
    units = {m.key: f"{m.label} ({m.unit})" for m in METRICS}
    machine = next((r["machine"] for r in results.values() if "machine" in r), {})
    lines = [f"# Bundled models on the held-out split of `{Path(args.data).name}`", "",
             f"Produced by `python -m benchmarks.bundled_models.run` ({NAME}.json). Offline: mean over seeds "
             f"{', '.join(map(str, args.seeds))} (± std); online (causal, as the Streamer): seed 0, every "
             f"{ordinal(args.online_stride)} test clip, default consistency. "
             f"Machine: {machine.get('cpu', '?')}, {machine.get('cpu_threads', '?')} thread(s).", ""]
    for mode in ("offline", "online", "offline_no_noise"):
        lines += [f"## {mode}" + (" (initial noise x 1e-6: does the sampler's noise cause the jitter?)"
                                  if mode == "offline_no_noise" else ""), "",
                  "| model | " + " | ".join(units[k] for k in TABLE_KEYS) + " |",
                  "|---" * (1 + len(TABLE_KEYS)) + "|"]
        for name, r in results.items():
            if mode not in r:
                continue
            sp = r.get("offline_spread", {}) if mode == "offline" else {}
            lines.append(f"| {name} | " + " | ".join(
                f"{r[mode][k]:.2f}" + (f" ± {sp[k]:.2f}" if k in sp else "") for k in TABLE_KEYS) + " |")
        lines.append("")
    lines += [f"## Targets of the default model `{args.model[0]}`", "",
              "Offline: the seed mean on every test clip; online: seed 0 on every test clip, "
              "default consistency.", "", "| check | value | target | met |",
              "|---|---:|---:|---|"]
    for k, (v, ok) in checks.items():
        value = "" if v is None else v if isinstance(v, str) else f"{v:.2f}"
        target = TARGETS.get(k, TARGETS.get(k.rsplit("_", 1)[0], "every protocol metric"))
        lines.append(f"| {k} | {value} | {target} | "
                     f"{'yes' if ok else 'NO'} |")
    sweep = results[args.model[0]].get("consistency_sweep", {})
    if sweep:
        lines += ["", f"## Online temporal consistency (default model, every {ordinal(args.online_stride)} clip)", "",
                  "y[t] = s_t[N-1] + lambda (y[t-1] - s_t[N-2]) (`mage.inference.ONLINE_CONSISTENCY`"
                  f" = {results[args.model[0]]['online_consistency']:g}, the default of online prediction and "
                  "`Streamer`; 0 = each frame its own window's last row).", "",
                  "| lambda | " + " | ".join(units[k] for k in SWEEP_KEYS) + " |", "|---" * (1 + len(SWEEP_KEYS)) + "|"]
        cols = SWEEP_KEYS
        for lam, m in sweep.items():
            lines.append(f"| {lam:g} | " + " | ".join(f"{m[k]:.2f}" for k in cols) + " |")
        r = results[args.model[0]]
        val = r.get("consistency_validation", {})
        if val:
            clips = "every clip" if args.validation_every == 1 else f"every {args.validation_every}th clip"
            lines += ["", f"Chosen on the val split ({clips}; groups held out of "
                      "train like the test groups, `mage.data.recipes`) with "
                      f"`{r['validation_model']}`, the default model's recipe trained on the train split "
                      "alone, by `choose_consistency`: the smallest lambda whose online jitter is at most "
                      f"{TARGETS['jitter_ratio_online']:g}x the ground truth's (else the smoothest). The rule "
                      "was committed before any val metric existed; the test clips above were not used. "
                      "For reference only, lambdas that meet the online MPJPE and jitter targets on the "
                      f"every-{ordinal(args.online_stride)}-clip sweep above (the targets table uses every clip): "
                      + (", ".join(f"{lam:g}" for lam, m in sweep.items() if m["mpjpe"] <= TARGETS["mpjpe"]
                                   and meets_online_jitter(m)) or "none")
                      + ". Chosen: "
                      f"**{r['consistency_chosen']:g}** (the library default is {r['online_consistency']:g}"
                      + ("" if r["consistency_chosen"] == r["online_consistency"] else ": NOT the chosen value")
                      + "). Val lambdas are scored in increasing order until the rule has its answer "
                      "(`sweep_until_chosen`).", "",
                      "| lambda (validation) | " + " | ".join(units[k] for k in cols) + " |",
                      "|---" * (1 + len(cols)) + "|"]
            for lam, m in val.items():
                lines.append(f"| {lam:g} | " + " | ".join(f"{m[k]:.2f}" for k in cols) + " |")
    lines += ["", "## Offline, by source family (seed 0)", ""]
    fam_keys = ("mpjpe", "l_pe", "jitter", "gt_jitter", "stride_ratio")
    lines += ["| model | family | clips | " + " | ".join(units[k] for k in fam_keys) + " |",
              "|---" * (3 + len(fam_keys)) + "|"]
    for name, r in results.items():
        for fam, m in r["families"].items():
            lines.append(f"| {name} | {fam} | {m['clips']} | " + " | ".join(f"{m[k]:.2f}" for k in fam_keys) + " |")
    d = results[args.model[0]]
    if "online_all_families" in d:
        val = d.get("consistency_validation_families", {})
        lines += ["", f"## Online jitter by source family: `{args.model[0]}` on every test clip, and its "
                  f"train-only twin on every val clip (lambda {d['online_consistency']:g})", "",
                  "Clip means, as the tables aggregate; a family's weight in the split's jitter ratio grows "
                  "with its clips and with its jitter.", "",
                  "| family | test clips | test jitter (GT) | test jitter / GT | val clips | val jitter (GT) "
                  "| val jitter / GT |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for fam in sorted(set(d["online_all_families"]) | set(val)):
            cells = []
            for part in (d["online_all_families"], val):
                m = part.get(fam)
                cells += ([f"{m['clips']}", f"{m['jitter']:.2f} ({m['gt_jitter']:.2f})", f"{jitter_ratio(m):.2f}"]
                          if m else ["0", "-", "-"])
            lines.append(f"| {fam} | " + " | ".join(cells) + " |")
    if curves:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
        for run, pts in curves.items():
            steps = [p["step"] for p in pts]
            axes[0].plot(steps, [p["mpjpe"] for p in pts], "o-", label=Path(run).name)
            axes[1].plot(steps, [p["jitter"] / p["gt_jitter"] for p in pts], "o-", label=Path(run).name)
            axes[2].plot(steps, [p["stride_ratio"] for p in pts], "o-", label=Path(run).name)
        for ax, t in zip(axes, ("held-out MPJPE (cm)", "held-out jitter / ground truth", "held-out stride ratio")):
            ax.set_title(t)
            ax.set_xlabel("training step")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        with atomic_path(out / f"{NAME}_curves.png") as tmp:
            fig.savefig(tmp, dpi=90, format="png")
        plt.close(fig)
        lines += ["", f"## Learning curves (offline, first {args.curve_sequences} test clips)", "",
                  f"![learning curves]({NAME}_curves.png)"]
    with atomic_write(out / f"{NAME}.md", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
