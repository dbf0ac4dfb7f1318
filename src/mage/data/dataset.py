"""The processed dataset on disk (format ``mage-dataset-v1``) and its reader.

Layout (written by ``mage data build``, read by training and evaluation)::

    root/manifest.json
        {"format": "mage-dataset-v1", "fps": 60, "recipe": str, "created": iso time,
         "splits": {"train": [ids], "val": [ids] (recipes with validation groups), "test": [ids]},
         "sequences": {id: {"source": str, "subject": str, "frames": int,
                            "file": "sequences/<id>.npz", "rig": str}},
         "failures": [{"source": str, "reason": str}]}
    root/sequences/<id>.npz, T = source frames - 1 rows (frame 0 is dropped after the
    velocities are computed, as in the protocol); ``frames`` in the manifest is T:
        rot6d           float32 (T, 22, 6)   local rotations, 6D (first two columns)
        condition       float32 (T, 54)      Tracking.from_motion(m).condition()
        positions       float32 (T, 22, 3)   world joint positions, metres
        head_transform  float32 (T, 4, 4)    head-to-world
        trans           float32 (T, 3)       SMPL translation
        fps             float64 scalar
        skeleton        str, JSON of Skeleton.to_dict()
        source          str
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mage.core import rotations as rot
from mage.core.atomic import atomic_save_npz, atomic_write
from mage.core.constants import CONDITION_DIM, NUM_JOINTS, ROT6D_DIM
from mage.core.motion import Motion
from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS, Skeleton
from mage.core.tracking import Tracking

FORMAT = "mage-dataset-v1"
MANIFEST = "manifest.json"
# field -> trailing shape after T (None: a scalar / string field without a T axis)
RECORD_FIELDS: dict[str, tuple | None] = {
    "rot6d": (NUM_JOINTS, ROT6D_DIM),
    "condition": (CONDITION_DIM,),
    "positions": (NUM_JOINTS, 3),
    "head_transform": (4, 4),
    "trans": (3,),
    "fps": None,
    "skeleton": None,
    "source": None,
}


def record_file(id: str) -> str:
    """Path of a record relative to the dataset root."""
    return f"sequences/{id}.npz"


# --- writing --------------------------------------------------------------------------
def motion_to_record(motion, source: str) -> dict[str, np.ndarray]:
    """The arrays of one record (see module docstring) from a Motion of T0 >= 2 frames.

    Everything is computed at full precision from ``motion``, then frame 0 is dropped
    and the arrays are stored as float32: T = T0 - 1.
    """
    sk = motion.skeleton
    if sk.joint_names != SMPL22_JOINT_NAMES or sk.parents != SMPL22_PARENTS:
        raise ValueError(
            f"{source}: the dataset stores SMPL 22-joint motions, got a skeleton of "
            f"{sk.num_joints} joints ({', '.join(sk.joint_names[:3])}, ...)"
        )
    if motion.num_frames < 2:
        raise ValueError(f"{source}: need at least 2 frames, got {motion.num_frames}")
    tracking = Tracking.from_motion(motion)

    def f32(x):
        return x.detach().cpu().numpy().astype(np.float32)

    return {
        "rot6d": f32(motion.rot6d()[1:]),
        "condition": f32(tracking.condition()),
        "positions": f32(motion.joint_positions()[1:]),
        "head_transform": f32(tracking.head_transform()[1:]),
        "trans": f32(motion.trans[1:]),
        "fps": np.array(float(motion.fps), dtype=np.float64),
        "skeleton": np.array(json.dumps(sk.to_dict())),
        "source": np.array(str(source)),
    }


def write_record(path: str | Path, motion, source: str) -> int:
    """Write one record atomically; returns its number of rows T."""
    arrays = motion_to_record(motion, source)
    atomic_save_npz(path, **arrays)
    return int(arrays["trans"].shape[0])


def record_is_complete(path: str | Path, frames: int | None = None) -> bool:
    """True if ``path`` is a readable record with every field (and ``frames`` rows).

    Records are written atomically, so this guards against other damage (a file cut by
    a copy, a record of an older layout) without reading every array."""
    try:
        with zipfile.ZipFile(path) as z:
            names = {n[:-4] for n in z.namelist() if n.endswith(".npy")}
            if not set(RECORD_FIELDS) <= names:
                return False
        if frames is not None:
            with np.load(path, allow_pickle=False) as f:
                return f["trans"].shape == (frames, 3)
        return True
    except (OSError, zipfile.BadZipFile, ValueError, EOFError):
        return False


def write_manifest(root: str | Path, manifest: dict) -> None:
    """Write ``root/manifest.json`` atomically."""
    with atomic_write(Path(root) / MANIFEST, "w") as fh:
        json.dump(manifest, fh, indent=1, sort_keys=False)
        fh.write("\n")


def read_manifest(root: str | Path) -> dict:
    """``root/manifest.json``, checked for the format and its top-level fields."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no dataset manifest; build one with `mage data build SOURCE -o {root}`"
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise ValueError(f"{path}: field 'format' is {got!r}, expected {FORMAT!r}")
    for key, typ in (("fps", (int, float)), ("splits", dict), ("sequences", dict)):
        if not isinstance(manifest.get(key), typ):
            raise ValueError(f"{path}: field {key!r} is missing or of the wrong type")
    return manifest


# --- reading --------------------------------------------------------------------------
@dataclass
class SequenceRecord:
    """One processed sequence as torch tensors, T rows (frame 0 of the source dropped).

    rot6d (T, 22, 6), condition (T, 54), positions (T, 22, 3), head_transform (T, 4, 4),
    trans (T, 3), all float32; fps; skeleton (Skeleton); id, source, subject (str).
    """

    id: str
    source: str
    subject: str
    rot6d: torch.Tensor
    condition: torch.Tensor
    positions: torch.Tensor
    head_transform: torch.Tensor
    trans: torch.Tensor
    fps: float
    skeleton: Skeleton

    @property
    def num_frames(self) -> int:
        return int(self.trans.shape[0])

    def __len__(self) -> int:
        return self.num_frames


def record_to_motion(record: SequenceRecord):
    """The record's motion: local rotations decoded from 6D, trans, fps, skeleton (T frames)."""
    return Motion(rot.rot6d_to_matrix(record.rot6d), record.trans, record.fps, record.skeleton,
                  name=record.id, meta={"source": record.source, "subject": record.subject})


class ProcessedDataset:
    """Reader of a ``mage-dataset-v1`` folder.

    >>> ds = ProcessedDataset("data/cmu-mini")
    >>> rec = ds.load(ds.ids("train")[0]); rec.condition.shape   # (T, 54)
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.fps = float(self.manifest["fps"])
        self.recipe = self.manifest.get("recipe", "")

    @property
    def splits(self) -> list[str]:
        return list(self.manifest["splits"])

    def ids(self, split: str = "all") -> list[str]:
        """Sequence ids of ``split`` ("train", "val" where the build made one, "test", or "all")."""
        if split == "all":
            return list(self.manifest["sequences"])
        if split not in self.manifest["splits"]:
            raise ValueError(
                f"{self.root}: unknown split {split!r}; splits: {', '.join(self.splits + ['all'])}"
            )
        return list(self.manifest["splits"][split])

    def info(self, id: str) -> dict:
        """The manifest entry of ``id`` (source, subject, frames, file, rig)."""
        try:
            return self.manifest["sequences"][id]
        except KeyError:
            raise ValueError(f"{self.root}: no sequence with id {id!r}") from None

    def __len__(self) -> int:
        return len(self.manifest["sequences"])

    def __contains__(self, id: str) -> bool:
        return id in self.manifest["sequences"]

    def load(self, id: str) -> SequenceRecord:
        """Read one record, checking every field's shape against the manifest."""
        entry = self.info(id)
        path = self.root / entry.get("file", record_file(id))
        if not path.is_file():
            raise FileNotFoundError(f"{path}: record of sequence {id!r} is missing; rebuild the dataset")
        try:
            with np.load(path, allow_pickle=False) as f:
                data = {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot read record ({err})") from None
        T = int(entry["frames"])
        tensors = {}
        for name, shape in RECORD_FIELDS.items():
            if name not in data:
                raise ValueError(f"{path}: field {name!r} is missing")
            if shape is None:
                continue
            arr = data[name]
            if arr.shape != (T, *shape) or arr.dtype != np.float32:
                raise ValueError(
                    f"{path}: field {name!r} is {arr.dtype} {arr.shape}, expected float32 "
                    f"{(T, *shape)} (frames from the manifest)"
                )
            tensors[name] = torch.from_numpy(arr)
        try:
            skeleton = Skeleton.from_dict(json.loads(str(data["skeleton"])))
        except (json.JSONDecodeError, ValueError) as err:
            raise ValueError(f"{path}: field 'skeleton' is not a valid skeleton ({err})") from None
        return SequenceRecord(
            id=id, source=str(data["source"]), subject=str(entry.get("subject", "")),
            fps=float(data["fps"]), skeleton=skeleton, **tensors,
        )
