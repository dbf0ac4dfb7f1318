"""Write a predicted Motion: the project's npz, AMASS npz, BVH, or per-frame JSON.

The npz, AMASS and BVH writers are those of :mod:`mage.data.io`; the formats and their
extensions are named in :mod:`mage.inference.options` (torch-free, for the command line).
The JSON format is this module's (written atomically)::

    {"format": "mage-pose-json-v1", "fps": 60.0, "num_frames": T,
     "joint_names": [22 names], "parents": [22 ints],
     "frames": [{"frame": 0, "time": 0.0,
                 "rotations": [[x, y, z, w] x 22],   # local, joint 0 = root in world
                 "positions": [[x, y, z] x 22],      # world joint positions, metres, z-up
                 "trans": [x, y, z]}, ...]}          # SMPL root translation

Each frame object has the same fields as the streaming server's ``pose`` message.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mage.core import rotations as rot
from mage.core.atomic import atomic_write
from mage.data.io import save_motion
from mage.inference.options import OUTPUT_FORMATS, OUTPUT_SUFFIXES

JSON_FORMAT = "mage-pose-json-v1"


def format_from_path(path: str | Path) -> str:
    """Default format of an output path: .npz -> npz, .bvh -> bvh, .json -> json."""
    ext = Path(path).suffix.lower()
    for fmt in ("npz", "bvh", "json"):
        if OUTPUT_SUFFIXES[fmt] == ext:
            return fmt
    raise ValueError(f"{path}: cannot tell the output format from {ext or '(no extension)'!r}; "
                     f"use .npz, .bvh or .json, or pass a format ({', '.join(OUTPUT_FORMATS)})")


def pose_record(frame: int, rotations_xyzw, positions, trans, fps: float, decimals: int = 6) -> dict:
    """One frame's JSON object: rotations (22, 4) local quaternions, positions (22, 3),
    trans (3,)."""
    return {
        "frame": int(frame),
        "time": round(frame / fps, 9),
        "rotations": np.round(np.asarray(rotations_xyzw, dtype=np.float64), decimals).tolist(),
        "positions": np.round(np.asarray(positions, dtype=np.float64), decimals).tolist(),
        "trans": np.round(np.asarray(trans, dtype=np.float64), decimals).tolist(),
    }


def motion_to_json(motion) -> dict:
    """The JSON document (schema in the module docstring) of a Motion."""
    q = rot.matrix_to_quaternion(motion.rotations.double()).numpy()
    p = motion.joint_positions().double().numpy()
    tr = motion.trans.double().numpy()
    return {
        "format": JSON_FORMAT,
        "fps": float(motion.fps),
        "num_frames": motion.num_frames,
        "joint_names": list(motion.skeleton.joint_names),
        "parents": list(motion.skeleton.parents),
        "frames": [pose_record(i, q[i], p[i], tr[i], motion.fps) for i in range(motion.num_frames)],
    }


def write_motion(motion, path: str | Path, format: str | None = None) -> Path:
    """Write ``motion`` to ``path`` as ``format`` (default: from the extension)."""
    path = Path(path)
    format = format or format_from_path(path)
    if format not in OUTPUT_FORMATS:
        raise ValueError(f"format: expected one of {', '.join(OUTPUT_FORMATS)}, got {format!r}")
    if path.suffix.lower() != OUTPUT_SUFFIXES[format]:
        raise ValueError(f"{path}: format {format!r} writes {OUTPUT_SUFFIXES[format]} files")
    if format == "json":
        doc = motion_to_json(motion)
        with atomic_write(path, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        return path
    save_motion(motion, path, format={"npz": "mage"}.get(format, format))
    return path
