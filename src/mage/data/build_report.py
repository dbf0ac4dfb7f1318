"""The build report: ``OUT/build_report.json`` (``mage-build-report-v1``) and its Markdown twin.

It records what a build did (imported, reused, dropped, skipped, failed files), the
split and its subjects, hours per licence and any recipe extras (the cross-format
check); :func:`report_summary_lines` is the short summary printed at the end of a build.
"""

from __future__ import annotations

import json
from pathlib import Path

from mage.core.atomic import atomic_write

REPORT_JSON = "build_report.json"
REPORT_MD = "build_report.md"


def licence_summary(manifest: dict) -> dict[str, dict[str, float]]:
    """Hours of motion per licence and split: {licence: {split: hours}}."""
    fps = float(manifest["fps"])
    out: dict[str, dict[str, float]] = {}
    for split, ids in manifest["splits"].items():
        for i in ids:
            seq = manifest["sequences"][i]
            lic = seq.get("licence") or "unknown"
            out.setdefault(lic, {}).setdefault(split, 0.0)
            out[lic][split] += seq["frames"] / fps / 3600
    return {lic: {k: round(v, 3) for k, v in d.items()} for lic, d in sorted(out.items())}


def make_report(manifest: dict, results: dict[str, dict], ok: dict[str, dict], *, out: Path,
                sources: list[Path], num_files: int, test: list[str],
                split_rule: str, warnings: list[str], settings: dict) -> dict:
    """The build report (``mage-build-report-v1``) without recipe extras and timing.

    results: id -> import result of every file; ok: those in the manifest; num_files:
    the files found; test: the test subjects; settings: the build settings to record.
    """
    return {
        "format": "mage-build-report-v1",
        "created": manifest["created"],
        "out": str(out),
        "recipe": manifest["recipe"],
        "sources": [str(s) for s in sources],
        "settings": settings,
        "split_rule": split_rule,
        "test_subjects": test,
        "val_subjects": sorted({ok[i]["subject"] for i in manifest["splits"].get("val", ())}),
        "files": num_files,
        "counts": {s: sum(r["status"] == s for r in results.values())
                   for s in ("ok", "reused", "dropped", "skipped", "failed")},
        "splits": {split: split_summary(ids, ok, manifest["fps"])
                   for split, ids in manifest["splits"].items()},
        "licences": licence_summary(manifest),
        "dropped": listing(results, "dropped"),
        "skipped": listing(results, "skipped"),
        "failures": manifest["failures"],
        "warnings": warnings,
    }


def split_summary(ids: list[str], results: dict[str, dict], fps: float) -> dict:
    """Sequences, frames, minutes and subjects of one split (``ids``)."""
    frames = sum(results[i]["frames"] for i in ids)
    return {
        "sequences": len(ids),
        "frames": frames,
        "minutes": round(frames / fps / 60, 2),
        "subjects": sorted({results[i]["subject"] for i in ids}),
    }


def listing(results: dict, status: str) -> list[dict]:
    """{source, reason} of the results with ``status``, sorted by source."""
    return sorted(({"source": r["source"], "reason": r["reason"]}
                   for r in results.values() if r["status"] == status), key=lambda x: x["source"])


def report_summary_lines(report: dict) -> list[str]:
    """Short human-readable summary of a build report (printed at the end of a build)."""
    c = report["counts"]
    lines = [
        f"built {report['out']} in {report['seconds']:.1f} s: {c['ok']} imported, {c['reused']} "
        f"up to date, {c['dropped']} dropped (too short), {c['skipped']} skipped, {c['failed']} failed",
    ]
    for split, s in report["splits"].items():
        lines.append(f"  {split:5s}: {s['sequences']:4d} sequences, {s['frames']:7d} frames, "
                     f"{s['minutes']:6.2f} min, subjects {', '.join(s['subjects']) or '-'}")
    for lic, hours in report.get("licences", {}).items():
        lines.append(f"  licence {lic}: " + ", ".join(f"{k} {v:.2f} h" for k, v in hours.items()))
    cf = report.get("cross_format")
    if cf and cf.get("pairs"):
        lines.append(
            f"  cross-format ({cf['num_pairs']} trial pairs, {cf['frames']} frames): head "
            f"{cf['head_mean_cm']:.1f} cm mean / {cf['head_max_cm']:.1f} max, wrists "
            f"{cf['wrists_mean_cm']:.1f} cm mean / {cf['wrists_max_cm']:.1f} max (start-aligned); "
            f"body-relative head {cf['local_head_mean_cm']:.1f} cm, wrists {cf['local_wrists_mean_cm']:.1f} cm"
        )
    for f in report["failures"]:
        lines.append(f"  FAILED {f['source']}: {f['reason']}")
    for w in report.get("warnings", []):
        lines.append(f"  warning: {w}")
    return lines


def write_report(out: Path, report: dict) -> None:
    """Write ``build_report.json`` and ``build_report.md`` into ``out`` (atomically)."""
    with atomic_write(out / REPORT_JSON, "w") as fh:
        json.dump(report, fh, indent=1)
        fh.write("\n")
    with atomic_write(out / REPORT_MD, "w") as fh:
        fh.write(render_report_markdown(report))


def render_report_markdown(report: dict) -> str:
    """The build report as Markdown (``build_report.md``)."""
    c = report["counts"]
    s = report["settings"]
    md = [
        f"# Dataset build report: {report['out']}",
        "",
        f"- created: {report['created']}; recipe: {report['recipe']}; time taken: "
        f"{report['seconds']:.1f} s with {s['workers']} worker(s)",
        f"- sources: {', '.join(report['sources'])}",
        f"- frame rate: {s['fps']:g} fps; minimum length: {s['min_seconds']:g} s; rig: {s['rig']}; "
        f"body model: {s['body_model'] or '-'}{' (real shape)' if s['use_real_shape'] else ''}",
        f"- split: {report['split_rule']}; test subjects: {', '.join(report['test_subjects']) or '-'}"
        + (f"; validation subjects: {', '.join(report['val_subjects'])}" if report.get("val_subjects") else ""),
        f"- files: {report['files']}: {c['ok']} imported, {c['reused']} up to date, {c['dropped']} "
        f"dropped, {c['skipped']} skipped, {c['failed']} failed",
        "",
        "| split | sequences | frames | minutes | subjects |",
        "|---|---:|---:|---:|---|",
    ]
    for split, x in report["splits"].items():
        md.append(f"| {split} | {x['sequences']} | {x['frames']} | {x['minutes']:.2f} | "
                  f"{', '.join(x['subjects'])} |")
    if report.get("licences"):
        md += ["", "## Licences (hours of motion)", "", "| licence | " + " | ".join(report["splits"]) + " |",
               "|---|" + "---:|" * len(report["splits"])]
        for lic, hours in report["licences"].items():
            md.append(f"| {lic} | " + " | ".join(f"{hours.get(k, 0.0):.2f}" for k in report["splits"]) + " |")
    cf = report.get("cross_format")
    if cf:
        md += ["", "## Cross-format check", "", cf.get("description", ""), ""]
        if cf.get("pairs"):
            md += [
                f"Over {cf['num_pairs']} trial pairs ({cf['frames']} frames): head "
                f"{cf['head_mean_cm']:.2f} cm mean, {cf['head_max_cm']:.2f} cm max; wrists "
                f"{cf['wrists_mean_cm']:.2f} cm mean, {cf['wrists_max_cm']:.2f} cm max; body-relative "
                f"head {cf['local_head_mean_cm']:.2f} cm, wrists {cf['local_wrists_mean_cm']:.2f} cm.",
                "",
                "| pair | frames | lag | head mean / max (cm) | wrists mean / max (cm) "
                "| body-relative head / wrists (cm) | path ratio |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for p in cf["pairs"]:
                md.append(f"| {p['a']} vs {p['b']} | {p['frames']} | {p['lag']} | "
                          f"{p['head_mean_cm']:.2f} / {p['head_max_cm']:.2f} | "
                          f"{p['wrists_mean_cm']:.2f} / {p['wrists_max_cm']:.2f} | "
                          f"{p['local_head_mean_cm']:.2f} / {p['local_wrists_mean_cm']:.2f} | "
                          f"{p['path_ratio']:.3f} |")
        for note in cf.get("notes", []):
            md.append(f"- {note}")
    for title, key in (("Failures", "failures"), ("Dropped", "dropped"), ("Skipped", "skipped")):
        if report[key]:
            md += ["", f"## {title}", ""] + [f"- `{x['source']}`: {x['reason']}" for x in report[key]]
    if report.get("warnings"):
        md += ["", "## Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    return "\n".join(md) + "\n"
