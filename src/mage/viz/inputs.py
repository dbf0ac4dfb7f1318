"""What the renderer and the viewer draw: world joint positions plus the joint tree.

Both accept a :class:`~mage.core.Motion` or a bare ``(T, J, 3)`` array of world joint
positions (z-up, metres) and turn it into a :class:`SkeletonSequence` here, so that
they share one set of input checks. :func:`load_motion_file` reads a motion file for
the ``mage render`` / ``mage view`` commands.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mage.core.checks import check_fps
from mage.core.motion import Motion
from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS
from mage.data.io import load_motion

TRACKER_NAMES = ("head", "left_wrist", "right_wrist")  # highlighted wherever they exist


@dataclass
class SkeletonSequence:
    """positions: (T, J, 3) float64 world positions (z-up, metres); parents: (J,) with -1
    at the root; joint_names: (J,); fps: frames per second, or None if unknown."""

    positions: np.ndarray
    parents: tuple[int, ...]
    joint_names: tuple[str, ...]
    fps: float | None = None
    name: str = ""

    @property
    def num_frames(self) -> int:
        return self.positions.shape[0]

    @property
    def num_joints(self) -> int:
        return self.positions.shape[1]

    def bones(self) -> list[tuple[int, int]]:
        """(parent, child) index pairs, one per non-root joint."""
        return [(p, j) for j, p in enumerate(self.parents) if p >= 0]

    def side(self) -> list[str]:
        """Per joint: 'left', 'right' or 'center' (from the joint names)."""
        return ["left" if n.startswith("left_") else "right" if n.startswith("right_") else "center"
                for n in self.joint_names]

    def tracked(self) -> list[int]:
        """Indices of the joints a VR rig tracks (head, wrists) that this skeleton has."""
        return [self.joint_names.index(n) for n in TRACKER_NAMES if n in self.joint_names]

    def root(self) -> int:
        return self.parents.index(-1)


def as_sequence(obj, name: str = "motion", fps: float | None = None) -> SkeletonSequence:
    """A Motion, a SkeletonSequence or a (T, 22, 3) positions array -> SkeletonSequence.

    ``fps`` overrides the frame rate (an array carries none; a Motion its own).
    ``name`` is used in error messages and kept as the sequence's label.
    """
    if isinstance(obj, SkeletonSequence):
        seq = obj
    elif hasattr(obj, "joint_positions") and hasattr(obj, "skeleton"):  # a Motion
        pos = obj.joint_positions().detach().cpu().double().numpy()
        seq = SkeletonSequence(pos, tuple(obj.skeleton.parents), tuple(obj.skeleton.joint_names),
                               float(obj.fps), getattr(obj, "name", "") or name)
    else:
        if hasattr(obj, "detach"):  # a torch tensor
            obj = obj.detach().cpu().numpy()
        try:
            pos = np.asarray(obj, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"{name}: expected a Motion or a (T, 22, 3) array of joint positions, "
                f"got {type(obj).__name__}"
            ) from None
        if pos.ndim != 3 or pos.shape[1:] != (len(SMPL22_PARENTS), 3):
            raise ValueError(
                f"{name}: expected positions of shape (T, 22, 3) (SMPL joints, metres), "
                f"got {pos.shape}; pass a Motion for other skeletons"
            )
        seq = SkeletonSequence(pos, SMPL22_PARENTS, SMPL22_JOINT_NAMES, None, name)
    if seq.num_frames == 0:
        raise ValueError(f"{name}: has no frames")
    if not np.isfinite(seq.positions).all():
        raise ValueError(f"{name}: joint positions contain NaN/inf")
    if fps is not None:
        seq = SkeletonSequence(seq.positions, seq.parents, seq.joint_names, check_fps(fps), seq.name)
    return seq


def load_motion_file(path: str | Path):
    """Read a motion file into a Motion: the project's ``.npz`` (``Motion.save``), or any
    format ``mage.data.io.load_motion`` knows (BVH, AMASS npz, ...)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such motion file")
    if path.suffix == ".npz":
        try:
            return Motion.load(path)
        except ValueError as err:
            if "not a MAGE motion file" not in str(err):
                raise
    return load_motion(path)
