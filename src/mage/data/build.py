"""Raw motion files of any format -> the processed dataset (``mage-dataset-v1``).

``build_dataset(sources, out)`` (CLI: ``mage data build SOURCE... -o OUT``):

1. finds every ``.bvh``, ``.amc`` and ``.npz`` (AMASS or the project's own) under the
   sources (``mage.data.discover``); each file gets an id (its path relative to the
   source, ``/`` -> ``__``) and a subject (CMU names ``02_01.amc`` / ``002_01.bvh`` /
   ``02_01_poses.npz`` -> ``"02"``, both formats alike; otherwise the folder relative to
   the source; ``mage.data.sequence_ids``);
2. imports the files in parallel worker processes (``mage.data.build_workers``): AMASS
   by the protocol stride to 60 Hz, everything else resampled with
   :meth:`Motion.resample`; sequences shorter than ``min_seconds`` are dropped, AMASS
   ``shape.npz`` files skipped, and a file that fails is reported with its reason,
   never stopping the build. Each record is written atomically by the worker;
3. splits train/test by subject (a recipe's or ``test_subjects``; otherwise a fixed
   hash order of the subject names, so the same files always give the same split), and
   a recipe's validation subjects into a val split (also with ``test_subjects``; a
   subject named for both stays in test);
4. writes ``manifest.json`` (atomically, at the end) and ``build_report.{json,md}``
   (``mage.data.build_report``).

A rerun reuses every record whose source file (size, mtime), build settings and record
file are unchanged, from the cache ``OUT/.build_cache.jsonl`` (``mage.data.build_cache``;
appended as records are written, so an interrupted build resumes too); ``force=True``
rebuilds all.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Mapping

import numpy as np

from mage.core.constants import PROTOCOL_FPS
from mage.data.build_cache import CACHE_FILE, cache_entry, file_stamp, is_reusable, read_cache, rewrite_cache
from mage.data.build_report import listing, make_report, report_summary_lines, write_report
from mage.data.build_workers import BuildSettings, load_for_build, run_tasks, write_progress
from mage.data.dataset import FORMAT, record_file, write_manifest
from mage.data.discover import SourceFile, check_no_amass, resolve_sources, select_files
from mage.data.recipes import DEFAULT_MIN_SECONDS, get_recipe
from mage.data.sequence_ids import normalise_subject

DEFAULT_TEST_FRACTION = 0.15


def build_dataset(
    sources: Iterable[str | Path],
    out: str | Path,
    *,
    recipe=None,
    test_subjects: Iterable[str] | None = None,
    workers: int | None = None,
    body_model: str | Path | None = None,
    rig: str = "auto",
    use_real_shape: bool = False,
    min_seconds: float | None = None,
    fps: float = PROTOCOL_FPS,
    force: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
    split_files: Mapping[str, Iterable[str | Path]] | None = None,
) -> dict:
    """Build (or update) the processed dataset in ``out``; returns the build report.

    sources: files / folders; may be empty with a recipe: the recipe's default source.
    out: the dataset folder (created; an existing build there is updated).
    recipe: a name from ``mage.data.recipes.RECIPES`` or a Recipe: test subjects,
        minimum length and extra report figures.
    test_subjects: overrides the recipe's; default: ``choose_test_subjects``. The
        recipe's validation subjects still form the val split (minus any test subject).
    workers: processes (default min(2, cpu count)); 1 runs in this process.
    min_seconds: shorter sequences are dropped (default: recipe's, else 2 s).
    split_files: an explicit split, ``{"train": files, "test": files}`` (the AMASS
        protocol-1 lists or protocol-2 subsets, see ``mage.data.discover.amass_protocol_splits``): only
        these files under ``sources`` are imported and the split follows them, not subjects.
    """
    t_start = time.perf_counter()
    rec = get_recipe(recipe) if isinstance(recipe, str) else recipe
    sources, recipe_files = resolve_sources([Path(s) for s in sources], rec, Path(out))
    out = Path(out)
    if min_seconds is None:
        min_seconds = rec.min_seconds if rec is not None else DEFAULT_MIN_SECONDS
    workers = _worker_count(workers)
    settings = BuildSettings(
        fps=float(fps), rig=str(rig), use_real_shape=bool(use_real_shape),
        body_model=None if body_model is None else os.path.abspath(body_model),
    )
    files, test_sources = select_files(sources, recipe_files, out, split_files)
    if settings.body_model is None:
        check_no_amass(files)
    test, split_rule, warnings = _test_subjects(files, test_subjects, rec)
    if test_sources is not None:
        test, split_rule = [], "explicit file lists (train / test)"

    # --- reuse, then import what is new or changed ----------------------------------
    (out / "sequences").mkdir(parents=True, exist_ok=True)
    results, tasks = _plan(files, {} if force else read_cache(out), settings, out, min_seconds)
    n_reused = sum(r["status"] == "reused" for r in results.values())
    log(f"mage data build: {len(files)} files, {n_reused} up to date, {len(tasks)} to import "
        f"with {workers} worker(s) -> {out}")
    stamps = {f.id: file_stamp(f.path) for f in files}
    _import_and_cache(tasks, results, out, settings, stamps, workers, progress, log)

    # --- splits, manifest, cache, report --------------------------------------------
    val = rec.val_subjects if rec is not None and test_sources is None else ()
    manifest = _manifest(results, test, settings.fps, rec.name if rec is not None else "custom",
                         test_sources, val)
    ok = {i: r for i, r in results.items() if i in manifest["sequences"]}
    write_manifest(out, manifest)
    rewrite_cache(out, ok, settings, stamps)
    report = make_report(
        manifest, results, ok, out=out, sources=sources, num_files=len(files), test=test,
        split_rule=split_rule, warnings=warnings,
        settings={**settings.key(), "min_seconds": min_seconds, "workers": workers})
    if rec is not None and rec.extras is not None:
        def positions_of(result: dict):
            return _positions_for_check(result, out, settings)

        report.update(rec.extras(list(results.values()), positions_of))
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    write_report(out, report)
    for line in report_summary_lines(report):
        log(line)
    return report


def choose_test_subjects(subjects: Iterable[str], fraction: float = DEFAULT_TEST_FRACTION) -> list[str]:
    """A reproducible test set: the first ``round(fraction * n)`` subjects (at least 1,
    at most n - 1) in the order of the SHA-1 of their names. None if n < 2."""
    subjects = sorted(set(subjects))
    n = len(subjects)
    if n < 2:
        return []
    k = min(n - 1, max(1, round(fraction * n)))
    ranked = sorted(subjects, key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    return sorted(ranked[:k])


def _test_subjects(files: list[SourceFile], given: Iterable[str] | None, rec) -> tuple[list[str], str, list[str]]:
    """(test subjects, how they were chosen, warnings): given > recipe's > hash order."""
    all_subjects = sorted({f.subject for f in files})
    if given is not None:
        test = sorted({normalise_subject(s) for s in given})
        unknown = [s for s in test if s not in all_subjects]
        if unknown:
            raise ValueError(
                f"test subject(s) {', '.join(unknown)} not among the sources' subjects: "
                + ", ".join(all_subjects)
            )
        return test, "given test subjects", []
    if rec is not None and rec.test_subjects is not None:
        test = sorted(normalise_subject(s) for s in rec.test_subjects)
        missing = [s for s in test if s not in all_subjects]
        warnings = [f"recipe test subject(s) {', '.join(missing)} have no files here"] if missing else []
        return test, f"recipe {rec.name}", warnings
    test = choose_test_subjects(all_subjects)
    warnings = [] if test else ["only one subject: every sequence is in train, test is empty"]
    return test, f"hash order of subject names, {DEFAULT_TEST_FRACTION:.0%} of subjects", warnings


def _plan(files: list[SourceFile], cache: dict, settings: BuildSettings, out: Path,
          min_seconds: float) -> tuple[dict[str, dict], list[dict]]:
    """Results of the files whose records can be reused, and tasks for the others."""
    results: dict[str, dict] = {}
    tasks = []
    for f in files:
        entry = cache.get(f.id)
        if is_reusable(entry, f, settings, out):
            r = {"source": str(f.path), "id": f.id, "subject": f.subject, "licence": f.licence,
                 "source_fps": f.source_fps, "status": "reused",
                 "frames": entry["frames"], "rig": entry["rig"], "reason": "", "seconds": 0.0}
            duration = (entry["frames"] + 1) / settings.fps
            if duration < min_seconds:  # min_seconds raised since the record was made
                r.update(status="dropped", frames=0,
                         reason=f"too short: {duration:.2f} s < {min_seconds:g} s")
            results[f.id] = r
        else:
            tasks.append({
                "source": str(f.path), "id": f.id, "subject": f.subject, "licence": f.licence,
                "source_fps": f.source_fps, "out_path": str(out / record_file(f.id)), "settings": settings.key(),
                "min_seconds": float(min_seconds),
            })
    return results, tasks


def _manifest(results: dict[str, dict], test: list[str], fps: float, recipe: str,
              test_sources: set[str] | None = None, val: Iterable[str] = ()) -> dict:
    """The manifest (format in mage.data.dataset) of the imported or reused sequences.

    The test split is the sequences of the ``test`` subjects, or, when ``test_sources``
    (absolute paths) is given, exactly those files (the AMASS protocol lists). The val
    split (only when ``val`` names subjects) is the sequences of the ``val`` subjects
    that are not in test; train is the rest."""
    ok = {i: r for i, r in sorted(results.items()) if r["status"] in ("ok", "reused")}
    if test_sources is not None:
        test_ids = [i for i, r in ok.items() if os.path.abspath(r["source"]) in test_sources]
    else:
        test_ids = [i for i, r in ok.items() if r["subject"] in test]
    val, test_set = set(val), set(test_ids)
    val_ids = [i for i, r in ok.items() if r["subject"] in val and i not in test_set]
    held_out = test_set | set(val_ids)
    splits = {"train": [i for i in ok if i not in held_out]}
    if val:
        splits["val"] = val_ids
    splits["test"] = test_ids
    return {
        "format": FORMAT,
        "fps": int(fps) if float(fps).is_integer() else fps,
        "recipe": recipe,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "splits": splits,
        "sequences": {
            i: {"source": r["source"], "subject": r["subject"], "frames": r["frames"],
                "file": record_file(i), "rig": r["rig"], "licence": r.get("licence", "")}
            for i, r in ok.items()
        },
        "failures": listing(results, "failed"),
    }


def _worker_count(workers: int | None) -> int:
    """The worker processes: ``workers``, default min(2, cpu count); ValueError if < 1."""
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    return workers


def _import_and_cache(tasks: list[dict], results: dict[str, dict], out: Path,
                      settings: BuildSettings, stamps: dict[str, dict], workers: int,
                      progress: bool, log: Callable[[str], None]) -> None:
    """Run the import tasks, adding each result to ``results`` and appending every
    written record to the cache as it comes (so an interrupted build resumes)."""
    with open(out / CACHE_FILE, "a", encoding="utf-8") as cache_fh:
        def on_result(r: dict) -> None:
            results[r["id"]] = r
            if r["status"] == "ok":
                cache_fh.write(json.dumps(cache_entry(r, settings, stamps[r["id"]])) + "\n")
                cache_fh.flush()
            elif r["status"] == "failed":
                write_progress(f"failed: {r['source']}: {r['reason']}", progress, log)

        run_tasks(tasks, workers, progress, on_result)


def _positions_for_check(result: dict, out: Path, settings: BuildSettings):
    """(T, 22, 3) world joints of a result at the dataset rate, frame 0 dropped: from its
    record, or imported again (dropped sequences have none). None if unavailable."""
    if result["status"] in ("ok", "reused"):
        with np.load(out / record_file(result["id"]), allow_pickle=False) as f:
            return f["positions"].astype(np.float64)
    if result["status"] == "dropped":
        motion = load_for_build(result["source"], settings)
        return motion.joint_positions()[1:].double().numpy()
    return None
