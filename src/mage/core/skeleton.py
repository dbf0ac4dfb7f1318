"""The SMPL 22-joint body skeleton: names, parents, rest offsets.

Offsets are in the SMPL body frame (x = body's left, y = up, z = forward), metres,
parent-relative. ``offsets[0]`` is the root's rest position in the model frame (SMPL's
regressed pelvis joint J_0): forward kinematics places the pelvis at ``trans +
offsets[0]`` exactly as SMPL does (the root rotation does not rotate J_0). The default
skeleton sets it to zero, so there ``trans`` is the pelvis position.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mage.core.constants import NUM_JOINTS
from mage.core.safe_pickle import load_model_pickle

SMPL22_JOINT_NAMES: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck",
    "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)
SMPL22_PARENTS: tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
)

# Rest offsets of the SMPL neutral model, mean shape (betas = 0), metres, body frame.
# Source: shared/data/skeleton/smpl22_neutral.json, whose numbers come from vis.py of
# the public repository Stanford-TML/EDGE (MIT licence), derived from the SMPL neutral
# body model. offsets[0] is zero there (the pelvis rest position is not given).
SMPL22_NEUTRAL_OFFSETS: tuple[tuple[float, float, float], ...] = (
    (0.0, 0.0, 0.0),
    (0.05858135, -0.08228004, -0.01766408),
    (-0.06030973, -0.09051332, -0.01354254),
    (0.00443945, 0.12440352, -0.03838522),
    (0.04345142, -0.38646945, 0.008037),
    (-0.04325663, -0.38368791, -0.00484304),
    (0.00448844, 0.1379564, 0.02682033),
    (-0.01479032, -0.42687458, -0.037428),
    (0.01905555, -0.4200455, -0.03456167),
    (-0.00226458, 0.05603239, 0.00285505),
    (0.04105436, -0.06028581, 0.12204243),
    (-0.03483987, -0.06210566, 0.13032329),
    (-0.0133902, 0.21163553, -0.03346758),
    (0.07170245, 0.11399969, -0.01889817),
    (-0.08295366, 0.11247234, -0.02370739),
    (0.01011321, 0.08893734, 0.05040987),
    (0.12292141, 0.04520509, -0.019046),
    (-0.11322832, 0.04685326, -0.00847207),
    (0.2553319, -0.01564902, -0.02294649),
    (-0.26012748, -0.01436928, -0.03126873),
    (0.26570925, 0.01269811, -0.00737473),
    (-0.26910836, 0.00679372, -0.00602676),
)

# Keys a SMPL / SMPL-H model file must have for the skeleton (others are ignored here).
_MODEL_KEYS = ("J_regressor", "v_template", "shapedirs", "kintree_table")


class NamedJoints:
    """``num_joints`` and ``index(name)`` for a class with ``joint_names`` (the
    skeleton here, and the importers' source-rig motion)."""

    joint_names: tuple[str, ...]
    _joints_of = "skeleton"  # what an unknown name is said to be missing from

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, name: str) -> int:
        """Joint index by name; a clear error for unknown names."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(
                f"joint name {name!r} is not in this {self._joints_of}; known: "
                f"{', '.join(self.joint_names)}"
            ) from None


@dataclass(frozen=True, eq=False)
class Skeleton(NamedJoints):
    """A joint tree with rest offsets. Immutable; compare with :meth:`allclose`."""

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray  # (J, 3) float64, metres, parent-relative, body frame

    def __post_init__(self):
        J = len(self.joint_names)
        offsets = np.asarray(self.offsets, dtype=np.float64)
        if offsets.shape != (J, 3):
            raise ValueError(f"offsets: expected shape ({J}, 3), got {offsets.shape}")
        if not np.isfinite(offsets).all():
            raise ValueError("offsets: contains NaN/inf")
        if len(self.parents) != J:
            raise ValueError(f"parents: expected {J} entries, got {len(self.parents)}")
        if len(set(self.joint_names)) != J:
            raise ValueError("joint_names: names must be unique")
        for j, p in enumerate(self.parents):
            if (j == 0) != (p == -1) or p >= j:
                raise ValueError(
                    f"parents: joint {j} has parent {p}; the root must be joint 0 with "
                    "parent -1 and every parent must come before its child"
                )
        offsets.setflags(write=False)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "joint_names", tuple(self.joint_names))
        object.__setattr__(self, "parents", tuple(int(p) for p in self.parents))

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions of the rest pose in the body frame."""
        return rest_positions(self.offsets, self.parents)

    def bone_lengths(self) -> np.ndarray:
        """(J,) length of the bone from each joint's parent to it (0 for the root)."""
        lengths = np.linalg.norm(self.offsets, axis=-1)
        lengths[0] = 0.0
        return lengths

    def mirror_map(self) -> list[int]:
        """For each joint, the index of its left/right counterpart (itself if central)."""
        out = []
        for name in self.joint_names:
            if name.startswith("left_"):
                other = "right_" + name[5:]
            elif name.startswith("right_"):
                other = "left_" + name[6:]
            else:
                other = name
            out.append(self.index(other))
        return out

    def allclose(self, other: "Skeleton", atol: float = 1e-6) -> bool:
        return (
            self.joint_names == other.joint_names
            and self.parents == other.parents
            and np.allclose(self.offsets, other.offsets, atol=atol)
        )

    def to_dict(self) -> dict:
        return {
            "joint_names": list(self.joint_names),
            "parents": list(self.parents),
            "offsets": self.offsets.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Skeleton":
        missing = {"joint_names", "parents", "offsets"} - set(d)
        if missing:
            raise ValueError(f"skeleton: missing field(s) {sorted(missing)}")
        return cls(tuple(d["joint_names"]), tuple(d["parents"]), np.asarray(d["offsets"]))

    @classmethod
    def smpl22(cls) -> "Skeleton":
        """The default skeleton: SMPL neutral, mean shape, pelvis rest position at 0."""
        return cls(SMPL22_JOINT_NAMES, SMPL22_PARENTS, np.asarray(SMPL22_NEUTRAL_OFFSETS))

    @classmethod
    def from_smpl_model(cls, path: str | Path, betas=None) -> "Skeleton":
        """Skeleton of a real SMPL / SMPL-H model file, first 22 joints.

        ``path``: ``model.npz`` (as AMASS distributes SMPL-H) or the official ``.pkl``.
        ``.pkl`` files are read with a restricted unpickler that builds only arrays
        (:mod:`mage.core.safe_pickle`); a pickle naming anything else is refused.
        ``betas``: shape coefficients (any length up to the file's shape space; missing
        ones are zero). Joints = J_regressor @ (v_template + shapedirs @ betas), the same
        regression SMPL performs, so FK of this skeleton reproduces the model's joints.
        """
        data = load_smpl_model_arrays(path)
        v = data["v_template"]
        shapedirs = data["shapedirs"]
        if betas is not None:
            b = np.asarray(betas, dtype=np.float64).reshape(-1)
            if b.size > shapedirs.shape[-1]:
                raise ValueError(
                    f"betas: {b.size} given but {path} has {shapedirs.shape[-1]} shape components"
                )
            v = v + shapedirs[..., : b.size] @ b
        joints = data["J_regressor"] @ v  # (J_model, 3)
        J = NUM_JOINTS
        if joints.shape[0] < J:
            raise ValueError(f"{path}: J_regressor has {joints.shape[0]} joints, need >= {J}")
        model_parents = data["kintree_table"][0, :J].astype(np.int64)
        model_parents[0] = -1
        if tuple(model_parents.tolist()) != SMPL22_PARENTS:
            raise ValueError(
                f"{path}: kintree_table does not match the SMPL 22-joint hierarchy "
                f"(got parents {model_parents.tolist()})"
            )
        joints = joints[:J]
        offsets = joints.copy()
        offsets[1:] = joints[1:] - joints[model_parents[1:]]
        return cls(SMPL22_JOINT_NAMES, SMPL22_PARENTS, offsets)


def rest_positions(offsets: np.ndarray, parents) -> np.ndarray:
    """(J, 3) positions of a joint tree's rest pose from parent-relative ``offsets`` (J, 3);
    parents come before children (root: parent -1, placed at its own offset)."""
    pos = np.zeros_like(offsets, dtype=np.float64)
    for j, p in enumerate(parents):
        pos[j] = offsets[j] if p < 0 else pos[p] + offsets[j]
    return pos


def load_smpl_model_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Read the arrays the skeleton needs from a SMPL/SMPL-H model file (npz or pkl)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: SMPL/SMPL-H model file not found (expected e.g. "
            "body_models/smplh/male/model.npz as distributed for AMASS)"
        )
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as f:
                raw = {k: f[k] for k in f.files if k in _MODEL_KEYS}
        except ValueError as err:  # object arrays need pickle: refuse, say why
            raise ValueError(f"{path}: cannot read without pickle ({str(err)[:120]})") from None
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: not a readable npz file ({str(err)[:120]})") from None
    elif path.suffix == ".pkl":  # restricted: numpy / chumpy / sparse only, no code runs
        raw = load_model_pickle(path, _MODEL_KEYS)
    else:
        raise ValueError(f"{path}: unknown model file type (expected .npz or .pkl)")
    missing = [k for k in _MODEL_KEYS if k not in raw]
    if missing:
        raise ValueError(f"{path}: not a SMPL model file, missing key(s) {missing}")
    out = {}
    for k in _MODEL_KEYS:
        arr = raw[k]
        if hasattr(arr, "toarray"):  # scipy sparse J_regressor in official .pkl files
            arr = arr.toarray()
        try:
            out[k] = np.asarray(arr, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: {k} is not a numeric array") from None
    v, sd, jr, kt = out["v_template"], out["shapedirs"], out["J_regressor"], out["kintree_table"]
    if sd.ndim != 3 or v.ndim != 2 or v.shape[1:] != (3,) or v.shape != sd.shape[:2]:
        raise ValueError(f"{path}: shapedirs/v_template shapes do not match")
    if jr.ndim != 2 or jr.shape[1] != v.shape[0] or kt.ndim != 2 or kt.shape[1] < 22:
        raise ValueError(f"{path}: J_regressor / kintree_table shapes do not fit the model")
    if not all(np.isfinite(a).all() for a in out.values()):
        raise ValueError(f"{path}: the model holds NaN/inf values")
    return out
