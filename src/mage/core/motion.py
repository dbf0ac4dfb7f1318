"""The one motion type every importer produces and every consumer uses.

A ``Motion`` is SMPL-style: local joint rotations + a root translation + a frame rate +
the skeleton they animate. World frame is z-up, right-handed, metres (as AMASS): the
root rotation maps the y-up SMPL body frame into the world, so an upright person has a
root rotation of about +90 degrees about x.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from mage.core import rotations as rot
from mage.core.atomic import atomic_save_npz
from mage.core.checks import check_finite, check_fps, check_rotation_matrices, check_shape
from mage.core.kinematics import FKOutput, forward_kinematics
from mage.core.skeleton import Skeleton

# Reflection used by mirror(): x -> -x. In the SMPL body frame x is the body's left, so
# conjugating a local rotation by it swaps left and right; in the world it is the plane
# x = 0. Conjugation by a reflection is its own inverse, so mirroring twice is exact.
_FLIP_X = torch.diag(torch.tensor([-1.0, 1.0, 1.0]))


@dataclass
class Motion:
    """T frames of a skeleton's motion.

    rotations: (T, J, 3, 3) local rotation matrices; joint 0 = root orientation in world.
    trans: (T, 3) SMPL translation, metres: pelvis position = trans + skeleton.offsets[0].
    fps: frames per second (> 0).
    """

    rotations: torch.Tensor
    trans: torch.Tensor
    fps: float
    skeleton: Skeleton = field(default_factory=Skeleton.smpl22)
    name: str = ""
    meta: dict = field(default_factory=dict)  # free-form provenance (source file, rig, ...)

    def __post_init__(self):
        J = self.skeleton.num_joints
        self.rotations = torch.as_tensor(self.rotations)
        self.trans = torch.as_tensor(self.trans, dtype=self.rotations.dtype)
        if self.rotations.dim() != 4:
            raise ValueError(f"rotations: expected shape (T, {J}, 3, 3), got {tuple(self.rotations.shape)}")
        check_shape(self.rotations, "rotations", (J, 3, 3))
        check_shape(self.trans, "trans", (3,))
        if self.trans.shape[0] != self.rotations.shape[0] or self.trans.dim() != 2:
            raise ValueError(
                f"trans: expected shape ({self.rotations.shape[0]}, 3) to match rotations, "
                f"got {tuple(self.trans.shape)}"
            )
        check_rotation_matrices(self.rotations, "rotations")
        check_finite(self.trans, "trans")
        self.fps = check_fps(self.fps)

    # --- constructors -------------------------------------------------------------
    @classmethod
    def from_axis_angle(cls, poses, trans, fps, skeleton: Skeleton | None = None, **kw) -> "Motion":
        """poses: (T, J*3) or (T, J, 3) axis-angle (SMPL/AMASS layout); trans: (T, 3)."""
        skeleton = skeleton or Skeleton.smpl22()
        poses = torch.as_tensor(np.asarray(poses), dtype=torch.float32)
        J = skeleton.num_joints
        if poses.dim() == 2:
            if poses.shape[1] != J * 3:
                raise ValueError(f"poses: expected (T, {J * 3}) or (T, {J}, 3), got {tuple(poses.shape)}")
            poses = poses.reshape(-1, J, 3)
        check_finite(poses, "poses")
        return cls(rot.axis_angle_to_matrix(poses), torch.as_tensor(np.asarray(trans), dtype=torch.float32),
                   fps, skeleton, **kw)

    @classmethod
    def rest(cls, num_frames: int, fps: float = 60.0, skeleton: Skeleton | None = None,
             upright: bool = True) -> "Motion":
        """A motionless rest (T-) pose; ``upright`` turns the y-up body into the z-up world."""
        skeleton = skeleton or Skeleton.smpl22()
        R = torch.eye(3).expand(num_frames, skeleton.num_joints, 3, 3).clone()
        if upright:
            R[:, 0] = rot.rotation_about_axis(torch.tensor(np.pi / 2), "x")
        return cls(R, torch.zeros(num_frames, 3), fps, skeleton)

    # --- basic properties -----------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.rotations.shape[0]

    def __len__(self) -> int:
        return self.num_frames

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    def fk(self) -> FKOutput:
        return forward_kinematics(self.rotations, self.trans, self.skeleton)

    def joint_positions(self) -> torch.Tensor:
        """(T, J, 3) world positions."""
        return self.fk().positions

    def global_rotations(self) -> torch.Tensor:
        """(T, J, 3, 3) joint-to-world rotations."""
        return self.fk().global_rotations

    def axis_angle(self) -> torch.Tensor:
        """(T, J, 3) local rotations as rotation vectors."""
        return rot.matrix_to_axis_angle(self.rotations)

    def rot6d(self) -> torch.Tensor:
        """(T, J, 6) local rotations in the community 6D convention."""
        return rot.matrix_to_rot6d(self.rotations)

    def to(self, dtype=None, device=None) -> "Motion":
        return replace(self, rotations=self.rotations.to(device=device, dtype=dtype),
                       trans=self.trans.to(device=device, dtype=dtype))

    # --- editing ------------------------------------------------------------------------
    def __getitem__(self, index: slice) -> "Motion":
        """Frame slicing, ``motion[10:100]`` (steps allowed, ``motion[::2]``)."""
        if not isinstance(index, slice):
            raise TypeError("Motion supports slicing by frames only, e.g. motion[10:100]")
        out = replace(self, rotations=self.rotations[index], trans=self.trans[index])
        step = index.step or 1
        if step != 1:
            out.fps = self.fps / step
        return out

    def resample(self, target_fps: float) -> "Motion":
        """Change the frame rate.

        An integer ratio (e.g. 120 -> 60) takes every n-th frame, as the AMASS protocol
        does; any other ratio interpolates: slerp for rotations, linear for translation.
        """
        target_fps = check_fps(target_fps, "target_fps")
        ratio = self.fps / target_fps
        if abs(ratio - round(ratio)) < 1e-6 and round(ratio) >= 1:
            return self[:: int(round(ratio))]
        n_out = int(np.floor((self.num_frames - 1) * target_fps / self.fps + 1e-9)) + 1
        t = torch.arange(n_out, dtype=torch.float64) * (self.fps / target_fps)
        i0 = t.floor().long().clamp(max=self.num_frames - 1)
        i1 = (i0 + 1).clamp(max=self.num_frames - 1)
        w = (t - i0.double()).to(self.rotations.dtype)
        R = rot.slerp_matrices(self.rotations[i0], self.rotations[i1], w[:, None].expand(-1, self.skeleton.num_joints))
        tr = self.trans[i0] * (1 - w[:, None]) + self.trans[i1] * w[:, None]
        return replace(self, rotations=R, trans=tr, fps=target_fps)

    def mirror(self) -> "Motion":
        """Left/right mirror image (data augmentation); ``m.mirror().mirror()`` == ``m``.

        Local rotations are conjugated by the body-frame reflection x -> -x and swapped
        between left and right joints; the root is reflected by the world plane x = 0.
        Positions mirror exactly for a symmetric skeleton.
        """
        F = _FLIP_X.to(self.rotations)
        R = F @ self.rotations[:, self.skeleton.mirror_map()] @ F
        off0 = torch.tensor(self.skeleton.offsets[0], dtype=self.trans.dtype)
        tr = (self.trans + off0) @ F.T - off0
        return replace(self, rotations=R, trans=tr)

    def rotate_about_vertical(self, angle: float) -> "Motion":
        """Rotate the whole motion by ``angle`` radians about the world z axis (through 0)."""
        Rz = rot.rotation_about_axis(torch.tensor(float(angle)), "z").to(self.rotations)
        R = self.rotations.clone()
        R[:, 0] = Rz @ R[:, 0]
        off0 = torch.tensor(self.skeleton.offsets[0], dtype=self.trans.dtype)
        tr = (self.trans + off0) @ Rz.T - off0
        return replace(self, rotations=R, trans=tr)

    # --- the project's own file format ------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the project's npz (atomic): rotations as axis-angle, trans, fps, skeleton."""
        atomic_save_npz(
            path,
            format=np.array("mage-motion-v1"),
            poses=self.axis_angle().reshape(self.num_frames, -1).double().numpy(),
            trans=self.trans.double().numpy(),
            fps=np.array(self.fps),
            skeleton=np.array(json.dumps(self.skeleton.to_dict())),
            name=np.array(self.name),
        )

    @classmethod
    def load(cls, path: str | Path) -> "Motion":
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as f:
                if "format" not in f.files or str(f["format"]) != "mage-motion-v1":
                    raise ValueError(f"{path}: not a MAGE motion file (no format='mage-motion-v1')")
                skeleton = Skeleton.from_dict(json.loads(str(f["skeleton"])))
                return cls.from_axis_angle(f["poses"], f["trans"], float(f["fps"]), skeleton,
                                           name=str(f["name"]), meta={"source": str(path)})
        except (OSError, KeyError, json.JSONDecodeError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(f"{path}: cannot read MAGE motion file ({err})") from None
