"""Rest alignment: the constant rotations that put a source rig into SMPL's T-pose.

Computed once per file from the two rest poses (steps 1, 2 and the leg length of step 5
of the method in ``mage.data.retarget``); :func:`rest_alignment` returns them as a
:class:`RestAlignment`.

1. Rest frames. Every SourceMotion's zero pose has all local rotations = identity, so
   every joint frame there is parallel to the source world. The SMPL rest pose is the
   T-pose in the body frame (x left, y up, z forward). ``A`` maps the body frame to the
   source world (columns: left = up x forward, up, forward of the joint map).
2. T-pose orientation ``Q_s`` of each mapped source joint ``s`` (joint frame -> source
   world when the rig stands in SMPL's T-pose), joints taken parents first, from a
   REFERENCE pose: the zero pose, or the motion's most upright standing frame (legs
   straightest) where the zero pose is no T/A-pose. It starts from a hint ``H_s``: the
   map's ``rest_axes[s]`` if given (where the joint's local x, y, z axes point in
   the body frame in the T-pose, e.g. ``["-x", "-y", "z"]``: Character Creator bones
   point along their local +y), else the joint's rotation relative to its nearest mapped
   ancestor in the reference pose, carried along (``H_s = Q_a R_a^T R_s``; zero pose:
   ``Q_a``). The pelvis: the identity when its zero-pose frame (left from its hips, up
   along its first trunk bone, in its own axes) is within ZERO_POSE_MAX_PELVIS_DEG of the
   rig's axes (presets keep their behaviour); else the rest pose is "folded" (bones
   along a local axis, as in the Bandai Namco rig) and the pelvis frame of the standing
   frame (left from the hips, up to the neck) is turned onto SMPL's. For the LIMB joints
   (hips, knees, ankles, collars, shoulders, elbows), whose rest bone direction is a pose
   choice of the rig (T- vs A-pose, CMU's legs splayed by 20 degrees), ``Q_s`` is then
   the smallest rotation turning the source bone (to the joint mapped to the SMPL child)
   onto SMPL's bone, applied to ``H_s`` (so the hint's twist about the bone is kept); a
   bone more than ZERO_POSE_MAX_SWING_DEG off in the zero pose is aligned from the
   standing frame instead. Trunk joints (spine1-3, neck) are aligned too when more than
   TRUNK_MAX_DEG off. In a folded rest, they and the head take their rotation relative
   to the pelvis from the standing frame, which is assumed to stand straight and look
   ahead (no alignment); the legs take their frames from it too (then aligned), as the
   zero pose of such a rig does not define their twist about the bone. Outside the
   limbs, the trunk joints, the head, wrists and feet keep ``H_s``: their bone directions
   differ between rigs because joints sit at different anatomical places (SMPL's head
   joint is 5 cm in front of its neck joint, CMU's root is behind its hip joints), not
   because the pose differs. So any rest pose gives the same SMPL joint positions
   (tests/test_rig_auto.py).

From these, ``C_j = Q_s^T A`` and ``W = Rx(+90deg) A^T`` (source world -> z-up world) give
the transfer ``R_smpl[j](t) = W @ R_src[s](t) @ C_j`` of ``mage.data.retarget``, and the
T-pose leg lengths give ``root_scale``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import roma
import torch

from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS, Skeleton
from mage.data.rig_map import RigSpec
from mage.data.source_motion import SourceMotion, evenly_spaced_frames, source_forward_kinematics

# z-up world <- y-up world: Rx(+90 deg), so the source T-pose becomes ``Motion.rest``.
Y_UP_TO_Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

# Limb joints whose rest bone direction is a pose choice of the rig (T- vs A-pose, leg
# splay): their source bones are turned onto SMPL's. Trunk bones are not: their
# directions differ between rigs because joints sit at different anatomical places (SMPL's
# head joint is 5 cm in front of its neck joint, CMU's root is behind the hip joints).
ALIGNED_JOINTS: frozenset[int] = frozenset((1, 2, 4, 5, 7, 8, 13, 14, 16, 17, 18, 19))
# A limb bone more than this far from SMPL's T-pose bone in the zero pose (after its
# parents are turned into the T-pose) is aligned from a standing frame of the motion
# instead (rigs whose zero pose is not a T/A-pose: bones along their local x, folded).
ZERO_POSE_MAX_SWING_DEG = 60.0
# The zero-pose pelvis is kept as is (presets' behaviour) unless its body frame (left
# from the hips, up to the head) is further than this from the rig's axes.
ZERO_POSE_MAX_PELVIS_DEG = 30.0
# Trunk joints (spine1-3, neck) keep their rest angle to their parent (their bones differ
# between rigs by anatomy) unless their bone is more than TRUNK_MAX_DEG from SMPL's.
TRUNK_JOINTS: frozenset[int] = frozenset((3, 6, 9, 12))
TRUNK_MAX_DEG = 45.0
# When the zero-pose pelvis is not upright (a "folded" rest: bones along a local axis, as
# in the Bandai Namco rig) the trunk and the head take their rotation relative to the
# pelvis from the motion's most upright standing frame (assumed straight, looking ahead).
HEAD_AND_TRUNK: frozenset[int] = TRUNK_JOINTS | {15}
# The legs of a folded rest take their twist from that standing frame too: a bone along
# its local axis in the zero pose leaves the twist about it a convention of the rig (the
# Bandai Namco rig's right leg is mirrored, local -x along the bone, which the zero pose
# turned into a 180-degree hip twist), while in the standing frame the legs hang straight
# with the feet ahead. What stays: that frame's stance (toe-out, slight flexion) becomes
# the clip's zero twist, about 10-15 degrees and varying per clip (measured on Bandai
# against the hip-knee-ankle hinge plane; CMU, HDM05 and the dance sets agree within 1
# degree); anchoring the twist on that hinge plane would remove it.
LEG_JOINTS: frozenset[int] = frozenset((1, 2, 4, 5, 7, 8))
FROM_STANDING_WHEN_FOLDED: frozenset[int] = HEAD_AND_TRUNK | LEG_JOINTS
STANDING_CANDIDATES = 60  # frames (evenly spread over the clip) searched for the standing frame


@dataclass
class RestAlignment:
    """Per-file constants of a retargeting (all in float64 numpy).

    body_to_source: (3, 3) ``A``, body frame -> source world.
    source_to_world: (3, 3) ``W``, source world -> z-up world.
    rotation_offsets: {SMPL joint: (3, 3) ``C_j``} so that R_smpl[j] = W @ R_src[s] @ C_j.
    tpose_frames: {SMPL joint: (3, 3) ``Q_s``} source joint frame -> source world in the T-pose.
    root_scale: SMPL leg length / source leg length (T-pose), applied to the hip path.
    reference: {SMPL joint: "zero" | frame index} the pose each joint's T-pose frame was
        derived from.
    """

    body_to_source: np.ndarray
    source_to_world: np.ndarray
    rotation_offsets: dict
    tpose_frames: dict
    root_scale: float
    reference: dict = field(default_factory=dict)


def rest_alignment(source: SourceMotion, spec: RigSpec, mapped: dict[str, int],
                   skeleton: Skeleton) -> RestAlignment:
    """The constant corrections of a retargeting (module docstring).

    mapped: SMPL joint name -> source joint index (``rig_map.match_joints``), every
    required joint present. Each joint's T-pose frame Q is derived from a reference pose:
    the zero pose, or, for a limb whose zero-pose bone is more than
    ZERO_POSE_MAX_SWING_DEG from SMPL's and for the pelvis, trunk, head and legs of a
    "folded" rest, the motion's most upright standing frame; in either pose the joint
    keeps its rotation relative to its nearest mapped ancestor, then (limbs) its bone is
    turned onto SMPL's. So any rest pose gives the same SMPL joint positions. Raises
    ValueError naming the file when no reference pose gives a joint a usable frame, or
    when the rig's legs have no height in its T-pose.
    """
    aligner = _RestAligner(source, spec, mapped, skeleton)
    for joint in sorted(aligner.source_index):  # parents before children
        aligner.solve(joint)
    body_to_source = aligner.body_to_source
    # Leg length: hip-midpoint height above the feet in the T-pose, source vs SMPL.
    feet = (10, 11) if 10 in aligner.source_index and 11 in aligner.source_index else (7, 8)
    source_leg, smpl_leg = aligner.leg_height([(1, 4, 7, feet[0]), (2, 5, 8, feet[1])])
    if not source_leg > 1e-3:
        raise ValueError(f"{aligner.where}: the rig's legs have no height in its T-pose "
                         f"({source_leg:.4f} m); check the joint map")
    return RestAlignment(
        body_to_source=body_to_source, source_to_world=Y_UP_TO_Z_UP @ body_to_source.T,
        rotation_offsets={j: frame.T @ body_to_source for j, frame in aligner.tpose_frames.items()},
        tpose_frames=aligner.tpose_frames, root_scale=smpl_leg / source_leg, reference=aligner.reference_of)


# --- geometry helpers -------------------------------------------------------------------
def _swing(a: np.ndarray, b: np.ndarray, where: str) -> np.ndarray:
    """Smallest rotation (3, 3) taking direction ``a`` (3,) onto direction ``b`` (3,).
    Raises ValueError naming ``where`` when they point opposite ways (no single one)."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    sin, cos = np.linalg.norm(axis), float(a @ b)
    if sin < 1e-6 and cos < 0:
        raise ValueError(f"{where}: the rest hint points this bone opposite to SMPL's; "
                         "fix rest_axes in the joint map")
    if sin < 1e-12:
        return np.eye(3)
    rotvec = axis / sin * np.arctan2(sin, cos)
    return roma.rotvec_to_rotmat(torch.from_numpy(rotvec)).numpy()


def _smpl_children() -> list[list[int]]:
    children: list[list[int]] = [[] for _ in SMPL22_PARENTS]
    for joint, parent in enumerate(SMPL22_PARENTS):
        if parent >= 0:
            children[parent].append(joint)
    return children


def _is_ancestor(parents: tuple[int, ...], ancestor: int, joint: int) -> bool:
    while joint >= 0:
        if joint == ancestor:
            return True
        joint = parents[joint]
    return False


def _frame(left: np.ndarray, up: np.ndarray, left_handed: bool) -> np.ndarray | None:
    """(3, 3) orthonormal columns (left, up, forward) from a left and an up direction."""
    left_length = np.linalg.norm(left)
    if np.linalg.norm(up) < 1e-9 or left_length < 1e-9:
        return None
    up = up / np.linalg.norm(up)
    left = left - (left @ up) * up
    if np.linalg.norm(left) < 0.3 * left_length:
        return None  # hips along the trunk: no usable frame
    left = left / np.linalg.norm(left)
    forward = np.cross(left, up) * (-1.0 if left_handed else 1.0)
    return np.stack([left, up, forward], axis=1)


def _pelvis_frames(global_rotations: np.ndarray, positions: np.ndarray, source_index: dict, parents,
                   body_to_source: np.ndarray, smpl_rest: np.ndarray, left_handed: bool,
                   to_neck: bool = False):
    """(B, B_smpl) or None: the pelvis's frame (left, up, forward) in its OWN axes in a
    reference pose (global rotations (J, 3, 3), positions (J, 3)) - left from the right to
    the left hip, up along the first trunk bone above the pelvis - and the same frame of
    SMPL's T-pose in the source world, so that Q_pelvis = B_smpl @ B^T."""
    pelvis = source_index[0]
    left = global_rotations[pelvis].T @ (positions[source_index[1]] - positions[source_index[2]])
    path = [source_index[15]]  # the trunk from the head down to the pelvis
    while parents[path[-1]] >= 0 and path[-1] != pelvis:
        path.append(parents[path[-1]])
    top = next((k for k in reversed(path[:-1])  # the first joint clearly above the pelvis
                if np.linalg.norm(positions[k] - positions[pelvis]) > 0.25 * np.linalg.norm(left)),
               source_index[15])
    if to_neck:  # a standing frame: the whole trunk, less sensitive to joint placement
        top = next((source_index[k] for k in (12, 9, 15) if k in source_index), top)
    frame = _frame(left, global_rotations[pelvis].T @ (positions[top] - positions[pelvis]), left_handed)
    top_smpl = next((j for j, s in source_index.items() if s == top), 3)
    frame_smpl = _frame(body_to_source @ (smpl_rest[1] - smpl_rest[2]),
                        body_to_source @ (smpl_rest[top_smpl] - smpl_rest[0]), left_handed)
    return None if frame is None or frame_smpl is None else (frame, frame_smpl)


def _angle_deg(rotation: np.ndarray) -> float:
    """The rotation angle of a (3, 3) rotation matrix, degrees."""
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(rotation) - 1.0) / 2.0))))


def _standing_frame(source: SourceMotion, source_index: dict, body_to_source: np.ndarray) -> int:
    """The frame (of up to STANDING_CANDIDATES spread over the clip) whose legs hang most
    straight down."""
    frames = evenly_spaced_frames(source.num_frames, STANDING_CANDIDATES)
    _, positions = source_forward_kinematics(source.rotations[frames], source.translations[frames],
                                             source.parents)
    positions = positions.numpy()
    down = -body_to_source[:, 1]
    cost = np.zeros(len(frames))
    for a, b in ((1, 4), (4, 7), (2, 5), (5, 8), (0, 15)):
        if a in source_index and b in source_index:
            bone = positions[:, source_index[b]] - positions[:, source_index[a]]
            bone = bone / np.maximum(np.linalg.norm(bone, axis=-1, keepdims=True), 1e-12)
            cost += 1.0 - bone @ (-down if a == 0 else down)
    return int(frames[int(np.argmin(cost))])


class _RestAligner:
    """The state of :func:`rest_alignment` as it goes through the mapped SMPL joints,
    parents first: the reference poses met so far, each joint's T-pose frame
    (``tpose_frames``) and the pose it came from (``reference_of``), and whether the rest
    pose is folded."""

    def __init__(self, source: SourceMotion, spec: RigSpec, mapped: dict[str, int],
                 skeleton: Skeleton):
        self.source, self.spec = source, spec
        self.where = source.meta.get("source") or source.name or "motion"
        self.body_to_source = spec.body_to_source()
        self.smpl_rest = skeleton.rest_positions()
        self.smpl_children = _smpl_children()
        self.source_index = {SMPL22_JOINT_NAMES.index(k): v for k, v in mapped.items()}  # SMPL -> source joint
        identity = np.broadcast_to(np.eye(3), (source.num_joints, 3, 3))
        # reference poses (global rotations (J, 3, 3), positions (J, 3)): "zero", then
        # "frame" and its index
        self.reference_poses: dict = {"zero": (identity, source.rest_positions())}
        self.tpose_frames: dict[int, np.ndarray] = {}
        self.reference_of: dict[int, str | int] = {}
        self.folded = False  # the zero-pose pelvis is not upright: trunk and legs from the standing frame

    def reference_pose(self, which):
        """The reference pose ``which``: "zero", or "frame" (the most upright standing frame),
        as (global rotations (J, 3, 3), positions (J, 3))."""
        if which not in self.reference_poses:
            source = self.source
            frame = _standing_frame(source, self.source_index, self.body_to_source)
            global_rotations, positions = source_forward_kinematics(
                source.rotations[frame], source.translations[frame], source.parents)
            self.reference_poses[which] = (global_rotations.numpy(), positions.numpy())
            self.reference_poses[frame] = self.reference_poses[which]
        return self.reference_poses[which]

    def first_mapped(self, joint: int) -> int | None:
        """The first mapped SMPL joint at or below ``joint`` (breadth first)."""
        queue = [joint]
        while queue:
            k = queue.pop(0)
            if k in self.source_index:
                return k
            queue.extend(self.smpl_children[k])
        return None

    def solve(self, joint: int) -> None:
        """``tpose_frames[joint]`` and ``reference_of[joint]``: from the zero pose, or the
        standing frame where the zero pose swings the bone too far (or gives no frame);
        ValueError if neither does."""
        spec, source_index = self.spec, self.source_index
        source_joint = source_index[joint]
        name = self.source.joint_names[source_joint]
        ancestor = SMPL22_PARENTS[joint]  # the nearest SMPL ancestor already solved
        while ancestor >= 0 and ancestor not in self.tpose_frames:
            ancestor = SMPL22_PARENTS[ancestor]
        child = self.first_mapped(self.smpl_children[joint][0]) if self.smpl_children[joint] else None
        has_bone = (child is not None and source_index[child] != source_joint
                    and _is_ancestor(self.source.parents, source_joint, source_index[child]))
        candidates = ["zero", "frame"] if name not in spec.rest_axes else ["zero"]
        if self.folded and joint in FROM_STANDING_WHEN_FOLDED:
            candidates = ["frame"]  # twist about the trunk and the legs: from a standing frame
        best = None
        for which in candidates:
            global_rotations, positions = self.reference_pose(which)
            hint = self._hint_frame(joint, source_joint, name, ancestor, which, global_rotations, positions)
            if hint is None:
                continue
            bone = (global_rotations[source_joint].T @ (positions[source_index[child]] - positions[source_joint])
                    if has_bone else None)
            aligned = self._bone_aligned(joint, child, name, hint, bone, has_bone)
            if aligned is None:  # no defined smallest rotation: try the other pose
                continue
            best = (which, aligned[0])
            if aligned[1] <= ZERO_POSE_MAX_SWING_DEG or which != "zero":
                break
        if best is None:
            raise ValueError(f"{self.where}: joint {name}: its rest pose gives no usable bone "
                             "direction; check the joint map")
        which, self.tpose_frames[joint] = best
        self.reference_of[joint] = (which if which == "zero"
                                    else int(next(k for k in self.reference_poses if isinstance(k, int))))

    def _hint_frame(self, joint, source_joint, name, ancestor, which, global_rotations,
                    positions) -> np.ndarray | None:
        """The hint ``H_s``: the joint's T-pose frame in reference pose ``which`` before its
        bone is aligned; None where that pose gives none (for the pelvis, sets ``folded``)."""
        spec, body_to_source = self.spec, self.body_to_source
        if name in spec.rest_axes:  # the map's T-pose frame
            return body_to_source @ spec.rest_axes[name]
        if ancestor >= 0:  # keeps its reference-pose rotation relative to the ancestor
            return (self.tpose_frames[ancestor] @ global_rotations[self.source_index[ancestor]].T
                    @ global_rotations[source_joint])
        # the pelvis: upright from its hips and trunk bone in the reference pose
        frames = _pelvis_frames(global_rotations, positions, self.source_index, self.source.parents,
                                body_to_source, self.smpl_rest, spec.left_handed, to_neck=which != "zero")
        if frames is None:
            return None
        frame, frame_smpl = frames
        if which != "zero":
            return frame_smpl @ frame.T
        self.folded = _angle_deg(frame_smpl @ frame.T) > ZERO_POSE_MAX_PELVIS_DEG
        # folded: from the standing frame instead, upright up to the neck
        return None if self.folded else np.eye(3)

    def _bone_aligned(self, joint, child, name, hint, bone, has_bone) -> tuple[np.ndarray, float] | None:
        """(frame, swing in degrees): ``hint`` turned so that the ``bone`` (3,) to ``child``
        lies along SMPL's (limbs; trunk joints beyond TRUNK_MAX_DEG); None if the swing is ~180."""
        frame, swing = hint, 0.0
        if self.spec.align_bones and has_bone and np.linalg.norm(bone) > 1e-9 and (
                joint in ALIGNED_JOINTS or (joint in TRUNK_JOINTS and not self.folded)):
            smpl_bone = self.body_to_source @ (self.smpl_rest[child] - self.smpl_rest[joint])  # source world
            hinted_bone = hint @ bone
            swing = math.degrees(math.acos(np.clip(
                hinted_bone @ smpl_bone / np.linalg.norm(hinted_bone) / np.linalg.norm(smpl_bone), -1, 1)))
            if swing > 179.0:
                return None
            if joint in ALIGNED_JOINTS or swing > TRUNK_MAX_DEG:
                frame = _swing(hinted_bone, smpl_bone, f"{self.where}: joint {name}") @ hint
        return frame, swing

    def bone_vector(self, a: int, b: int) -> np.ndarray:
        """(3,) bone a -> b (SMPL joints) of the source in joint a's frame, in a's reference pose."""
        source_index = self.source_index
        global_rotations, positions = self.reference_pose(
            self.reference_of[a] if self.reference_of[a] == "zero" else "frame")
        return global_rotations[source_index[a]].T @ (positions[source_index[b]] - positions[source_index[a]])

    def leg_height(self, chains) -> tuple[float, float]:
        """Hip-to-foot height in the T-pose, (source, SMPL) in metres, averaged over
        ``chains`` (SMPL joints from hip to foot)."""
        body_to_source, smpl_rest = self.body_to_source, self.smpl_rest
        source_heights, smpl_heights = [], []
        for chain in chains:
            chain = [k for k in chain if k in self.source_index]
            leg = sum((body_to_source.T @ self.tpose_frames[a] @ self.bone_vector(a, b)
                       for a, b in itertools.pairwise(chain)), np.zeros(3))
            source_heights.append(-leg[1])
            smpl_heights.append(smpl_rest[chain[0]][1] - smpl_rest[chain[-1]][1])
        return float(np.mean(source_heights)), float(np.mean(smpl_heights))
