"""Named dataset builds (``mage data build --recipe NAME``).

``cmu-mini``: every motion of the shared CMU data (``../shared/data/mocap``): ASF/AMC
subjects 01, 02, 03 (120 fps) and Character Creator BVH subjects 002, 003, 005, 006, 007
(60 fps). Subjects are normalised ("002" -> "02"), so both formats of a subject fall on
the same side. Test subjects: 03 (walking on uneven terrain, ASF/AMC + BVH), 06
(basketball dribbling) and 07 (walking), about 19 % of the frames (11,900 of 61,500 at
60 fps); train: 01 (playground), 02 (walk, run, jump, punch, swordplay, wash; both
formats) and 05 (dance). The report adds the cross-format check: subjects 02 and 03 have
the same trials in both formats (``02_TT.amc`` and ``002_TT.bvh``, same descriptions and
lengths in ``cmu_index.csv``); their head and wrist trajectories are compared after
aligning the start position and heading.

``permissive``: cmu-mini plus the permissive part of ``mocap_more`` (``cmu_hdm05``: CMU
subjects 08-49 on three rigs, the salsa / Indian-dance / martial-arts sets, HDM05 "cut"
clips), about 0.8 h. Licences: CMU (free for research and commercial use, no resale of
the data) and HDM05 (CC BY-SA 3.0). Weights trained on it may be used commercially.

``full``: ``permissive`` plus the Bandai Namco Research Motion dataset (about 3.3 h,
**CC BY-NC 4.0**: weights trained on it are non-commercial).

``bandai``: the Bandai Namco part of ``full`` alone, with the same held-out styles: the
other side of the cross-source test (train on Bandai, test on the permissive sources'
held-out clips, and the reverse; ``research/paper_experiments``, ``--cross``).

Held-out (test) groups, fixed and chosen so that no performance leaks across the split:
- CMU by subject: 03, 06, 07 (as in cmu-mini; the new CMU subjects are all in train).
- Dance sets by take: salsa takes k and k + 15 are the two partners of one take and
  form one group ("salsa_take_k"); test takes 1 and 2 (salsa_01, 02, 16, 17); Indian
  dance clip 15 and martial-arts clip 10 (each clip is one take).
- HDM05 by actor: actor "tr" is test (bd, bk, dg, mm train).
- Bandai Namco by style: dataset-2 style "youthful" (walk, walk-turn, run, raise hands)
  and dataset-1 style "happy" are test. The actor of a file is not published, so the
  same actors appear on both sides; content and style do not.

Validation (val) groups, held out of train as well, for choosing settings (e.g. the online
consistency weight, ``benchmarks/bundled_models``) without looking at test: CMU
subjects 08 (walking) and 09 (running); salsa take 3; Indian dance 04; martial arts 03;
HDM05 actor bd; Bandai style "active" of both datasets. ``mage train`` trains on "train"
only unless ``train_splits`` names more (a final model may be refit on train + val once
its settings are chosen). cmu-mini has no val split.

Frame rates: every source is resampled to 60 Hz (30 fps Bandai interpolated: slerp and
linear, :meth:`mage.core.Motion.resample`). The salsa BVH headers say 120 fps but CMU
captured salsa at 60 fps (mocap_more README): they are read at 60 fps.

Where the sources are: ``../shared/data/mocap`` (relative to the working directory or to
the repository, as for cmu-mini; else ``mocap/`` in the data cache), and the extracted
``mocap_more`` archives under the data cache ``$MAGE_DATA_CACHE`` (default
``~/.cache/mage-data``): ``cmu_hdm05/`` and ``bandai_namco/``. None of them ships with the
package (``mage.data.samples`` are a few seconds for trying the tools): a missing source is
a one-line error naming where it was looked for, the data it needs, where to get it, the
layout expected and where to put it (``SOURCE_GUIDES``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np

from mage.core.constants import TRACKED_JOINTS

_PELVIS, _LEFT_HIP, _RIGHT_HIP = 0, 1, 2
_TRIAL = re.compile(r"(\d+)_(\d+)")

DEFAULT_MIN_SECONDS = 2.0  # shorter sequences are dropped (a recipe's default, and a plain build's)
DATA_CACHE_ENV = "MAGE_DATA_CACHE"
DEFAULT_DATA_CACHE = "~/.cache/mage-data"

LICENCE_CMU = "CMU (free for research and commercial use; no resale of the data)"
LICENCE_HDM05 = "CC BY-SA 3.0 (HDM05)"
LICENCE_BANDAI = "CC BY-NC 4.0 (Bandai Namco Research Motion; non-commercial)"
NON_COMMERCIAL_LICENCES = (LICENCE_BANDAI,)


def data_cache() -> Path:
    """The folder holding extracted data archives: $MAGE_DATA_CACHE or ~/.cache/mage-data."""
    return Path(os.path.expanduser(os.environ.get(DATA_CACHE_ENV) or DEFAULT_DATA_CACHE))


# What each default source folder holds, where to get it and the layout the build
# expects, by folder name: the missing-source error says it (no install ships this data).
SOURCE_GUIDES = {
    "mocap": "the CMU Graphics Lab Motion Capture Database (free from mocap.cs.cmu.edu) laid out as "
             "cmu_asfamc/NN/NN.asf + NN_TT.amc (subjects 01-03) and, optionally, cmu_cc3_bvh/NNN/NNN_TT.bvh "
             "(subjects 002-007 retargeted to a Character Creator rig)",
    "cmu_hdm05": "CMU subjects 08-49 (mocap.cs.cmu.edu, as BVH conversions and ASF/AMC) and HDM05 'cut' clips "
                 "(resources.mpi-inf.mpg.de/HDM05, CC BY-SA 3.0) laid out as cmu_mb_bvh/, cmu_daz_bvh/, "
                 "cmu_daz_bvh_acrnn/, cmu_asfamc/ and hdm05_cut_asfamc/ (as in the archive cmu_hdm05.tar.xz, "
                 "whose INDEX.csv names each file's public source)",
    "bandai_namco": "the Bandai Namco Research Motion dataset (CC BY-NC 4.0; arXiv:2306.08861, on GitHub as "
                    "BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset) laid out as dataset-1/ and "
                    "dataset-2/ of BVH files",
}


def _find_folder(name: str, where: str, recipe: str, single: bool = False) -> Path:
    """``where`` = "shared": relative to the working directory, then to the repository,
    then under :func:`data_cache`; "cache": under :func:`data_cache` only.
    FileNotFoundError, one line: the places looked in, the data needed
    (SOURCE_GUIDES), and how to point at it (``--source DIR`` when ``single``: the
    recipe's only source)."""
    folder = Path(name).name
    cache = data_cache() / folder
    tried = [cache] if where == "cache" else [Path(name), Path(__file__).resolve().parents[3] / name, cache]
    for cand in tried:
        if cand.is_dir():
            return Path(os.path.normpath(cand))
    looked = dict.fromkeys(os.path.abspath(t) for t in tried)  # from the repository root, two are one
    needs = SOURCE_GUIDES.get(folder, "motion files")
    where_to = (f"put that folder at ${DATA_CACHE_ENV}/{folder} (${DATA_CACHE_ENV} defaults to "
                f"{DEFAULT_DATA_CACHE})" + (" or pass it with --source DIR" if single else ""))
    raise FileNotFoundError(
        f"recipe {recipe!r}: source folder {folder} not found (looked in {', '.join(looked)}); "
        f"it needs a folder with {needs}; {where_to}")


@dataclass(frozen=True)
class SourceSpec:
    """One default source folder of a recipe.

    ``folder``: its name, found by ``where`` ("shared": working directory, repository,
    then the data cache; "cache": the data cache). ``licence``: of every file under it. ``group(rel)``: the
    split group (subject) of a file from its path inside the folder; None = the build's
    usual rule (:func:`mage.data.sequence_ids.subject_of`). ``source_fps(rel)``: the true frame
    rate where a file's header is wrong, else None.
    """

    folder: str
    where: str
    licence: str
    group: Callable[[PurePosixPath], str | None] | None = None
    source_fps: Callable[[PurePosixPath], float | None] | None = None


# --- split groups of the mocap_more sets -------------------------------------------------
_SALSA_PAIR_OFFSET = 15  # salsa_k and salsa_(k+15) are the two dancers of one take
_NUMBERED = re.compile(r"([a-z]+)_(\d+)")
_HDM05_ACTOR = re.compile(r"HDM_([a-z]+)_")
_BANDAI = re.compile(r"(dataset-\d)_.+?_([a-z-]+)_\d+")


def cmu_hdm05_group(rel: PurePosixPath) -> str | None:
    """Split group of a file of ``cmu_hdm05``: CMU subject number (None: the usual rule),
    "salsa_take_k" (partners together), "indian_NN" / "martial_NN", "hdm05_ACTOR"."""
    m = _NUMBERED.fullmatch(rel.stem)
    if m and m.group(1) in ("salsa", "indian", "martial"):
        k = int(m.group(2))
        if m.group(1) == "salsa":
            return f"salsa_take_{(k - 1) % _SALSA_PAIR_OFFSET + 1:02d}"
        return f"{m.group(1)}_{k:02d}"
    m = _HDM05_ACTOR.match(rel.name)
    if m:
        return f"hdm05_{m.group(1)}"
    return None


def cmu_hdm05_fps(rel: PurePosixPath) -> float | None:
    """Salsa is 60 fps although its BVH header says 120 (mocap_more README)."""
    return 60.0 if rel.stem.startswith("salsa_") else None


def bandai_group(rel: PurePosixPath) -> str:
    """"bandai_<dataset>_<style>" of a Bandai Namco file (name: dataset-N_CONTENT_STYLE_NNN)."""
    m = _BANDAI.fullmatch(rel.stem)
    if not m:
        return "bandai_other"
    return f"bandai_{m.group(1)}_{m.group(2)}"


_SHARED_CMU = SourceSpec("../shared/data/mocap", "shared", LICENCE_CMU)


PERMISSIVE_SOURCES = (_SHARED_CMU, SourceSpec("cmu_hdm05", "cache", LICENCE_CMU, cmu_hdm05_group,
                                              cmu_hdm05_fps))
BANDAI_SOURCES = (SourceSpec("bandai_namco", "cache", LICENCE_BANDAI, bandai_group),)
FULL_SOURCES = PERMISSIVE_SOURCES + BANDAI_SOURCES
PERMISSIVE_TEST_GROUPS = ("03", "06", "07", "salsa_take_01", "salsa_take_02", "indian_15", "martial_10",
                          "hdm05_tr")
BANDAI_TEST_GROUPS = ("bandai_dataset-2_youthful", "bandai_dataset-1_happy")
FULL_TEST_GROUPS = PERMISSIVE_TEST_GROUPS + BANDAI_TEST_GROUPS
# Validation groups mirror the test groups' kinds (an unseen CMU walker and runner, salsa
# couple, dance and martial-arts take, HDM05 actor, and one Bandai style of each dataset),
# so that a setting chosen on val meets motion as unseen as the test split's.
PERMISSIVE_VAL_GROUPS = ("08", "09", "salsa_take_03", "indian_04", "martial_03", "hdm05_bd")
BANDAI_VAL_GROUPS = ("bandai_dataset-2_active", "bandai_dataset-1_active")
FULL_VAL_GROUPS = PERMISSIVE_VAL_GROUPS + BANDAI_VAL_GROUPS


def licence_of(spec: SourceSpec, rel: PurePosixPath) -> str:
    """The licence of one file: HDM05 files of the cmu_hdm05 archive are CC BY-SA 3.0."""
    if rel.parts and rel.parts[0].startswith("hdm05"):
        return LICENCE_HDM05
    return spec.licence


@dataclass(frozen=True)
class Recipe:
    """A named build: default source(s) (relative to the working directory or to the
    repository, or in the data cache), test and validation subjects (split groups),
    minimum length, and extra report figures."""

    name: str
    description: str
    default_source: str | None = None
    # several default sources with licences and split groups (then default_source is None)
    sources: tuple[SourceSpec, ...] = ()
    licence: str = ""  # of default_source's files

    test_subjects: tuple[str, ...] | None = None
    # held out of train for choosing settings (split "val"); () = no val split
    val_subjects: tuple[str, ...] = ()
    min_seconds: float = DEFAULT_MIN_SECONDS
    # extras(results, positions_of) -> dict merged into the build report
    extras: Callable[[list[dict], Callable], dict] | None = None

    def resolve_sources(self) -> list[tuple[SourceSpec, Path]]:
        """Each of ``sources`` with its folder (FileNotFoundError if one is missing)."""
        return [(spec, _find_folder(spec.folder, spec.where, self.name)) for spec in self.sources]

    def resolve_source(self) -> Path:
        """The default source folder: tried relative to the working directory, then to
        the repository root, then in the data cache; FileNotFoundError (what the data is,
        where to put it or ``--source DIR``) if none exists."""
        if self.default_source is None:
            raise ValueError(f"recipe {self.name!r} has no default source: pass SOURCE")
        return _find_folder(self.default_source, "shared", self.name, single=True)


# --- cross-format agreement ---------------------------------------------------------------
def _heading(positions: np.ndarray) -> float:
    """Yaw (radians, about world z) of the body at one frame, from the hip line:
    forward = (left_hip - right_hip) x z."""
    left = positions[_LEFT_HIP] - positions[_RIGHT_HIP]
    fwd = np.cross(left, [0.0, 0.0, 1.0])
    return float(np.arctan2(fwd[1], fwd[0]))


def align_start(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """``other`` (T, J, 3) turned about z and shifted horizontally so that at frame 0 its
    pelvis lies above/below the reference's and it faces the same way. Heights stay."""
    angle = _heading(reference[0]) - _heading(other[0])
    c, s = np.cos(angle), np.sin(angle)
    Rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    pivot = other[0, _PELVIS] * np.array([1.0, 1.0, 0.0])
    turned = (other - pivot) @ Rz.T + pivot
    shift = (reference[0, _PELVIS] - turned[0, _PELVIS]) * np.array([1.0, 1.0, 0.0])
    return turned + shift


def body_relative(positions: np.ndarray) -> np.ndarray:
    """(T, J, 3) joints relative to the pelvis, each frame turned to heading 0: the pose
    without the root trajectory."""
    yaw = np.array([_heading(f) for f in positions])
    c, s = np.cos(-yaw), np.sin(-yaw)
    Rz = np.zeros((len(yaw), 3, 3))
    Rz[:, 0, 0], Rz[:, 0, 1], Rz[:, 1, 0], Rz[:, 1, 1], Rz[:, 2, 2] = c, -s, s, c, 1.0
    rel = positions - positions[:, _PELVIS:_PELVIS + 1]
    return np.einsum("tij,tkj->tki", Rz, rel)


def _path_length(positions: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(positions[:, _PELVIS, :2], axis=0), axis=-1).sum())


def compare_trajectories(a: np.ndarray, b: np.ndarray, max_lag: int = 6) -> dict:
    """Head and wrist distance between two recordings of the same trial.

    a, b: (T, 22, 3) world joints at the same frame rate. For each lag in
    [-max_lag, max_lag] frames (b's frame k against a's frame k + lag) the body-relative
    tracked joints are compared; the lag with the smallest mean distance is kept and that
    overlap is aligned by :func:`align_start`. Returns frames, lag, head / wrists mean and max distance in cm (world,
    start-aligned), the same means body-relative (:func:`body_relative`: pose only), and
    path_ratio = b's / a's horizontal pelvis path length (root trajectory scale).
    """
    idx = list(TRACKED_JOINTS)
    rel_a, rel_b = body_relative(a)[:, idx], body_relative(b)[:, idx]
    best = None
    for lag in range(-max_lag, max_lag + 1):  # chosen on the pose, not on the trajectory
        n = min(len(a) - max(0, lag), len(b) - max(0, -lag))
        if n < 2:
            continue
        local = np.linalg.norm(rel_a[max(0, lag):][:n] - rel_b[max(0, -lag):][:n], axis=-1) * 100.0
        if best is None or local.mean() < best[2].mean():
            best = (lag, n, local)
    if best is None:
        raise ValueError("compare_trajectories: need at least 2 overlapping frames")
    lag, n, local = best
    aa = a[max(0, lag):][:n]
    bb = align_start(aa, b[max(0, -lag):][:n])
    d = np.linalg.norm(aa[:, idx] - bb[:, idx], axis=-1) * 100.0  # (n, 3) cm
    path_a = _path_length(aa)
    return {
        "frames": int(d.shape[0]), "lag": lag,
        "head_mean_cm": float(d[:, 0].mean()), "head_max_cm": float(d[:, 0].max()),
        "wrists_mean_cm": float(d[:, 1:].mean()), "wrists_max_cm": float(d[:, 1:].max()),
        "local_head_mean_cm": float(local[:, 0].mean()),
        "local_wrists_mean_cm": float(local[:, 1:].mean()),
        "path_ratio": _path_length(bb) / path_a if path_a > 1e-6 else float("nan"),
    }


def cmu_format_pairs(results: list[dict]) -> list[tuple[dict, dict]]:
    """(ASF/AMC, BVH) results of the same CMU trial: ``SS_TT.amc`` with ``SSS_TT.bvh``
    when the subject and trial numbers agree."""
    by_key: dict[tuple[int, int], dict[str, dict]] = {}
    for r in results:
        p = Path(r["source"])
        m = _TRIAL.fullmatch(p.stem)
        if m and p.suffix.lower() in (".amc", ".bvh"):
            by_key.setdefault((int(m[1]), int(m[2])), {})[p.suffix.lower()] = r
    return [(v[".amc"], v[".bvh"]) for k, v in sorted(by_key.items()) if len(v) == 2]


def cross_format_report(results: list[dict], positions_of: Callable[[dict], np.ndarray | None]) -> dict:
    """The ``cross_format`` block of the build report (see :func:`compare_trajectories`)."""
    pairs, notes = [], []
    for ra, rb in cmu_format_pairs(results):
        try:
            pa, pb = positions_of(ra), positions_of(rb)
        except Exception as err:  # noqa: BLE001 - a check, not the build: note and go on
            notes.append(f"{ra['source']} / {rb['source']}: not compared ({err})")
            continue
        if pa is None or pb is None:
            notes.append(f"{ra['source']} / {rb['source']}: not compared (an import failed)")
            continue
        pairs.append({"a": Path(ra["source"]).name, "b": Path(rb["source"]).name,
                      **compare_trajectories(pa, pb)})
    out = {
        "description": (
            "Trials present in both formats (ASF/AMC SS_TT.amc vs CC BVH SSS_TT.bvh) at 60 fps: "
            "the BVH trajectory is turned about z and shifted horizontally so that its pelvis "
            "position and hip heading match the ASF/AMC one at the first frame (lag within +-6 "
            "frames chosen on the body-relative pose); distances of the head and both wrists, cm "
            "(means weighted by frames). "
            "Body-relative: the same distances with each frame's joints taken relative to the "
            "pelvis and turned to heading 0 (pose agreement without the root trajectory). "
            "Path ratio: BVH / ASF-AMC horizontal pelvis path length."
        ),
        "num_pairs": len(pairs), "pairs": pairs, "notes": notes,
    }
    if pairs:
        w = np.array([p["frames"] for p in pairs], dtype=np.float64)
        out.update(
            frames=int(w.sum()),
            head_mean_cm=float(np.average([p["head_mean_cm"] for p in pairs], weights=w)),
            head_max_cm=max(p["head_max_cm"] for p in pairs),
            wrists_mean_cm=float(np.average([p["wrists_mean_cm"] for p in pairs], weights=w)),
            wrists_max_cm=max(p["wrists_max_cm"] for p in pairs),
            local_head_mean_cm=float(np.average([p["local_head_mean_cm"] for p in pairs], weights=w)),
            local_wrists_mean_cm=float(np.average([p["local_wrists_mean_cm"] for p in pairs], weights=w)),
        )
    return {"cross_format": out}


RECIPES: dict[str, Recipe] = {
    "cmu-mini": Recipe(
        name="cmu-mini",
        description="all of ../shared/data/mocap (CMU ASF/AMC 01-03, CC BVH 002-007); "
                    "test subjects 03, 06, 07",
        default_source="../shared/data/mocap",
        licence=LICENCE_CMU,
        test_subjects=("03", "06", "07"),
        min_seconds=2.0,
        extras=cross_format_report,
    ),
    "permissive": Recipe(
        name="permissive",
        description="cmu-mini + mocap_more/cmu_hdm05 (CMU, HDM05; commercial use allowed); "
                    "test: CMU 03/06/07, salsa takes 1-2, indian_15, martial_10, HDM05 actor tr",
        sources=PERMISSIVE_SOURCES,
        test_subjects=PERMISSIVE_TEST_GROUPS,
        val_subjects=PERMISSIVE_VAL_GROUPS,
        min_seconds=1.0,
    ),
    "full": Recipe(
        name="full",
        description="permissive + mocap_more/bandai_namco (CC BY-NC 4.0: non-commercial); "
                    "test adds Bandai dataset-2 style youthful and dataset-1 style happy",
        sources=FULL_SOURCES,
        test_subjects=FULL_TEST_GROUPS,
        val_subjects=FULL_VAL_GROUPS,
        min_seconds=1.0,
    ),
    "bandai": Recipe(
        name="bandai",
        description="mocap_more/bandai_namco alone (CC BY-NC 4.0: non-commercial), for cross-source "
                    "tests; test: dataset-2 style youthful and dataset-1 style happy",
        sources=BANDAI_SOURCES,
        test_subjects=BANDAI_TEST_GROUPS,
        val_subjects=BANDAI_VAL_GROUPS,
        min_seconds=1.0,
    ),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}") from None
