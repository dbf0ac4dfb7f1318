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
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

TRACKED = {"head": 15, "left_wrist": 20, "right_wrist": 21}
_PELVIS, _LEFT_HIP, _RIGHT_HIP = 0, 1, 2
_TRIAL = re.compile(r"(\d+)_(\d+)")


@dataclass(frozen=True)
class Recipe:
    """A named build: default source (relative to the working directory or to the
    repository), test subjects, minimum length, and extra report figures."""

    name: str
    description: str
    default_source: str | None = None
    test_subjects: tuple[str, ...] | None = None
    min_seconds: float = 2.0
    # extras(results, positions_of) -> dict merged into the build report
    extras: Callable[[list[dict], Callable], dict] | None = None

    def resolve_source(self) -> Path:
        """The default source folder: tried relative to the working directory, then to
        the repository root; FileNotFoundError naming both if neither exists."""
        if self.default_source is None:
            raise ValueError(f"recipe {self.name!r} has no default source: pass SOURCE")
        repo = Path(__file__).resolve().parents[3]
        tried = [Path(self.default_source), repo / self.default_source]
        for cand in tried:
            if cand.is_dir():
                return Path(os.path.normpath(cand))
        raise FileNotFoundError(
            f"recipe {self.name!r}: source folder not found (looked in "
            + ", ".join(str(Path(os.path.abspath(t))) for t in tried) + "); pass it with --source"
        )


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
    idx = list(TRACKED.values())
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
            "frames chosen on the body-relative pose); distances of the head and both wrists, cm (means weighted by frames). "
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
        test_subjects=("03", "06", "07"),
        min_seconds=2.0,
        extras=cross_format_report,
    ),
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; recipes: {', '.join(RECIPES)}") from None
