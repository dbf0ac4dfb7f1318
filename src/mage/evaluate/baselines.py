"""Trivial predictors that give the metrics a scale (same predict_fn form as a model).

Both output one fixed body pose per frame and turn it to face where the tracked head
faces (its heading, i.e. yaw about the world's vertical z axis); placement by the head
(see :mod:`mage.evaluate.protocol`) then puts it at the right place.

- ``copy-tracked``: the rest (T-) pose, upright (root = +90 deg about x, as
  :meth:`mage.core.Motion.rest`), root heading = head heading. Nothing is learned.
- ``mean-pose``: the chordal mean of each joint's local rotation over all frames of the
  training split (``roma.special_procrustes`` of the summed matrices). The root is
  averaged in the head's heading frame, ``Rz(-heading(head)) @ R_root``, and predicted
  as ``Rz(heading(head)) @ mean``: the mean tilt of the pelvis and its mean yaw
  relative to the head, turned to the tracked heading.

Heading of a rotation R: the yaw ``atan2(f_y, f_x)`` of its forward axis ``f = R @ e_z``
(z is forward in the SMPL body frame). The head's rotation is read from the condition's
first 6D block (frame t's head rotation).
"""

from __future__ import annotations

import math

import roma
import torch
from tqdm.auto import tqdm

from mage.core import rotations as rot
from mage.core.checks import check_shape
from mage.core.constants import CONDITION_DIM, NUM_JOINTS
from mage.evaluate import BASELINES
from mage.evaluate.protocol import PredictFn


def heading(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) body-to-world rotations -> (...) yaw (radians) of the forward axis R e_z."""
    check_shape(R, "R", (3, 3))
    forward = R[..., :, 2]
    return torch.atan2(forward[..., 1], forward[..., 0])


def head_rotations(condition: torch.Tensor) -> torch.Tensor:
    """(T, 54) condition -> (T, 3, 3) world rotations of the head (its first 6D block)."""
    check_shape(condition, "condition", (CONDITION_DIM,))
    return rot.rot6d_to_matrix(condition[..., 0:6].double())


def _yaw(angle: torch.Tensor) -> torch.Tensor:
    """(...) angles -> (..., 3, 3) float64 rotations about the world z axis."""
    angle = torch.as_tensor(angle, dtype=torch.float64)
    c, s, z, o = angle.cos(), angle.sin(), torch.zeros_like(angle), torch.ones_like(angle)
    return torch.stack([c, -s, z, s, c, z, z, z, o], dim=-1).reshape(*angle.shape, 3, 3)


def upright_canonical_root() -> torch.Tensor:
    """(3, 3) upright root (+90 deg about x) turned to heading 0 (facing world +x)."""
    up = rot.rotation_about_axis(math.pi / 2, "x").double()
    return _yaw(-heading(up)) @ up


class HeadingPosePredictor:
    """Predict one fixed pose (22, 3, 3) every frame, its root turned to the head's heading.

    ``pose[0]`` is the root orientation in the heading frame (heading 0); joints 1..21
    are local rotations used as they are.
    """

    def __init__(self, pose: torch.Tensor):
        check_shape(pose, "pose", (NUM_JOINTS, 3, 3))
        if pose.dim() != 3:
            raise ValueError(f"pose: expected shape ({NUM_JOINTS}, 3, 3), got {tuple(pose.shape)}")
        self.pose = pose.double()

    def __call__(self, condition: torch.Tensor, head_positions: torch.Tensor) -> torch.Tensor:
        """(T, 54), (T, 3) -> (T, 22, 3, 3)."""
        yaw = heading(head_rotations(condition.cpu()))  # (T,)
        out = self.pose.expand(yaw.shape[0], NUM_JOINTS, 3, 3).clone()
        out[:, 0] = _yaw(yaw) @ self.pose[0]
        return out


def copy_tracked() -> HeadingPosePredictor:
    """The rest pose, upright, facing where the head faces."""
    pose = torch.eye(3, dtype=torch.float64).repeat(NUM_JOINTS, 1, 1)
    pose[0] = upright_canonical_root()
    return HeadingPosePredictor(pose)


def fit_mean_pose(dataset, split: str = "train", progress: bool = True) -> torch.Tensor:
    """(22, 3, 3) chordal mean local rotations over every frame of ``split`` (one split,
    or several joined by "+", e.g. "train+val": the data a refit model trained on).

    Joint 0 is the root in the head's heading frame (see module docstring).
    """
    ids = [i for name in split.split("+") for i in dataset.ids(name)]
    if not ids:
        raise ValueError(
            f"mean-pose: split {split!r} has no sequences to average (choose the training "
            "split with --train-split)"
        )
    total = torch.zeros(NUM_JOINTS, 3, 3, dtype=torch.float64)
    for sid in tqdm(ids, desc=f"mean pose [{split}]", unit="seq", disable=not progress):
        rec = dataset.load(sid)
        R = rot.rot6d_to_matrix(torch.as_tensor(rec.rot6d).double())  # (T, 22, 3, 3)
        check_shape(R, f"{sid}: rot6d", (NUM_JOINTS, 3, 3))
        yaw = heading(head_rotations(torch.as_tensor(rec.condition)))  # (T,)
        total[0] += (_yaw(-yaw) @ R[:, 0]).sum(0)
        total[1:] += R[:, 1:].sum(0)
    return roma.special_procrustes(total)


def mean_pose(dataset, split: str = "train", progress: bool = True) -> HeadingPosePredictor:
    """The training split's mean pose, facing where the head faces."""
    return HeadingPosePredictor(fit_mean_pose(dataset, split, progress))


def make_baseline(name: str, dataset=None, train_split: str = "train",
                  progress: bool = True) -> PredictFn:
    """A baseline predict_fn by name (one of :data:`BASELINES`); mean-pose needs ``dataset``."""
    if name == "copy-tracked":
        return copy_tracked()
    if name == "mean-pose":
        if dataset is None:
            raise ValueError("mean-pose: needs the data set to average its training split")
        return mean_pose(dataset, train_split, progress)
    raise ValueError(f"baseline: expected one of {', '.join(BASELINES)}, got {name!r}")
