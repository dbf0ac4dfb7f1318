"""The build cache ``OUT/.build_cache.jsonl``: which records a rebuild can reuse.

One JSON line per written record: its id, source file, the file's size and mtime, the
build settings and the frames written. Lines are appended as records are written (so an
interrupted build resumes) and the whole file is rewritten at the end of a build. A
record is reused when its source file, settings and record file are unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

from mage.core.atomic import atomic_write
from mage.data.build_workers import BuildSettings
from mage.data.dataset import record_file, record_is_complete
from mage.data.discover import SourceFile

CACHE_FILE = ".build_cache.jsonl"


def file_stamp(path: Path) -> dict:
    """What tells a changed source file: {"size": bytes, "mtime_ns": ...}."""
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def read_cache(out: Path) -> dict[str, dict]:
    """The cache entries of the build in ``out`` by sequence id ({} if none); lines cut by
    an interruption are skipped."""
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


def is_reusable(entry: dict | None, f: SourceFile, settings: BuildSettings, out: Path) -> bool:
    """Whether the record of ``f`` in ``out`` matches its cache ``entry``: same source file
    (path, size, mtime), settings, true frame rate, and a complete record file."""
    return (
        entry is not None
        and entry.get("source") == str(f.path)
        and entry.get("settings") == settings.key()
        and entry.get("stamp") == file_stamp(f.path)
        and entry.get("source_fps") == f.source_fps
        and record_is_complete(out / record_file(f.id), entry.get("frames"))
    )


def cache_entry(result: dict, settings: BuildSettings, stamp: dict) -> dict:
    """The cache line of a written record (a ``process_file`` result)."""
    return {"id": result["id"], "source": result["source"], "subject": result["subject"],
            "frames": result["frames"], "rig": result["rig"], "settings": settings.key(), "stamp": stamp,
            "source_fps": result.get("source_fps")}


def rewrite_cache(out: Path, ok: dict[str, dict], settings: BuildSettings,
                  stamps: dict[str, dict]) -> None:
    """Replace the cache by the entries of the records in the manifest (``ok``: id -> result)."""
    with atomic_write(out / CACHE_FILE, "w") as fh:
        for i, r in sorted(ok.items()):
            fh.write(json.dumps(cache_entry(r, settings, stamps[i])) + "\n")
