"""Sparse tracking: the head and both wrists (6-DoF), and the 54-dim network condition."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from mage.core import rotations as rot
from mage.core.checks import check_finite, check_fps, check_rotation_matrices, check_shape
from mage.core.constants import CONDITION_DIM, TRACKED_JOINTS, TRACKED_NAMES  # noqa: F401 (re-exported)


def sparse_condition(global_rotations: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The 54-dim per-frame input of AvatarPoser / AGRoL, block-major.

    global_rotations: (..., T, 3, 3, 3) tracked joints' world rotations (head, lwrist, rwrist)
    positions:        (..., T, 3, 3) their world positions, metres
    returns:          (..., T-1, 54); row t-1 describes frame t (frame 0 has no velocity),
        in the blocks of ``mage.core.constants.CONDITION_LAYOUT``:
        0:18  6D of R_t (per joint, 6 numbers each)
        18:36 6D of R_{t-1}^T R_t
        36:45 p_t
        45:54 p_t - p_{t-1} (metres per frame, not multiplied by fps)
    """
    check_shape(global_rotations, "global_rotations", (None, 3, 3, 3))
    check_shape(positions, "positions", (None, 3, 3))
    if global_rotations.shape[-4] < 2:
        raise ValueError("global_rotations: need at least 2 frames (velocities drop frame 0)")
    R_prev, R = global_rotations[..., :-1, :, :, :], global_rotations[..., 1:, :, :, :]
    p_prev, p = positions[..., :-1, :, :], positions[..., 1:, :, :]
    lead = R.shape[:-3]
    return torch.cat(
        [
            rot.matrix_to_rot6d(R).reshape(*lead, 18),
            rot.matrix_to_rot6d(R_prev.transpose(-1, -2) @ R).reshape(*lead, 18),
            p.reshape(*lead, 9),
            (p - p_prev).reshape(*lead, 9),
        ],
        dim=-1,
    )


@dataclass
class Tracking:
    """World poses of the head and both wrists over time (z-up, metres).

    rotations: (T, 3, 3, 3) joint-to-world rotations, order head, left wrist, right wrist
    positions: (T, 3, 3)
    fps: frames per second
    The rotations are those of the SMPL joints (head, wrists), not of the devices: a
    device's own frame is converted by :mod:`mage.inference.device` before this.
    """

    rotations: torch.Tensor
    positions: torch.Tensor
    fps: float

    def __post_init__(self):
        self.rotations = torch.as_tensor(self.rotations)
        self.positions = torch.as_tensor(self.positions, dtype=self.rotations.dtype)
        if self.rotations.dim() != 4 or self.positions.dim() != 3:
            raise ValueError(
                f"Tracking: expected rotations (T, 3, 3, 3) and positions (T, 3, 3), got "
                f"{tuple(self.rotations.shape)} and {tuple(self.positions.shape)}"
            )
        check_shape(self.rotations, "rotations", (3, 3, 3))
        check_shape(self.positions, "positions", (3, 3))
        if self.rotations.shape[0] != self.positions.shape[0]:
            raise ValueError(
                f"positions: {self.positions.shape[0]} frames but rotations have {self.rotations.shape[0]}"
            )
        check_rotation_matrices(self.rotations, "rotations")
        check_finite(self.positions, "positions")
        self.fps = check_fps(self.fps)

    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    def __len__(self) -> int:
        return self.num_frames

    def __getitem__(self, index: slice) -> "Tracking":
        if not isinstance(index, slice):
            raise TypeError("Tracking supports slicing by frames only")
        out = replace(self, rotations=self.rotations[index], positions=self.positions[index])
        if (index.step or 1) != 1:
            out.fps = self.fps / index.step
        return out

    @classmethod
    def from_motion(cls, motion) -> "Tracking":
        fk = motion.fk()
        idx = list(TRACKED_JOINTS)
        return cls(fk.global_rotations[:, idx], fk.positions[:, idx], motion.fps)

    @classmethod
    def from_arrays(cls, positions, quaternions, fps: float) -> "Tracking":
        """Raw device data already in the z-up world: positions (T, 3, 3) metres,
        quaternions (T, 3, 4) as (x, y, z, w), order head, left wrist, right wrist."""
        p = torch.as_tensor(np.asarray(positions, dtype=np.float32))
        q = torch.as_tensor(np.asarray(quaternions, dtype=np.float32))
        check_shape(q, "quaternions", (3, 4))
        check_finite(q, "quaternions")
        return cls(rot.quaternion_to_matrix(q), p, fps)

    def condition(self) -> torch.Tensor:
        """(T-1, 54) network condition (see :func:`sparse_condition`)."""
        return sparse_condition(self.rotations, self.positions)

    def head_transform(self) -> torch.Tensor:
        """(T, 4, 4) head-to-world transforms."""
        T = self.num_frames
        M = torch.eye(4, dtype=self.rotations.dtype).repeat(T, 1, 1)
        M[:, :3, :3] = self.rotations[:, 0]
        M[:, :3, 3] = self.positions[:, 0]
        return M
