"""AMASS npz files (SMPL-H), following the community protocol (docs/training.md).

An AMASS motion file holds ``poses`` (T, 156) SMPL-H axis-angle (root, 21 body joints,
2 x 15 hand joints), ``trans`` (T, 3), ``mocap_framerate``, ``gender``, ``betas`` (16,)
and ``dmpls`` (T, 8). The protocol uses the first 22 joints, strides to 60 Hz and poses
every subject with the SMPL-H **male** model and **zero betas**; the subject's real
gender and betas are an option (``use_real_shape``).

Also here: the published protocol-1 split lists (``read_split_list``) and the protocol-2
cross-dataset subsets (``PROTOCOL2_TRAIN`` / ``PROTOCOL2_TEST``, ``resolve_protocol2``).
"""

from __future__ import annotations

import functools
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np

from mage.core import limits
from mage.core.atomic import atomic_save_npz
from mage.core.constants import PROTOCOL_FPS
from mage.core.motion import Motion
from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS, Skeleton

NUM_SMPLH_POSE = 156  # 52 joints x 3
NUM_BODY_POSE = 66  # root + 21 body joints, x 3
NUM_BETAS = 16  # as stored in AMASS files
GENDERS = ("male", "female", "neutral")

# Protocol 2 (cross-dataset): whole subsets, named as in the papers. AMASS releases
# spell a few of them differently; SUBSET_FOLDERS lists the folder names to try.
PROTOCOL2_TRAIN: tuple[str, ...] = (
    "ACCAD", "BMLrub", "BMLmovi", "CMU", "EKUT", "Eyes_Japan_Dataset", "KIT", "HDM05",
    "MPI_Limits", "MPI_mosh", "SFU", "TotalCapture",
)
PROTOCOL2_TEST: tuple[str, ...] = ("HumanEva", "Transitions_mocap")
SUBSET_FOLDERS: dict[str, tuple[str, ...]] = {
    "BMLrub": ("BMLrub", "BioMotionLab_NTroje"),
    "HDM05": ("HDM05", "MPI_HDM05"),
    "MPI_Limits": ("MPI_Limits", "PosePrior"),
    "Transitions_mocap": ("Transitions_mocap", "Transitions"),
}


class NotAMotionFile(ValueError):
    """An AMASS npz that holds no motion (the per-subject ``shape.npz``): skip it."""


# --- body model ---------------------------------------------------------------------
def resolve_body_model(body_model: str | Path | None, gender: str = "male") -> Path:
    """The SMPL-H ``model.npz`` to use for ``gender``.

    ``body_model``: a model file (used for every gender), or a folder holding
    ``{male,female,neutral}/model.npz`` (also accepted one level up, ``smplh/male/...``).
    """
    if body_model is None:
        raise ValueError(
            "AMASS files need the SMPL-H body model: pass body_model= (CLI: --body-model) "
            "with the path of body_models/smplh/male/model.npz or of its smplh/ folder"
        )
    path = Path(body_model)
    if path.is_file():
        return path
    if path.is_dir():
        tried = [path / gender / "model.npz", path / "smplh" / gender / "model.npz"]
        for cand in tried:
            if cand.is_file():
                return cand
        raise FileNotFoundError(
            f"{path}: no SMPL-H model for gender {gender!r}; looked for "
            + ", ".join(str(t) for t in tried)
        )
    raise FileNotFoundError(
        f"{path}: SMPL-H body model not found (expected a model.npz file or a folder "
        "with {male,female,neutral}/model.npz, as distributed for AMASS)"
    )


@functools.lru_cache(maxsize=32)
def _skeleton_cached(model_path: str, betas: tuple[float, ...] | None):
    return Skeleton.from_smpl_model(model_path, betas=None if betas is None else np.array(betas))


# --- reading ------------------------------------------------------------------------
def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: AMASS file not found")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except ValueError as err:  # object arrays would need pickle, or a corrupt .npy header
        raise ValueError(f"{path}: cannot read without pickle or not an npz of arrays "
                         f"({limits.quote(str(err), 120)})") from None
    except (OSError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError,
            RuntimeError, MemoryError, OverflowError) as err:
        raise ValueError(f"{path}: not a readable npz file ({limits.quote(str(err), 120)})") from None
    for k, v in data.items():  # numpy returns the raw bytes of a member without .npy magic
        if not isinstance(v, np.ndarray):
            raise ValueError(f"{path}: field {k!r} is not an .npy array")
    return data


def _as_text(arr: np.ndarray) -> str:
    value = arr.item() if arr.ndim == 0 else arr
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip().lower()


def _field(data: dict, path: Path, name: str, shape: tuple, dtype=np.float64) -> np.ndarray:
    """``data[name]`` as ``dtype``, checked against ``shape`` (None = any) and for NaN."""
    if name not in data:
        raise ValueError(f"{path}: field {name!r} is missing (fields: {sorted(data)})")
    arr = data[name]
    if arr.ndim != len(shape) or any(w is not None and s != w for s, w in zip(arr.shape, shape)):
        want = "(" + ", ".join("T" if w is None else str(w) for w in shape) + ")"
        raise ValueError(f"{path}: field {name!r} has shape {arr.shape}, expected {want}")
    try:
        arr = arr.astype(dtype)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: field {name!r} is not numeric (dtype {arr.dtype})") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"{path}: field {name!r} contains NaN/inf")
    return arr


def load_amass(
    npz_path: str | Path,
    body_model: str | Path | None,
    use_real_shape: bool = False,
    target_fps: float | None = PROTOCOL_FPS,
    protocol_stride: bool = True,
):
    """Read an AMASS motion file as a :class:`~mage.core.motion.Motion`.

    npz_path: AMASS SMPL-H file (``poses`` (T, 156), ``trans`` (T, 3), ``mocap_framerate``).
    body_model: SMPL-H ``model.npz`` or a folder with ``{male,female,neutral}/model.npz``.
    use_real_shape: False (protocol): male model, zero betas. True: the file's gender and
        betas (the option one newer method uses).
    target_fps: None keeps the file's rate. Otherwise, with ``protocol_stride`` (the
        protocol), keep every ``round(fps / target_fps)``-th frame and label the result
        ``target_fps`` (exact for 120 and 60 Hz; a 100 Hz file becomes 50 Hz labelled 60,
        as in the reference code; ``meta["true_fps"]`` keeps the real rate). With
        ``protocol_stride=False``, :meth:`Motion.resample` gives exactly ``target_fps``.
    returns: Motion with T' frames, 22 joints, skeleton = Skeleton.from_smpl_model(model,
        betas); meta has source, format "amass", rig "smplh", gender, source_fps, stride.
    raises: NotAMotionFile without ``mocap_framerate`` (``shape.npz``); ValueError naming
        the file and field for malformed content; FileNotFoundError for missing files.
    """
    path = Path(npz_path)
    data = _read_npz(path)
    fps, poses, trans = _motion_fields(data, path)
    gender, betas = _body_shape(data, path, use_real_shape)
    model_path = resolve_body_model(body_model, gender)
    skeleton = _skeleton_cached(str(model_path), None if betas is None else tuple(betas.tolist()))

    stride = 1
    if target_fps is not None and protocol_stride:
        stride = max(1, int(round(fps / float(target_fps))))
        poses, trans = poses[::stride], trans[::stride]
    meta = {
        "source": str(path), "format": "amass", "rig": "smplh", "gender": gender,
        "betas": None if betas is None else betas.tolist(), "body_model": str(model_path),
        "source_fps": fps, "stride": stride, "true_fps": fps / stride,
    }
    motion = Motion.from_axis_angle(poses[:, :NUM_BODY_POSE], trans, fps / stride, skeleton,
                                    name=path.stem, meta=meta)
    if target_fps is not None:
        if protocol_stride:
            motion = replace(motion, fps=float(target_fps))
        else:
            motion = motion.resample(target_fps)
    return motion


def _motion_fields(data: dict, path: Path) -> tuple[float, np.ndarray, np.ndarray]:
    """(frame rate, poses (T, 156), trans (T, 3)) of an AMASS file, checked;
    NotAMotionFile without ``mocap_framerate``."""
    if "mocap_framerate" not in data:
        if "mocap_frame_rate" in data:
            raise ValueError(
                f"{path}: looks like an AMASS SMPL-X file (field 'mocap_frame_rate'); "
                "only the SMPL-H release (field 'mocap_framerate') is supported"
            )
        raise NotAMotionFile(f"{path}: no 'mocap_framerate' field, not a motion file (e.g. shape.npz)")
    fps = limits.check_fps(_field(data, path, "mocap_framerate", ()), f"{path}: field 'mocap_framerate'")
    poses = _field(data, path, "poses", (None, NUM_SMPLH_POSE))
    T = poses.shape[0]
    if T == 0:
        raise ValueError(f"{path}: field 'poses' has no frames")
    trans = _field(data, path, "trans", (T, 3))
    limits.check_angles(poses[:, :NUM_BODY_POSE], f"{path}: field 'poses'")
    limits.check_positions(trans, f"{path}: field 'trans'")
    limits.check_root_speed(trans, fps, f"{path}: field 'trans'")
    return fps, poses, trans


def _body_shape(data: dict, path: Path, use_real_shape: bool) -> tuple[str, np.ndarray | None]:
    """(gender, betas): the protocol's male model and zero betas (None), or the file's."""
    if not use_real_shape:
        return "male", None
    if "gender" not in data:
        raise ValueError(f"{path}: field 'gender' is missing (needed by use_real_shape)")
    gender = _as_text(data["gender"])
    if gender not in GENDERS:
        raise ValueError(f"{path}: field 'gender' is {gender!r}, expected one of {GENDERS}")
    return gender, _field(data, path, "betas", (None,))


# --- writing ------------------------------------------------------------------------
def save_amass(motion, path: str | Path, gender: str = "male", betas=None,
               body_model: str | Path | None = None) -> None:
    """Write an AMASS-style SMPL-H npz that smplx (and :func:`load_amass`) can consume.

    motion: Motion on the SMPL 22-joint skeleton.
    Written: poses (T, 156) float64 (body axis-angle, hands zero), trans (T, 3),
    mocap_framerate (scalar), gender, betas (16,) (given ones zero-padded), dmpls (T, 8)
    zeros. ``trans`` is the motion's, which places the pelvis at trans + J_0 of the
    motion's skeleton; pass ``body_model`` to shift it so that the pelvis stays where it is
    under that SMPL-H model (with ``gender`` and ``betas``).
    """
    path = Path(path)
    sk = motion.skeleton
    if sk.joint_names != SMPL22_JOINT_NAMES or sk.parents != SMPL22_PARENTS:
        raise ValueError(
            f"{path}: AMASS export needs a motion on the SMPL 22-joint skeleton "
            f"(got {sk.num_joints} joints starting {list(sk.joint_names[:3])}); retarget it first"
        )
    gender = str(gender).lower()
    if gender not in GENDERS:
        raise ValueError(f"gender: expected one of {GENDERS}, got {gender!r}")
    b = np.zeros(NUM_BETAS)
    if betas is not None:
        given = np.asarray(betas, dtype=np.float64).reshape(-1)
        if given.size > NUM_BETAS or not np.isfinite(given).all():
            raise ValueError(f"betas: expected at most {NUM_BETAS} finite values, got {given.size}")
        b[: given.size] = given
    limits.check_motion(motion, f"{path}: motion to write")
    T = motion.num_frames
    poses = np.zeros((T, NUM_SMPLH_POSE))
    poses[:, :NUM_BODY_POSE] = motion.axis_angle().double().reshape(T, -1).cpu().numpy()
    trans = motion.trans.double().cpu().numpy()
    if body_model is not None:
        model_sk = _skeleton_cached(str(resolve_body_model(body_model, gender)),
                                    tuple(b.tolist()) if betas is not None else None)
        trans = trans + (sk.offsets[0] - model_sk.offsets[0])
    atomic_save_npz(
        path,
        poses=poses,
        trans=trans,
        mocap_framerate=np.array(float(motion.fps)),
        gender=np.array(gender),
        betas=b,
        dmpls=np.zeros((T, 8)),
    )


# --- splits ---------------------------------------------------------------------------
def read_split_list(path: str | Path) -> list[str]:
    """Relative npz paths of a published protocol-1 split list, e.g. ``CMU/01/01_01_poses.npz``.

    Blank lines and ``#`` comments are ignored; Windows line endings and backslashes are
    tolerated; a leading ``./`` is removed. Each entry must end with ``.npz``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: split list not found")
    out = []
    for lineno, raw in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        line = raw.split("#", 1)[0].strip().replace("\\", "/")
        if not line:
            continue
        while line.startswith("./"):
            line = line[2:]
        if not line.endswith(".npz") or line.startswith("/"):
            raise ValueError(
                f"{path}, line {lineno}: expected a relative AMASS npz path such as "
                f"'CMU/01/01_01_poses.npz', got {line!r}"
            )
        out.append(line)
    return out


def _subset_folder(root: Path, subset: str) -> Path | None:
    for name in SUBSET_FOLDERS.get(subset, (subset,)):
        if (root / name).is_dir():
            return root / name
    return None


def resolve_split_list(entries: list[str], amass_root: str | Path) -> list[Path]:
    """Files of split-list entries under ``amass_root``; subset folders may use either
    spelling (e.g. ``BMLrub`` or ``BioMotionLab_NTroje``). Raises listing missing files."""
    root = Path(amass_root)
    aliases = {name: subset for subset, names in SUBSET_FOLDERS.items() for name in names}
    out, missing = [], []
    for entry in entries:
        first, _, rest = entry.partition("/")
        folder = _subset_folder(root, aliases.get(first, first))
        cand = (folder / rest) if folder is not None else root / entry
        if cand.is_file():
            out.append(cand)
        else:
            missing.append(entry)
    if missing:
        raise FileNotFoundError(
            f"{root}: {len(missing)} file(s) of the split list are missing, e.g. {missing[:3]}"
        )
    return out


def resolve_protocol2(amass_root: str | Path, strict: bool = True) -> dict[str, list[Path]]:
    """Protocol-2 motion files: ``{"train": [...], "test": [...]}``, sorted.

    Every ``*.npz`` under each subset folder except ``shape.npz``. ``strict``: raise
    FileNotFoundError naming the missing subsets; otherwise leave them out.
    """
    root = Path(amass_root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: AMASS root folder not found")
    out: dict[str, list[Path]] = {}
    missing = []
    for split, subsets in (("train", PROTOCOL2_TRAIN), ("test", PROTOCOL2_TEST)):
        files: list[Path] = []
        for subset in subsets:
            folder = _subset_folder(root, subset)
            if folder is None:
                missing.append("/".join(SUBSET_FOLDERS.get(subset, (subset,))))
                continue
            files += sorted(p for p in folder.rglob("*.npz") if p.name != "shape.npz")
        out[split] = files
    if missing and strict:
        raise FileNotFoundError(f"{root}: protocol-2 subset folder(s) missing: {', '.join(missing)}")
    return out
