"""The motion an importer returns before retargeting: the file's own joint tree.

Importers (``mage.data.bvh``, ``mage.data.asfamc``) read a file into a
:class:`SourceMotion` (the file's joints, metres, the file's own world axes);
``mage.data.retarget.retarget`` turns it into a :class:`mage.core.Motion` on SMPL-22.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from mage.core.checks import check_fps
from mage.core.skeleton import NamedJoints, rest_positions


@dataclass
class SourceMotion(NamedJoints):
    """T frames of a motion on its own joint tree (as read from a file, metres).

    joint_names: J names (end sites included, as leaf joints without channels).
    parents: J parent indices, -1 for the root, parents before children.
    offsets: (J, 3) rest translation of each joint in its parent's frame (the root's:
        in the world); the zero pose (all rotations identity) has every joint frame
        parallel to the world.
    rotations: (T, J, 3, 3) float64 local rotations (parent frame <- joint frame).
    translations: (T, J, 3) float64 local translations in the parent frame, metres
        (the root's: its world position); ``offsets`` for joints the file does not move.
    fps: frames per second.
    Raises ValueError when the shapes disagree or a parent does not come before its child.
    """

    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray
    rotations: torch.Tensor
    translations: torch.Tensor
    fps: float
    name: str = ""
    meta: dict = field(default_factory=dict)
    _joints_of = "rig"

    def __post_init__(self):
        num_joints = len(self.joint_names)
        self.joint_names = tuple(self.joint_names)
        self.parents = tuple(int(p) for p in self.parents)
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        self.rotations = torch.as_tensor(self.rotations, dtype=torch.float64)
        self.translations = torch.as_tensor(self.translations, dtype=torch.float64)
        if len(self.parents) != num_joints or self.offsets.shape != (num_joints, 3):
            raise ValueError(f"SourceMotion: {num_joints} names but {len(self.parents)} parents and "
                             f"offsets of shape {self.offsets.shape}")
        for joint, parent in enumerate(self.parents):
            if (joint == 0) != (parent == -1) or parent >= joint:
                raise ValueError(f"SourceMotion: joint {joint} ({self.joint_names[joint]}) has parent "
                                 f"{parent}; the root must come first and parents before children")
        num_frames = self.rotations.shape[0]
        if (self.rotations.shape != (num_frames, num_joints, 3, 3)
                or self.translations.shape != (num_frames, num_joints, 3)):
            raise ValueError(
                f"SourceMotion: rotations {tuple(self.rotations.shape)} / translations "
                f"{tuple(self.translations.shape)} do not match (T, {num_joints}, 3, 3) / (T, {num_joints}, 3)")
        self.fps = check_fps(self.fps)

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    def rest_positions(self) -> np.ndarray:
        """(J, 3) joint positions of the zero pose (root at its offset), metres."""
        return rest_positions(self.offsets, self.parents)

    def fk(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics: (global rotations (T, J, 3, 3), world positions (T, J, 3))."""
        return source_forward_kinematics(self.rotations, self.translations, self.parents)

    def rescaled(self, factor: float) -> SourceMotion:
        """The same motion with every length multiplied by ``factor``."""
        return replace(self, offsets=self.offsets * factor,
                       translations=self.translations * factor, meta=dict(self.meta))


def evenly_spaced_frames(num_frames: int, count: int) -> np.ndarray:
    """Up to ``count`` sorted, distinct frame indices spread evenly over ``num_frames``
    frames, the first and last included (int array)."""
    return np.unique(np.linspace(0, num_frames - 1, min(num_frames, count)).round().astype(int))


def source_forward_kinematics(rotations: torch.Tensor, translations: torch.Tensor,
                              parents: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """General FK: G[j] = G[p] @ R[j], x[j] = x[p] + G[p] @ t[j] (root: G = R, x = t).

    rotations: (..., J, 3, 3) local rotations R; translations: (..., J, 3) local
    translations t. Returns the global rotations G (..., J, 3, 3) and the world positions
    x (..., J, 3). (``mage.core.kinematics`` is the SMPL flavour with constant offsets.)
    """
    global_rotations = [rotations[..., 0, :, :]]
    positions = [translations[..., 0, :]]
    for joint in range(1, len(parents)):
        parent = parents[joint]
        global_rotations.append(global_rotations[parent] @ rotations[..., joint, :, :])
        positions.append(positions[parent] + (global_rotations[parent] @ translations[..., joint, :, None])[..., 0])
    return torch.stack(global_rotations, dim=-3), torch.stack(positions, dim=-2)
