"""Load and save motions of any supported format, chosen by file extension.

===========  ===========================================================================
``.bvh``     BVH (``mage.data.bvh``), retargeted to the SMPL 22-joint skeleton
``.amc``     CMU ASF/AMC (``mage.data.asfamc``); the ASF is the single ``*.asf`` beside it
``.npz``     AMASS if it has ``poses`` + ``mocap_framerate`` (``mage.data.amass``, needs
             the SMPL-H body model), otherwise the project's own npz (``Motion.save``)
===========  ===========================================================================

Motions come back at the file's own frame rate (AMASS too: no protocol stride here; the
dataset build applies it). Loaded and saved motions are checked against the plausibility
bounds of :mod:`mage.core.limits` (frame rate, root position and speed): an absurd file
is a one-line ``ValueError`` naming it, never a motion written out.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from mage.core import limits
from mage.core.motion import Motion
from mage.data.amass import load_amass, save_amass
from mage.data.asfamc import load_asfamc
from mage.data.bvh import load_bvh, save_bvh

SUPPORTED_EXTENSIONS: tuple[str, ...] = (".bvh", ".amc", ".npz")
SAVE_FORMATS: tuple[str, ...] = ("mage", "amass", "bvh")
# npz fields that only AMASS files have: such a file without ``mocap_framerate`` is an
# AMASS file that holds no motion (shape.npz), reported by load_amass.
_AMASS_HINT_FIELDS = {"betas", "dmpls", "gender", "poses"}


def detect_format(path: str | Path) -> str:
    """``"bvh"``, ``"amc"``, ``"amass"`` or ``"mage"`` from the extension (and npz fields)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".bvh":
        return "bvh"
    if ext == ".amc":
        return "amc"
    if ext == ".npz":
        try:
            with zipfile.ZipFile(path) as z:
                fields = {n[:-4] for n in z.namelist() if n.endswith(".npy")}
        except FileNotFoundError:
            raise FileNotFoundError(f"{path}: file not found") from None
        except (OSError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: not a readable npz file ({err})") from None
        if "format" in fields:
            return "mage"
        if "mocap_framerate" in fields or fields & _AMASS_HINT_FIELDS:
            return "amass"
        return "mage"  # Motion.load explains what is missing
    if ext == ".asf":
        raise ValueError(f"{path}: an ASF file holds the skeleton only; pass the .amc motion file")
    raise ValueError(
        f"{path}: unsupported file type {ext or '(no extension)'!r}; supported: "
        + ", ".join(SUPPORTED_EXTENSIONS)
    )


def load_motion(path: str | Path, rig: str = "auto", body_model: str | Path | None = None):
    """Read ``path`` (any supported format) as a Motion at its own frame rate.

    rig: BVH / ASF-AMC joint map: a preset name, a ``map.json`` path, or "auto".
    body_model: SMPL-H model file or folder, needed for AMASS files.
    Raises FileNotFoundError, ValueError (unsupported / malformed), and
    ``mage.data.amass.NotAMotionFile`` for AMASS files without a motion (shape.npz).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        return _load_motion(path, rig, body_model)
    except ValueError as err:  # one line, naming the file, quoting at most a little input
        msg = limits.shorten(str(err), keep=(str(path),))
        named = msg.split(": ", 1)[0].split(", line", 1)[0]  # the file a reader names first
        if str(path) not in msg and not (named.endswith((".asf", ".ASF")) and Path(named).is_file()):
            msg = f"{path}: {msg}"
        if msg == str(err):
            raise
        raise type(err)(msg) if type(err).__init__ is ValueError.__init__ else ValueError(msg) from None


def _load_motion(path: Path, rig, body_model):
    fmt = detect_format(path)
    if fmt == "bvh":
        motion = load_bvh(path, rig=rig)
    elif fmt == "amc":
        motion = load_asfamc(path, rig=rig)
    elif fmt == "amass":
        motion = load_amass(path, body_model, target_fps=None)
    else:
        check_npz_arrays(path)
        motion = Motion.load(path)
        motion.meta.setdefault("rig", "smpl22")
    limits.check_motion(motion, str(path))
    motion.meta.setdefault("source", str(path))
    motion.meta.setdefault("format", fmt)
    return motion


def check_npz_arrays(path: str | Path) -> None:
    """Raise ValueError naming ``path`` unless it is an npz whose members are all .npy
    arrays (numpy hands back the raw bytes of any other member)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            for k in f.files:
                if not isinstance(f[k], np.ndarray):
                    raise ValueError(f"{path}: field {k!r} is not an .npy array")
    except ValueError as err:
        if str(err).startswith(str(path)):
            raise
        raise ValueError(f"{path}: not an npz of plain arrays ({limits.quote(str(err), 120)})") from None
    except (OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as err:
        raise ValueError(f"{path}: not a readable npz file ({limits.quote(str(err), 120)})") from None


def save_motion(motion, path: str | Path, format: str | None = None, **kwargs) -> None:
    """Write ``motion`` to ``path``.

    format: "mage" (the project's npz, default for ``.npz``), "amass" (SMPL-H npz, see
    ``save_amass``; kwargs gender, betas, body_model) or "bvh" (default for ``.bvh``).
    """
    path = Path(path)
    ext = path.suffix.lower()
    if format is None:
        format = {".npz": "mage", ".bvh": "bvh"}.get(ext)
        if format is None:
            raise ValueError(
                f"{path}: cannot write {ext or '(no extension)'!r} files; use .npz (formats "
                "mage, amass) or .bvh"
            )
    if format not in SAVE_FORMATS:
        raise ValueError(f"format: expected one of {', '.join(SAVE_FORMATS)}, got {format!r}")
    expected_ext = ".bvh" if format == "bvh" else ".npz"
    if ext != expected_ext:
        raise ValueError(f"{path}: format {format!r} writes {expected_ext} files")
    if kwargs and format != "amass":
        raise ValueError(f"format {format!r} takes no options (got {sorted(kwargs)})")
    limits.check_motion(motion, f"{path}: motion to write")
    if format == "mage":
        motion.save(path)
    elif format == "amass":
        save_amass(motion, path, **kwargs)
    else:
        save_bvh(motion, path)
