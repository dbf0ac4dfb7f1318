"""Which files a dataset build imports: each with its id, subject, licence and true frame rate.

:func:`discover` finds the motion files under plain sources, :func:`discover_recipe` under
a recipe's default sources; :func:`select_files` applies explicit split lists (the
AMASS protocols: :func:`amass_protocol_splits`). Ids and subjects follow
``mage.data.sequence_ids``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path, PurePosixPath
from typing import Iterable, Mapping

from mage.data.amass import read_split_list, resolve_protocol2, resolve_split_list
from mage.data.io import SUPPORTED_EXTENSIONS, detect_format
from mage.data.recipes import licence_of
from mage.data.sequence_ids import normalise_subject, prefixed_id, sequence_id, subject_of


@dataclasses.dataclass(frozen=True)
class SourceFile:
    """A motion file to import: ``path`` as found, ``rel`` its path inside the source."""

    path: Path
    rel: PurePosixPath
    id: str
    subject: str
    licence: str = ""
    source_fps: float | None = None  # the true frame rate where the header is wrong


def discover(sources: Iterable[str | Path], exclude: Path | None = None) -> list[SourceFile]:
    """Motion files of ``sources`` (files, or folders searched recursively), sorted.

    Hidden files and anything under ``exclude`` (the output folder) are left out. Ids
    are unique: a clash (``a.bvh`` beside ``a.npz``) gets the extension appended.
    Raises FileNotFoundError for a missing source, ValueError for a file of another type
    or two files with the same id.
    """
    found: list[tuple[Path, PurePosixPath]] = []
    excluded = Path(os.path.abspath(exclude)) if exclude is not None else None
    for source in sources:
        source = Path(source)
        if source.is_file():
            if source.suffix.lower() not in SUPPORTED_EXTENSIONS:
                raise ValueError(
                    f"{source}: unsupported file type {source.suffix!r}; supported: "
                    + ", ".join(SUPPORTED_EXTENSIONS)
                )
            found.append((source, PurePosixPath(source.name)))
        elif source.is_dir():
            for path in sorted(source.rglob("*")):
                rel = path.relative_to(source)
                if (path.suffix.lower() not in SUPPORTED_EXTENSIONS or not path.is_file()
                        or any(part.startswith(".") for part in rel.parts)):
                    continue
                if excluded is not None and Path(os.path.abspath(path)).is_relative_to(excluded):
                    continue
                found.append((path, PurePosixPath(rel.as_posix())))
        else:
            raise FileNotFoundError(f"{source}: source not found (expected a motion file or a folder)")
    by_id: dict[str, list[int]] = {}
    names = []
    for i, (_, rel) in enumerate(found):
        name = sequence_id(rel)
        names.append(name)
        by_id.setdefault(name, []).append(i)
    for name, clashing in by_id.items():
        if len(clashing) > 1:
            for i in clashing:
                names[i] = f"{name}_{found[i][0].suffix.lower().lstrip('.')}"
    seen: dict[str, Path] = {}
    files = []
    for (path, rel), name in zip(found, names):
        if name in seen:
            if os.path.samefile(seen[name], path):
                continue  # the same file reached twice
            raise ValueError(f"two source files map to the sequence id {name!r}: {seen[name]} and {path}")
        seen[name] = path
        files.append(SourceFile(path, rel, name, subject_of(path, rel)))
    return files


def discover_recipe(rec, exclude: Path | None = None) -> tuple[list[SourceFile], list[Path]]:
    """The files of a recipe's default sources, each with its split group (subject),
    licence and true frame rate; and the source folders. Ids are made unique across the
    sources by prefixing the source folder's name."""
    files: list[SourceFile] = []
    folders = []
    for spec, folder in rec.resolve_sources():
        folders.append(folder)
        for f in discover([folder], exclude=exclude):
            group = spec.group(f.rel) if spec.group is not None else None
            fps = spec.source_fps(f.rel) if spec.source_fps is not None else None
            files.append(dataclasses.replace(
                f, id=prefixed_id(spec.folder, f.id), subject=normalise_subject(group or f.subject),
                licence=licence_of(spec, f.rel), source_fps=fps))
    return files, folders


def resolve_sources(sources: list[Path], rec, out: Path) -> tuple[list[Path], list[SourceFile] | None]:
    """(source paths, the recipe's files or None): with no sources, the recipe's own.
    Raises ValueError when there are neither sources nor a recipe."""
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


def select_files(sources: list[Path], recipe_files: list[SourceFile] | None, out: Path,
                 split_files: Mapping[str, Iterable[str | Path]] | None
                 ) -> tuple[list[SourceFile], set[str] | None]:
    """The files to build and, with ``split_files``, the absolute paths of the test files.
    Raises ValueError when no motion file is found."""
    files = recipe_files if recipe_files is not None else discover(sources, exclude=out)
    if not files:
        raise ValueError(
            f"no motion files ({', '.join(SUPPORTED_EXTENSIONS)}) under {', '.join(map(str, sources))}"
        )
    test_sources = None
    if split_files is not None:
        files, test_sources = apply_split_files(files, split_files, sources)
    return files, test_sources


def apply_split_files(files: list[SourceFile], split_files, sources) -> tuple[list[SourceFile], set[str]]:
    """Keep the files named by ``split_files`` ({"train": paths, "test": paths}); returns
    (kept files, absolute test paths). ValueError for another split or a file not found."""
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


def check_no_amass(files: list[SourceFile]) -> None:
    """Fail before importing anything if AMASS files are present without a body model
    (ValueError naming the first)."""
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
