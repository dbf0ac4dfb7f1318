"""Evaluation reports: JSON (everything), Markdown (for people), CSV (per sequence).

``write_report(result, out_dir)`` writes, each atomically (mage.core.atomic):

    out_dir/metrics.json       format "mage-eval-v1": run facts, units, mean, spread,
                               per-seed means
    out_dir/report.md          the run facts and one table, units in the header
    out_dir/per_sequence.csv   seed, id, source, subject, frames, one column per metric
                               (its unit in the name, e.g. ``mpjpe_cm``)

``comparison_table(results)`` formats several results as one Markdown table (benchmark).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from pathlib import Path
from typing import Sequence

from mage.core.atomic import atomic_write
from mage.evaluate.metrics import METRICS, MetricInfo
from mage.evaluate.protocol import EvalResult

REPORT_FORMAT = "mage-eval-v1"
JSON_NAME, MARKDOWN_NAME, CSV_NAME = "metrics.json", "report.md", "per_sequence.csv"
CSV_FIXED_COLUMNS = ("seed", "id", "source", "subject", "frames")

_PROTOCOL_NOTE = (
    "Protocol: AvatarPoser/AGRoL. Predictions are placed by forward kinematics with zero "
    "translation, then translated so the predicted head lands on the tracked head. Each "
    "metric is averaged per sequence first, then without weights over sequences. MPJRE: "
    "axis-angle components of the 21 body joints, differences wrapped to [-pi, pi]; "
    "MPJRE-geo: geodesic angle. Jitter: third finite difference times fps^3, in 10^2 m/s^3."
)


def _metrics_in(result: EvalResult) -> list[MetricInfo]:
    return [m for m in METRICS if m.key in result.metrics]


def header_label(m: MetricInfo) -> str:
    """Table header of a metric with its unit, e.g. ``MPJPE (cm)``."""
    return f"{m.label} ({m.unit})"


def format_value(mean: float, std: float | None = None, digits: int = 2) -> str:
    """``1.23`` or ``1.23 ± 0.04``."""
    text = f"{mean:.{digits}f}"
    return text if std is None else f"{text} ± {std:.{digits}f}"


def result_to_dict(result: EvalResult) -> dict:
    """The JSON content of a report (per-sequence rows are in the CSV, not here)."""
    return {
        "format": REPORT_FORMAT,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "method": result.method,
        "settings": result.settings,
        "seeds": result.seeds,
        "dataset_root": result.dataset_root,
        "split": result.split,
        "fps": result.fps,
        "num_sequences": result.num_sequences,
        "num_frames": result.num_frames,
        "seconds": round(result.seconds, 3),
        "predict_seconds": round(result.predict_seconds, 3),
        "machine": result.machine,
        "units": {m.key: m.unit for m in _metrics_in(result)},
        "metrics": result.metrics,
        "spread": result.spread,
        "per_seed": result.per_seed,
        "protocol": _PROTOCOL_NOTE,
    }


def _metrics_row(result: EvalResult, metrics: Sequence[MetricInfo], digits: int) -> list[str]:
    return [format_value(result.metrics[m.key], result.spread.get(m.key), digits) for m in metrics]


def format_markdown(result: EvalResult, digits: int = 2) -> str:
    """A Markdown page: the run facts, then the metrics table (units in the header)."""
    metrics = _metrics_in(result)
    seeds = ", ".join(str(s) for s in result.seeds) or "none (deterministic)"
    ms_per_frame = 1000.0 * result.predict_seconds / max(result.num_frames * max(len(result.seeds), 1), 1)
    facts = [
        ("method", result.method),
        *[(k, v) for k, v in result.settings.items()],
        ("seeds", seeds),
        ("dataset", f"{result.dataset_root} (split {result.split}, {result.fps:g} fps)"),
        ("sequences", str(result.num_sequences)),
        ("frames", str(result.num_frames)),
        ("time", f"{result.seconds:.1f} s in all, {ms_per_frame:.3f} ms per frame predicting"),
        ("machine", f"CPU {result.machine.get('cpu', '?')}, GPU {result.machine.get('gpu', 'none')}, "
                    f"device {result.machine.get('device', '?')}, torch {result.machine.get('torch', '?')}"),
    ]
    lines = [f"# Evaluation: {result.method}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {'' if v is None else v} |" for k, v in facts]
    spread = f", mean ± sample std over {len(result.seeds)} seeds" if result.spread else ""
    lines += ["", f"## Metrics (mean over {result.num_sequences} sequences{spread})", ""]
    lines += _table([result.method], [_metrics_row(result, metrics, digits)], metrics)
    lines += ["", _PROTOCOL_NOTE, ""]
    return "\n".join(lines)


def _table(names: Sequence[str], rows: Sequence[Sequence[str]], metrics: Sequence[MetricInfo]) -> list[str]:
    out = ["| Method | " + " | ".join(header_label(m) for m in metrics) + " |",
           "|---|" + "---:|" * len(metrics)]
    out += [f"| {n} | " + " | ".join(r) + " |" for n, r in zip(names, rows)]
    return out


def comparison_table(results: Sequence[EvalResult], metrics: Sequence[str] | None = None,
                     digits: int = 2) -> str:
    """One Markdown table, one row per result (``mean ± std`` where seeds give a spread).

    ``metrics``: keys to show (default: every metric all results have), in METRICS order.
    """
    results = list(results)
    if not results:
        raise ValueError("comparison_table: no results")
    known = {m.key: m for m in METRICS}
    if metrics is None:
        keys = [m.key for m in METRICS if all(m.key in r.metrics for r in results)]
    else:
        unknown = [k for k in metrics if k not in known]
        if unknown:
            raise ValueError(f"comparison_table: unknown metric(s) {unknown}; known: {', '.join(known)}")
        keys = list(metrics)
    infos = [known[k] for k in keys]
    rows = [_metrics_row(r, infos, digits) for r in results]
    return "\n".join(_table([r.method for r in results], rows, infos)) + "\n"


def format_csv(result: EvalResult) -> str:
    """Per-sequence rows (every seed), full precision."""
    metrics = _metrics_in(result)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*CSV_FIXED_COLUMNS, *(m.column for m in metrics)])
    for s in result.sequences:
        w.writerow(["" if s.seed is None else s.seed, s.id, s.source, s.subject, s.frames,
                    *(repr(float(s.metrics[m.key])) for m in metrics)])
    return buf.getvalue()


def write_report(result: EvalResult, out_dir: str | Path) -> dict[str, Path]:
    """Write metrics.json, report.md and per_sequence.csv into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: exists and is not a folder (the report is a folder)")
    paths = {"json": out_dir / JSON_NAME, "markdown": out_dir / MARKDOWN_NAME, "csv": out_dir / CSV_NAME}
    contents = {
        "json": json.dumps(result_to_dict(result), indent=2, default=str) + "\n",
        "markdown": format_markdown(result),
        "csv": format_csv(result),
    }
    for key, path in paths.items():
        with atomic_write(path, "w") as fh:
            fh.write(contents[key])
    return paths
