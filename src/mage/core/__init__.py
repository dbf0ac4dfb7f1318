"""The motion core: rotations, skeleton, Motion, forward kinematics, sparse tracking.

Tensor shape letters used everywhere: T frames, J joints (22), B batch, N nodes.
"""

from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS, Skeleton
from mage.core.motion import Motion
from mage.core.kinematics import forward_kinematics
from mage.core.tracking import TRACKED_JOINTS, Tracking, sparse_condition
from mage.core.multiscale import ScaleHierarchy, pool_nodes

__all__ = [
    "SMPL22_JOINT_NAMES",
    "SMPL22_PARENTS",
    "Skeleton",
    "Motion",
    "forward_kinematics",
    "TRACKED_JOINTS",
    "Tracking",
    "sparse_condition",
    "ScaleHierarchy",
    "pool_nodes",
]
