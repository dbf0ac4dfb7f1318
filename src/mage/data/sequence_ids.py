"""Sequence ids and subjects of the processed dataset: how a source file is named.

A file's id is its path inside its source folder, without the extension, each part
sanitised and joined by :data:`ID_SEPARATOR` (a recipe's files get their source folder's
name in front). Its subject (the split group) comes from CMU-style names or its folders
(:func:`subject_of`). Pure Python (no torch, no numpy), so that any layer can read ids.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

# Joins the parts of a sequence id: the source folder's name (a recipe's source, or the
# top folder of a plain build such as an AMASS sub-dataset), then the file's path parts.
ID_SEPARATOR = "__"

_CMU_STEM = re.compile(r"(\d+)_(\d+)(?:_poses)?")


def source_of(sequence_id: str) -> str:
    """The collection a sequence came from: the first part of its id (``ID_SEPARATOR``),
    e.g. "bandai_namco" for "bandai_namco__dataset-1__dataset-1_bow_active_001"; "" for
    an id of one part (a file at the top of a plain build's folder: one shared source).
    In a plain build the first part is the top folder under the source folder (for a
    folder of CMU subject folders, the subject); a file or folder name that itself holds
    ``ID_SEPARATOR`` is split there too."""
    head, sep, _ = sequence_id.partition(ID_SEPARATOR)
    return head if sep else ""


def sanitise_id_part(part: str) -> str:
    """One part of an id: runs of characters other than letters, digits, ``.``, ``_``
    and ``-`` become ``_``; never empty ("_")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", part).strip("_") or "_"


def sequence_id(rel: PurePosixPath) -> str:
    """The id of the file at ``rel`` inside its source: "walks/run 1.bvh" -> "walks__run_1"."""
    return ID_SEPARATOR.join(sanitise_id_part(x) for x in rel.with_suffix("").parts)


def prefixed_id(source_folder: str | Path, file_id: str) -> str:
    """``file_id`` with its source folder's name in front (a recipe's several sources)."""
    return f"{sanitise_id_part(Path(source_folder).name)}{ID_SEPARATOR}{file_id}"


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
    match = _CMU_STEM.fullmatch(rel.stem)
    if match:
        return normalise_subject(match.group(1))
    if rel.parent != PurePosixPath("."):
        return rel.parent.as_posix()
    return Path(os.path.abspath(path)).parent.name or rel.stem
