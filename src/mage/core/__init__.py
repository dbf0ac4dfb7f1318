"""The motion core: rotations, skeleton, Motion, forward kinematics, sparse tracking.

Tensor shape letters used everywhere: T frames, J joints (22), B batch, N nodes.
The shared numbers (22 joints, the 54-d condition, the node groupings) live in
``mage.core.constants``, which imports no torch; the names below are imported on first
use, so that ``import mage.core.constants`` stays torch-free too.
"""

from __future__ import annotations

from importlib import import_module

# module -> the names it provides here
_EXPORTS = {
    "mage.core.skeleton": ("SMPL22_JOINT_NAMES", "SMPL22_PARENTS", "Skeleton"),
    "mage.core.motion": ("Motion",),
    "mage.core.kinematics": ("forward_kinematics",),
    "mage.core.constants": ("TRACKED_JOINTS",),
    "mage.core.tracking": ("Tracking", "sparse_condition"),
    "mage.core.multiscale": ("ScaleHierarchy", "pool_nodes"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = list(_HOME)


def __getattr__(name):
    try:
        return getattr(import_module(_HOME[name]), name)
    except KeyError:
        raise AttributeError(f"module 'mage.core' has no attribute {name!r}") from None
