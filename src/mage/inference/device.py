"""Device poses -> SMPL joint poses in the project's frame (z-up, right-handed, metres).

A VR runtime reports the pose of each *device* (headset, controllers) in its own world
convention. The network needs the world pose of the SMPL *joints* (head = 15, left
wrist = 20, right wrist = 21) in the project's world (z-up, right-handed, as AMASS).
Two steps, in this order:

1. **Basis change** ``M`` (3x3, native world coordinates -> project coordinates), per
   coordinate ``convention`` (the CLI's ``--frame``):

   ========  ======================================  ==========================  ======
   name      native convention                       M (rows)                    det M
   ========  ======================================  ==========================  ======
   zup       z-up right-handed (AMASS, this project) identity                    +1
   openxr    y-up right-handed, -z forward           (x, -z, y): [[1,0,0],       +1
             (OpenXR, WebXR, OpenVR)                 [0,0,-1],[0,1,0]]
   unity     y-up LEFT-handed, +z forward (Unity)    (x, z, y): [[1,0,0],        -1
                                                     [0,0,1],[0,1,0]]
   ========  ======================================  ==========================  ======

   Positions: ``p' = M p``. Rotations: ``R' = M R M^T``, i.e. the device's local axes
   are re-expressed through ``M`` as well. For Unity ``M`` is a reflection; conjugating a
   proper rotation by a reflection gives a proper rotation again (det = +1; tested).
   After the change, a device at identity orientation has, in both y-up conventions,
   local axes x = right, y = forward, z = up (OpenXR: -z forward -> +y; Unity: +z
   forward -> +y).

2. **Device-to-joint offset** per device, an :class:`Offset` (rotation ``R_o`` and
   translation ``t_o``, both expressed in the converted device frame of step 1):
   ``R_joint = R' R_o`` and ``p_joint = p' + R' t_o``.

Default offsets (``DeviceConfig(convention)`` without offsets):

- ``zup``: identity / zero for all three: the "device" poses already are the SMPL
  joints' poses (data made from AMASS or from this project's ``Tracking``).
- ``openxr`` and ``unity``: the head offset is :data:`VIEW_TO_SMPL_HEAD`, the rotation
  between the camera axes of both runtimes (x right, y up, looking forward) and the
  SMPL head joint's axes (x = the person's left, y = up, z = forward); it follows from
  the two conventions alone. Its translation is zero (the SMPL head joint is a few cm
  behind and below the eyes; set it if you know it). The wrist offsets are identity /
  zero: controller grip frames differ between vendors and hands, so calibrate them
  (hold a T-pose and read the controller orientation relative to the wrist) and pass
  them explicitly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np
import torch

from mage.core import rotations as rot
from mage.core.checks import check_shape
from mage.inference.options import CONVENTIONS

FRAMES = CONVENTIONS  # the former name, as the CLI flag --frame still says
DEVICES: tuple[str, str, str] = ("head", "left", "right")

_BASIS = {
    "zup": np.eye(3),
    "openxr": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),
    "unity": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]),
}

# Camera axes after the basis change (x right, y forward, z up) -> SMPL head joint axes
# (columns: the joint's x = left = -x, y = up = +z, z = forward = +y). This equals the
# head's world rotation of an upright SMPL rest pose facing +y (Rz(180) Rx(90)).
VIEW_TO_SMPL_HEAD = np.array([[-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])


def basis(convention: str) -> np.ndarray:
    """(3, 3) matrix M taking native world coordinates of ``convention`` to project ones."""
    if convention not in _BASIS:
        raise ValueError(f"convention: unknown device convention {convention!r}; "
                         f"choose one of {', '.join(CONVENTIONS)}")
    return _BASIS[convention].copy()


@dataclass(frozen=True)
class Offset:
    """Device-to-joint offset in the converted device frame (see the module docstring).

    rotation: (4,) unit quaternion (x, y, z, w); translation: (3,) metres.
    """

    rotation: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0)
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def __post_init__(self):
        q = np.asarray(self.rotation, dtype=np.float64).reshape(-1)
        t = np.asarray(self.translation, dtype=np.float64).reshape(-1)
        if q.shape != (4,) or not np.isfinite(q).all() or np.linalg.norm(q) < 1e-8:
            raise ValueError(f"offset rotation: expected a non-zero quaternion (x, y, z, w), got {self.rotation!r}")
        if t.shape != (3,) or not np.isfinite(t).all():
            raise ValueError(f"offset translation: expected 3 finite numbers (metres), got {self.translation!r}")
        object.__setattr__(self, "rotation", tuple(float(v) for v in q / np.linalg.norm(q)))
        object.__setattr__(self, "translation", tuple(float(v) for v in t))

    @classmethod
    def from_matrix(cls, R, translation=(0.0, 0.0, 0.0)) -> "Offset":
        q = rot.matrix_to_quaternion(torch.as_tensor(np.asarray(R, dtype=np.float64)))
        return cls(tuple(q.tolist()), tuple(translation))

    @classmethod
    def parse(cls, text: str) -> "Offset":
        """Parse ``"qx,qy,qz,qw"`` or ``"qx,qy,qz,qw;tx,ty,tz"`` (command-line form)."""
        parts = text.split(";")
        try:
            q = [float(v) for v in parts[0].split(",")]
            t = [float(v) for v in parts[1].split(",")] if len(parts) > 1 else [0.0, 0.0, 0.0]
        except ValueError:
            raise ValueError(f"offset {text!r}: expected 'qx,qy,qz,qw' or 'qx,qy,qz,qw;tx,ty,tz'") from None
        if len(parts) > 2 or len(q) != 4 or len(t) != 3:
            raise ValueError(f"offset {text!r}: expected 'qx,qy,qz,qw' or 'qx,qy,qz,qw;tx,ty,tz'")
        return cls(tuple(q), tuple(t))

    def matrix(self) -> torch.Tensor:
        """(3, 3) float64 rotation."""
        return rot.quaternion_to_matrix(torch.tensor(self.rotation, dtype=torch.float64))


def default_offsets(convention: str) -> dict[str, Offset]:
    """The documented default offsets of ``convention`` (see the module docstring)."""
    basis(convention)  # validates the name
    head = Offset() if convention == "zup" else Offset.from_matrix(VIEW_TO_SMPL_HEAD)
    return {"head": head, "left": Offset(), "right": Offset()}


@dataclass(frozen=True)
class DeviceConfig:
    """How raw device poses map to joint poses: a coordinate convention (one of
    :data:`CONVENTIONS`) and per-device offsets.

    ``offsets``: a dict with any of "head", "left", "right"; missing ones take the
    convention's defaults (:func:`default_offsets`).
    """

    convention: str = "zup"
    offsets: dict[str, Offset] = field(default_factory=dict)

    @property
    def frame(self) -> str:
        """The former name of :attr:`convention` (kept for existing callers)."""
        return self.convention

    def __post_init__(self):
        defaults = default_offsets(self.convention)
        unknown = set(self.offsets) - set(DEVICES)
        if unknown:
            raise ValueError(f"offsets: unknown device(s) {sorted(unknown)}; expected {', '.join(DEVICES)}")
        object.__setattr__(self, "offsets", {d: self.offsets.get(d, defaults[d]) for d in DEVICES})

    @functools.cached_property
    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """M (3, 3), offset rotations (3, 3, 3) and translations (3, 3), float64; cached
        (the streaming hot path converts one frame at a time)."""
        M = torch.as_tensor(basis(self.convention))
        R_o = torch.stack([self.offsets[d].matrix() for d in DEVICES])  # (3, 3, 3)
        t_o = torch.tensor([self.offsets[d].translation for d in DEVICES], dtype=torch.float64)
        return M, R_o, t_o

    def to_joints(self, positions, quaternions) -> tuple[torch.Tensor, torch.Tensor]:
        """Native device poses -> joint poses in the project frame.

        positions: (..., 3, 3) metres and quaternions: (..., 3, 4) (x, y, z, w), devices
        in the order head, left, right; finite (handle lost devices before this).
        returns: rotations (..., 3, 3, 3) and positions (..., 3, 3), float64.
        """
        p = torch.as_tensor(np.asarray(positions, dtype=np.float64))
        q = torch.as_tensor(np.asarray(quaternions, dtype=np.float64))
        check_shape(p, "positions", (3, 3))
        check_shape(q, "quaternions", (3, 4))
        M, R_o, t_o = self._tensors
        # Proper for any orthogonal M (det(M)^2 = 1), so no check on this hot path;
        # tests/test_inference_device.py checks it for Unity's reflection.
        R = M @ rot.quaternion_to_matrix(q) @ M.T
        p = p @ M.T
        return R @ R_o, p + (R @ t_o[..., None])[..., 0]

    def to_devices(self, rotations, positions) -> tuple[torch.Tensor, torch.Tensor]:
        """Inverse of :meth:`to_joints`: joint poses (project frame) -> native device data.

        rotations: (..., 3, 3, 3), positions: (..., 3, 3).
        returns: positions (..., 3, 3) and quaternions (..., 3, 4) (x, y, z, w; w >= 0),
        float64, as the runtime of ``convention`` would report them.
        """
        R = torch.as_tensor(rotations, dtype=torch.float64)
        p = torch.as_tensor(positions, dtype=torch.float64)
        check_shape(R, "rotations", (3, 3, 3))
        check_shape(p, "positions", (3, 3))
        M, R_o, t_o = self._tensors
        R_dev = R @ R_o.transpose(-1, -2)  # R' in the converted device frame
        p_dev = p - (R_dev @ t_o[..., None])[..., 0]
        return p_dev @ M, rot.matrix_to_quaternion(M.T @ R_dev @ M)
