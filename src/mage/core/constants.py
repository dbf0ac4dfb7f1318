"""The numbers the whole package shares: the SMPL body, the sparse condition, the scales.

Pure Python (no torch, no numpy), so that torch-free modules (``mage.model.config``)
import them too. Every other module takes these names from here instead of writing the
numbers again.
"""

from __future__ import annotations

# Frames per second of the protocol: the processed data set (AMASS by its stride), the
# models' training and running rate.
PROTOCOL_FPS = 60.0

# --- the SMPL body --------------------------------------------------------------------
NUM_JOINTS = 22  # SMPL body joints (no hands), J everywhere
ROT6D_DIM = 6  # a rotation in the 6D convention of mage.core.rotations

# SMPL joints a headset + two controllers observe, in the protocol's order.
HEAD_JOINT = 15
LEFT_WRIST_JOINT = 20
RIGHT_WRIST_JOINT = 21
TRACKED_JOINTS: tuple[int, int, int] = (HEAD_JOINT, LEFT_WRIST_JOINT, RIGHT_WRIST_JOINT)
TRACKED_NAMES: tuple[str, str, str] = ("head", "left_wrist", "right_wrist")

# --- the sparse condition (mage.core.tracking.sparse_condition) -----------------------
# One row per frame, block-major over the 3 tracked joints:
CONDITION_LAYOUT: dict[str, slice] = {
    "rot6d": slice(0, 18),  # 6D of each joint's world rotation R_t
    "rot_velocity6d": slice(18, 36),  # 6D of R_{t-1}^T R_t
    "position": slice(36, 45),  # p_t, metres
    "position_delta": slice(45, 54),  # p_t - p_{t-1}, metres per frame
}
CONDITION_DIM = 54

# --- the scales of the multi-stage model (mage-method.md) -----------------------------
SCALE_ORDER = ("S0", "S1", "S2", "S3")  # coarse to fine; S3 = the 22 joints themselves
Groups = tuple[tuple[int, ...], ...]
S0_GROUPS: Groups = (tuple(range(NUM_JOINTS)),)  # 1 node
S1_GROUPS: Groups = (  # 6 nodes: torso, head, left arm, right arm, left leg, right leg
    (0, 3, 6, 9), (12, 15), (13, 16, 18, 20), (14, 17, 19, 21), (1, 4, 7, 10), (2, 5, 8, 11),
)
S2_GROUPS: Groups = (  # 11 nodes, each inside one S1 node
    (0,), (3, 6, 9), (12, 15), (13, 16), (18, 20), (14, 17), (19, 21),
    (1, 4), (7, 10), (2, 5), (8, 11),
)
S3_GROUPS: Groups = tuple((j,) for j in range(NUM_JOINTS))
DEFAULT_GROUPS: dict[str, Groups] = {"S0": S0_GROUPS, "S1": S1_GROUPS, "S2": S2_GROUPS}
NODE_DIM = 9  # a coarse node's state: 6D rotation + 3D centroid (mage.core.multiscale)
