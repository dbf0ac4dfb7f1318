"""Raw motion files of any format -> the processed dataset (``mage-dataset-v1``).

``build_dataset(sources, out)`` (CLI: ``mage data build SOURCE... -o OUT``):

1. finds every ``.bvh``, ``.amc`` and ``.npz`` (AMASS or the project's own) under the
   sources; each file gets an id (its path relative to the source, ``/`` -> ``__``)
   and a subject (CMU names ``02_01.amc`` / ``002_01.bvh`` / ``02_01_poses.npz`` ->
   ``"02"``, both formats alike; otherwise the folder relative to the source);
2. imports the files in parallel worker processes: AMASS by the protocol stride to
   60 Hz, everything else resampled with :meth:`Motion.resample`; sequences shorter
   than ``min_seconds`` are dropped, AMASS ``shape.npz`` files skipped, and a file that
   fails is reported with its reason, never stopping the build. Each record is written
   atomically by the worker;
3. splits train/test by subject (a recipe's or ``test_subjects``; otherwise a fixed
   hash order of the subject names, so the same files always give the same split), and
   a recipe's validation subjects into a val split (also with ``test_subjects``; a
   subject named for both stays in test);
4. writes ``manifest.json`` (atomically, at the end) and ``build_report.{json,md}``.

A rerun reuses every record whose source file (size, mtime), build settings and record
file are unchanged, from the cache ``OUT/.build_cache.jsonl`` (appended as records are
written, so an interrupted build resumes too); ``force=True`` rebuilds all.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Mapping

from mage.core.atomic import atomic_write
from mage.data.dataset import FORMAT, record_file, record_is_complete, write_manifest

DEFAULT_FPS = 60.0
DEFAULT_MIN_SECONDS = 2.0
DEFAULT_TEST_FRACTION = 0.15
MOTION_EXTENSIONS: tuple[str, ...] = (".bvh", ".amc", ".npz")
CACHE_FILE = ".build_cache.jsonl"
REPORT_JSON = "build_report.json"
REPORT_MD = "build_report.md"

_CMU_STEM = re.compile(r"(\d+)_(\d+)(?:_poses)?")


# --- files, ids, subjects ---------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SourceFile:
    """A motion file to import: ``path`` as found, ``rel`` its path inside the source."""

    path: Path
    rel: PurePosixPath
    id: str
    subject: str
    licence: str = ""
    source_fps: float | None = None  # the true frame rate where the header is wrong


# Joins the parts of a sequence id: the source folder's name (a recipe's source, or the
# top folder of a plain build such as an AMASS sub-dataset), then the file's path parts.
ID_SEPARATOR = "__"


def source_of(sequence_id: str) -> str:
    """The collection a sequence came from: the first part of its id (``ID_SEPARATOR``),
    e.g. "bandai_namco" for "bandai_namco__dataset-1__dataset-1_bow_active_001"; "" for
    an id of one part (a file at the top of a plain build's folder: one shared source).
    In a plain build the first part is the top folder under the source folder (for a
    folder of CMU subject folders, the subject); a file or folder name that itself holds
    ``ID_SEPARATOR`` is split there too."""
    head, sep, _ = sequence_id.partition(ID_SEPARATOR)
    return head if sep else ""


def normalise_subject(subject: str) -> str:
    """All-digit subjects lose leading zeros down to two digits: "002" -> "02", "3" -> "03"."""
    subject = str(subject).strip()
    return f"{int(subject):02d}" if subject.isdigit() else subject


def subject_of(path: Path, rel: PurePosixPath) -> str:
    """The subject of a motion file.

    CMU-style names ``SS_TT.amc``, ``SSS_TT.bvh``, ``SS_TT_poses.npz`` -> the subject
    number, normalised (so ASF/AMC "02_01" and CC BVH "002_01" agree); otherwise the
    folders of ``rel`` (e.g. AMASS "BMLmovi/Subject_1_F_MoSh"), or the file's folder name.
    """
    m = _CMU_STEM.fullmatch(rel.stem)
    if m:
        return normalise_subject(m.group(1))
    if rel.parent != PurePosixPath("."):
        return rel.parent.as_posix()
    return Path(os.path.abspath(path)).parent.name or rel.stem


def _sanitise(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("_") or "_"


def discover(sources: Iterable[str | Path], exclude: Path | None = None) -> list[SourceFile]:
    """Motion files of ``sources`` (files, or folders searched recursively), sorted.

    Hidden files and anything under ``exclude`` (the output folder) are left out. Ids
    are unique: a clash (``a.bvh`` beside ``a.npz``) gets the extension appended.
    """
    found: list[tuple[Path, PurePosixPath]] = []
    excl = Path(os.path.abspath(exclude)) if exclude is not None else None
    for src in sources:
        src = Path(src)
        if src.is_file():
            if src.suffix.lower() not in MOTION_EXTENSIONS:
                raise ValueError(
                    f"{src}: unsupported file type {src.suffix!r}; supported: "
                    + ", ".join(MOTION_EXTENSIONS)
                )
            found.append((src, PurePosixPath(src.name)))
        elif src.is_dir():
            for p in sorted(src.rglob("*")):
                rel = p.relative_to(src)
                if (p.suffix.lower() not in MOTION_EXTENSIONS or not p.is_file()
                        or any(part.startswith(".") for part in rel.parts)):
                    continue
                if excl is not None and Path(os.path.abspath(p)).is_relative_to(excl):
                    continue
                found.append((p, PurePosixPath(rel.as_posix())))
        else:
            raise FileNotFoundError(f"{src}: source not found (expected a motion file or a folder)")
    ids: dict[str, list[int]] = {}
    names = []
    for i, (p, rel) in enumerate(found):
        name = ID_SEPARATOR.join(_sanitise(x) for x in rel.with_suffix("").parts)
        names.append(name)
        ids.setdefault(name, []).append(i)
    for name, idx in ids.items():
        if len(idx) > 1:
            for i in idx:
                names[i] = f"{name}_{found[i][0].suffix.lower().lstrip('.')}"
    seen: dict[str, Path] = {}
    out = []
    for (p, rel), name in zip(found, names):
        if name in seen:
            if os.path.samefile(seen[name], p):
                continue  # the same file reached twice
            raise ValueError(f"two source files map to the sequence id {name!r}: {seen[name]} and {p}")
        seen[name] = p
        out.append(SourceFile(p, rel, name, subject_of(p, rel)))
    return out


def discover_recipe(rec, exclude: Path | None = None) -> tuple[list[SourceFile], list[Path]]:
    """The files of a recipe's default sources, each with its split group (subject),
    licence and true frame rate; and the source folders. Ids are made unique across the
    sources by prefixing the source folder's name."""
    from mage.data.recipes import licence_of

    files: list[SourceFile] = []
    folders = []
    for spec, folder in rec.resolve_sources():
        folders.append(folder)
        prefix = _sanitise(Path(spec.folder).name)
        for f in discover([folder], exclude=exclude):
            group = spec.group(f.rel) if spec.group is not None else None
            fps = spec.source_fps(f.rel) if spec.source_fps is not None else None
            files.append(dataclasses.replace(
                f, id=f"{prefix}{ID_SEPARATOR}{f.id}", subject=normalise_subject(group or f.subject),
                licence=licence_of(spec, f.rel), source_fps=fps))
    return files, folders


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


# --- per-file work (runs in worker processes) ------------------------------------------
@dataclasses.dataclass(frozen=True)
class BuildSettings:
    """What a record depends on besides its source file (a change rebuilds records)."""

    fps: float = DEFAULT_FPS
    rig: str = "auto"
    body_model: str | None = None
    use_real_shape: bool = False

    def key(self) -> dict:
        return dataclasses.asdict(self)


def load_for_build(path: str | Path, settings: BuildSettings, source_fps: float | None = None):
    """Import one file at ``settings.fps``: AMASS by the protocol stride, others by
    :meth:`Motion.resample` (every n-th frame for integer ratios, else interpolation).
    ``source_fps``: the file's true frame rate where its header is wrong (recipes)."""
    from mage.data.io import detect_format, load_motion

    if detect_format(path) == "amass":
        from mage.data.amass import load_amass

        return load_amass(path, settings.body_model, use_real_shape=settings.use_real_shape,
                          target_fps=settings.fps)
    motion = load_motion(path, rig=settings.rig, body_model=settings.body_model)
    if source_fps is not None:
        motion = dataclasses.replace(motion, fps=float(source_fps))
    if abs(motion.fps - settings.fps) > 1e-6:
        motion = motion.resample(settings.fps)
    return motion


def _file_stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def process_file(task: dict) -> dict:
    """Import one file and write its record; never raises. Returns a result dict:
    source, id, subject, status ("ok", "dropped", "skipped", "failed"), frames, rig,
    reason, seconds."""
    from mage.data.amass import NotAMotionFile
    from mage.data.dataset import write_record

    t0 = time.perf_counter()
    settings = BuildSettings(**task["settings"])
    result = {k: task[k] for k in ("source", "id", "subject", "licence", "source_fps")}
    result.update(status="ok", frames=0, rig="", reason="")
    try:
        motion = load_for_build(task["source"], settings, task["source_fps"])
        result["rig"] = str(motion.meta.get("rig", "unknown"))
        duration = motion.num_frames / motion.fps
        if duration < task["min_seconds"]:
            result.update(status="dropped",
                          reason=f"too short: {duration:.2f} s < {task['min_seconds']:g} s")
        else:
            result["frames"] = write_record(task["out_path"], motion, task["source"])
    except NotAMotionFile as err:
        result.update(status="skipped", reason=str(err))
    except Exception as err:  # noqa: BLE001 - any importer error becomes a reported failure
        result.update(status="failed", reason=f"{type(err).__name__}: {err}")
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)  # the pool is the parallelism; avoid oversubscribing cores


# --- the build --------------------------------------------------------------------------
def _read_cache(out: Path) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    path = out / CACHE_FILE
    if not path.is_file():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            e = json.loads(line)
            entries[e["id"]] = e
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by an interruption
    return entries


def _reusable(entry: dict | None, f: SourceFile, settings: BuildSettings, out: Path) -> bool:
    return (
        entry is not None
        and entry.get("source") == str(f.path)
        and entry.get("settings") == settings.key()
        and entry.get("stamp") == _file_stamp(f.path)
        and entry.get("source_fps") == f.source_fps
        and record_is_complete(out / record_file(f.id), entry.get("frames"))
    )


def _split_summary(ids: list[str], results: dict[str, dict], fps: float) -> dict:
    frames = sum(results[i]["frames"] for i in ids)
    return {
        "sequences": len(ids),
        "frames": frames,
        "minutes": round(frames / fps / 60, 2),
        "subjects": sorted({results[i]["subject"] for i in ids}),
    }


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
        if _reusable(entry, f, settings, out):
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
        "failures": _listing(results, "failed"),
    }


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
    fps: float = DEFAULT_FPS,
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
        protocol-1 lists or protocol-2 subsets, see :func:`amass_protocol_splits`): only
        these files under ``sources`` are imported and the split follows them, not subjects.
    """
    from mage.data.recipes import get_recipe

    t_start = time.perf_counter()
    rec = get_recipe(recipe) if isinstance(recipe, str) else recipe
    sources, recipe_files = _resolve_sources([Path(s) for s in sources], rec, Path(out))
    out = Path(out)
    if min_seconds is None:
        min_seconds = rec.min_seconds if rec is not None else DEFAULT_MIN_SECONDS
    workers = _worker_count(workers)
    settings = BuildSettings(
        fps=float(fps), rig=str(rig), use_real_shape=bool(use_real_shape),
        body_model=None if body_model is None else os.path.abspath(body_model),
    )
    files, test_sources = _select_files(sources, recipe_files, out, split_files, settings)
    test, split_rule, warnings = _test_subjects(files, test_subjects, rec)
    if test_sources is not None:
        test, split_rule = [], "explicit file lists (train / test)"

    # --- reuse, then import what is new or changed ----------------------------------
    (out / "sequences").mkdir(parents=True, exist_ok=True)
    results, tasks = _plan(files, {} if force else _read_cache(out), settings, out, min_seconds)
    n_reused = sum(r["status"] == "reused" for r in results.values())
    log(f"mage data build: {len(files)} files, {n_reused} up to date, {len(tasks)} to import "
        f"with {workers} worker(s) -> {out}")
    stamps = {f.id: _file_stamp(f.path) for f in files}
    _import_and_cache(tasks, results, out, settings, stamps, workers, progress, log)

    # --- splits, manifest, cache, report --------------------------------------------
    val = rec.val_subjects if rec is not None and test_sources is None else ()
    manifest = _manifest(results, test, settings.fps, rec.name if rec is not None else "custom",
                         test_sources, val)
    ok = {i: r for i, r in results.items() if i in manifest["sequences"]}
    write_manifest(out, manifest)
    _rewrite_cache(out, ok, settings, stamps)
    report = _build_report(
        manifest, results, ok, out=out, sources=sources, files=files, test=test,
        split_rule=split_rule, warnings=warnings,
        settings={**settings.key(), "min_seconds": min_seconds, "workers": workers})
    if rec is not None and rec.extras is not None:
        def positions_of(result: dict):
            return _positions_for_check(result, out, settings)

        report.update(rec.extras(list(results.values()), positions_of))
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    _write_report(out, report)
    for line in report_summary_lines(report):
        log(line)
    return report


def _worker_count(workers: int | None) -> int:
    """The worker processes: ``workers``, default min(2, cpu count); ValueError if < 1."""
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if workers < 1:
        raise ValueError(f"workers: must be >= 1, got {workers}")
    return workers


def _resolve_sources(sources: list[Path], rec, out: Path) -> tuple[list[Path], list[SourceFile] | None]:
    """(source paths, the recipe's files or None): with no sources, the recipe's own."""
    if sources:
        return sources, None
    if rec is None:
        raise ValueError("no SOURCE given: pass motion files or folders (or a --recipe)")
    if rec.sources:
        recipe_files, folders = discover_recipe(rec, exclude=out)
        return folders, recipe_files
    sources = [rec.resolve_source()]
    return sources, [dataclasses.replace(f, licence=rec.licence)
                     for f in discover(sources, exclude=out)]


def _select_files(sources: list[Path], recipe_files: list[SourceFile] | None, out: Path,
                  split_files, settings: BuildSettings) -> tuple[list[SourceFile], set[str] | None]:
    """The files to build and, with ``split_files``, the absolute paths of the test files."""
    files = recipe_files if recipe_files is not None else discover(sources, exclude=out)
    if not files:
        raise ValueError(
            f"no motion files ({', '.join(MOTION_EXTENSIONS)}) under {', '.join(map(str, sources))}"
        )
    test_sources = None
    if split_files is not None:
        files, test_sources = _apply_split_files(files, split_files, sources)
    if settings.body_model is None:
        _check_no_amass(files)
    return files, test_sources


def _import_and_cache(tasks: list[dict], results: dict[str, dict], out: Path,
                      settings: BuildSettings, stamps: dict[str, dict], workers: int,
                      progress: bool, log: Callable[[str], None]) -> None:
    """Run the import tasks, adding each result to ``results`` and appending every
    written record to the cache as it comes (so an interrupted build resumes)."""
    with open(out / CACHE_FILE, "a", encoding="utf-8") as cache_fh:
        def on_result(r: dict) -> None:
            results[r["id"]] = r
            if r["status"] == "ok":
                cache_fh.write(json.dumps(_cache_entry(r, settings, stamps[r["id"]])) + "\n")
                cache_fh.flush()
            elif r["status"] == "failed":
                _write_progress(f"failed: {r['source']}: {r['reason']}", progress, log)

        _run_tasks(tasks, workers, progress, on_result)


def _rewrite_cache(out: Path, ok: dict[str, dict], settings: BuildSettings,
                   stamps: dict[str, dict]) -> None:
    """Replace the cache by the entries of the records in the manifest."""
    with atomic_write(out / CACHE_FILE, "w") as fh:
        for i, r in sorted(ok.items()):
            fh.write(json.dumps(_cache_entry(r, settings, stamps[i])) + "\n")


def _build_report(manifest: dict, results: dict[str, dict], ok: dict[str, dict], *, out: Path,
                  sources: list[Path], files: list[SourceFile], test: list[str],
                  split_rule: str, warnings: list[str], settings: dict) -> dict:
    """The build report (``mage-build-report-v1``) without recipe extras and timing."""
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
        "files": len(files),
        "counts": {s: sum(r["status"] == s for r in results.values())
                   for s in ("ok", "reused", "dropped", "skipped", "failed")},
        "splits": {split: _split_summary(ids, ok, manifest["fps"])
                   for split, ids in manifest["splits"].items()},
        "licences": licence_summary(manifest),
        "dropped": _listing(results, "dropped"),
        "skipped": _listing(results, "skipped"),
        "failures": manifest["failures"],
        "warnings": warnings,
    }


def _apply_split_files(files: list[SourceFile], split_files, sources) -> tuple[list[SourceFile], set[str]]:
    """Keep the files named by ``split_files``; (kept files, absolute test paths)."""
    unknown = set(split_files) - {"train", "test"}
    if unknown:
        raise ValueError(f"split_files: unknown split(s) {sorted(unknown)}; use 'train' and 'test'")
    wanted = {os.path.abspath(p): split for split, paths in split_files.items() for p in paths}
    found = {os.path.abspath(f.path) for f in files}
    missing = sorted(p for p in wanted if p not in found)
    if missing:
        raise ValueError(f"split lists: {len(missing)} file(s) not found under "
                         f"{', '.join(map(str, sources))}, e.g. {missing[0]}")
    kept = [f for f in files if os.path.abspath(f.path) in wanted]
    return kept, {p for p, split in wanted.items() if split == "test"}


def amass_protocol_splits(amass_root: str | Path, protocol: int, train_lists=(), test_lists=()
                          ) -> dict[str, list[Path]]:
    """The files of an AMASS protocol, for ``build_dataset(split_files=...)``.

    protocol 1: the published random-split lists (AvatarPoser / AGRoL text files of
    relative npz paths, e.g. ``CMU/10/10_05_poses.npz``), given as ``train_lists`` and
    ``test_lists`` (one file per subset is usual); protocol 2: the cross-dataset subsets
    (mage.data.amass.PROTOCOL2_TRAIN / PROTOCOL2_TEST), no lists.
    """
    from mage.data.amass import read_split_list, resolve_protocol2, resolve_split_list

    if protocol == 2:
        if train_lists or test_lists:
            raise ValueError("protocol 2 uses whole subsets: give no split lists")
        return resolve_protocol2(amass_root)
    if protocol != 1:
        raise ValueError(f"protocol: expected 1 or 2, got {protocol!r}")
    if not train_lists or not test_lists:
        raise ValueError("protocol 1 needs the published split lists: --train-list and --test-list "
                         "(e.g. data_split/CMU/train_split.txt of AvatarPoser / AGRoL)")
    return {split: [p for lst in lists for p in resolve_split_list(read_split_list(lst), amass_root)]
            for split, lists in (("train", train_lists), ("test", test_lists))}


def _check_no_amass(files: list[SourceFile]) -> None:
    """Fail before importing anything if AMASS files are present without a body model."""
    from mage.data.io import detect_format

    for f in files:
        if f.path.suffix.lower() != ".npz" or f.path.name == "shape.npz":
            continue
        try:
            fmt = detect_format(f.path)
        except ValueError:
            continue  # unreadable: reported as a failure by the import
        if fmt == "amass":
            raise ValueError(
                f"{f.path}: AMASS files need the SMPL-H body model; pass --body-model "
                "(body_model=) with body_models/smplh/male/model.npz or its smplh/ folder"
            )


def _cache_entry(r: dict, settings: BuildSettings, stamp: dict) -> dict:
    return {"id": r["id"], "source": r["source"], "subject": r["subject"], "frames": r["frames"],
            "rig": r["rig"], "settings": settings.key(), "stamp": stamp,
            "source_fps": r.get("source_fps")}


def _listing(results: dict, status: str) -> list[dict]:
    return sorted(({"source": r["source"], "reason": r["reason"]}
                   for r in results.values() if r["status"] == status), key=lambda x: x["source"])


def _write_progress(msg: str, progress: bool, log: Callable[[str], None]) -> None:
    if progress:
        from tqdm import tqdm

        tqdm.write(msg)
    else:
        log(msg)


def _run_tasks(tasks: list[dict], workers: int, progress: bool, on_result: Callable[[dict], None]) -> None:
    """Run ``process_file`` over ``tasks`` (in this process if workers == 1), with a bar."""
    from tqdm import tqdm

    if not tasks:
        return
    bar = tqdm(total=len(tasks), unit="file", desc="importing", disable=not progress)
    try:
        if workers == 1 or len(tasks) == 1:
            for task in tasks:
                on_result(process_file(task))
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), initializer=_init_worker) as pool:
            futures = {pool.submit(process_file, t): t for t in tasks}
            try:
                for fut in as_completed(futures):
                    try:
                        r = fut.result()
                    except Exception as err:  # noqa: BLE001 - e.g. a worker killed by the OS
                        t = futures[fut]
                        r = {k: t[k] for k in ("source", "id", "subject")}
                        r.update(status="failed", frames=0, rig="", seconds=0.0,
                                 reason=f"worker crashed: {type(err).__name__}: {err}")
                    on_result(r)
                    bar.update()
            except BaseException:
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()


def _positions_for_check(result: dict, out: Path, settings: BuildSettings):
    """(T, 22, 3) world joints of a result at the dataset rate, frame 0 dropped: from its
    record, or imported again (dropped sequences have none). None if unavailable."""
    import numpy as np

    if result["status"] in ("ok", "reused"):
        with np.load(out / record_file(result["id"]), allow_pickle=False) as f:
            return f["positions"].astype(np.float64)
    if result["status"] == "dropped":
        motion = load_for_build(result["source"], settings)
        return motion.joint_positions()[1:].double().numpy()
    return None


# --- report -----------------------------------------------------------------------------
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


def _write_report(out: Path, report: dict) -> None:
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
