"""Retargeting: a source-rig motion (any BVH / ASF skeleton) onto SMPL-22.

Importers (``mage.data.bvh``, ``mage.data.asfamc``) read a file into a
:class:`~mage.data.source_motion.SourceMotion` (the file's own joint tree, metres, the
file's own world axes); :func:`retarget` turns it into a :class:`mage.core.Motion` on the
DEFAULT SMPL skeleton (``Skeleton.smpl22()``), z-up world, with ``motion.meta["rig"]``
naming the joint map (``mage.data.rig_map``: presets, files, ``rig="auto"``).

Method (all corrections are computed once per file from the two rest poses):

1.-2. Rest frames and the T-pose orientation ``Q_s`` of each mapped source joint, with
   ``A`` (body frame -> source world): ``mage.data.rest_alignment``.
3. Transfer of GLOBAL orientations, so twist is kept:
   ``R_smpl[j](t) = W @ R_src[s](t) @ C_j`` with ``C_j = Q_s^T A`` and ``W`` the source
   world -> z-up world rotation (``W = Rx(+90deg) A^T``: the source T-pose becomes
   ``Motion.rest``). Then local rotations follow from the SMPL parents.
4. SMPL joints the source lacks: along the spine chain pelvis-spine1-spine2-spine3-neck-
   head, the relative rotation between the nearest mapped joints below and above is
   distributed evenly (geodesic interpolation) over the missing ones; any other missing
   joint (collars, feet) copies its parent's global orientation (local = identity).
5. Translation: the midpoint of the SMPL hips follows the midpoint of the source hips
   (metres, z-up), scaled about the world origin by ``root_scale`` = SMPL leg length /
   source leg length (each the T-pose height of the hip midpoint above the foot joints,
   ankles when feet are not mapped). This is the usual root-motion rule of retargeting:
   strides shrink with the legs, so feet do not slide, and feet standing on the source's
   floor (height 0) stand on the floor z = 0 with SMPL's legs. Two retargets of one
   performance onto characters of different sizes (CMU ASF vs Character Creator) thus
   give the same SMPL trajectory.
6. Units and axes: a BVH whose unit was guessed gets the unit (m, cm, mm, inch, CMU
   units, or the map's ``scale``) that makes the mapped body closest to SMPL's size; a
   preset matched by names whose up axis or handedness disagrees clearly with the motion
   takes the motion's. Leading frames ending in a jump no person makes in one frame (a
   calibration T-pose, MAX_JOINT_SPEED_M_S) are dropped with a warning.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import torch

from mage.core import rotations as rot
from mage.core.constants import NUM_JOINTS
from mage.core.kinematics import local_from_global
from mage.core.motion import Motion
from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS, Skeleton
from mage.data import rig_auto
from mage.data.rest_alignment import RestAlignment, rest_alignment
from mage.data.rig_map import REQUIRED_JOINTS, RigSpec, match_joints, resolve_rig, rig_to_dict
from mage.data.source_motion import SourceMotion, evenly_spaced_frames, source_forward_kinematics

logger = logging.getLogger(__name__)

SPINE_CHAIN: tuple[int, ...] = (0, 3, 6, 9, 12, 15)  # pelvis, spine1-3, neck, head
# Leading frames that jump further than a person can move in one frame (a calibration
# T-pose the converter put first, as in cgspeed's CMU BVH files) are dropped: a mapped
# joint moving more than MAX_JOINT_SPEED_M_S, and more than MIN_JUMP_M, between frames.
MAX_JOINT_SPEED_M_S = 25.0
MIN_JUMP_M = 0.3
MAX_LEADING_DROP = 10  # only the first frames are examined
AXES_OVERRIDE_CLARITY = 0.7  # a preset's axes are replaced only by a clear geometry


def retarget(source: SourceMotion, rig="auto", name: str | None = None,
             drop_calibration: bool = True) -> Motion:
    """Retarget ``source`` onto the default SMPL-22 skeleton (method: module docstring).

    rig: "auto" (best-matching preset, else an automatic map from the skeleton, see
        :func:`mage.data.rig_map.auto_rig`; logged and stored in meta["rig"]), a preset
        name, a JSON/YAML joint-map path, or a :class:`~mage.data.rig_map.RigSpec`.
    drop_calibration: drop leading frames that end in an impossible jump (a calibration
        T-pose; a warning says how many; meta["dropped_leading_frames"]).
    Returns a Motion (float32, z-up, metres) at the source's frame rate; meta holds the
    joint map ("joint_map"), axes ("axes"), unit ("unit") and, for automatic maps,
    "rig_confidence". Raises ValueError naming the file for joints it cannot map.
    """
    where = source.meta.get("source") or source.name or "motion"
    spec, auto = resolve_rig(rig, source.joint_names, where, source=source)
    spec, source = _with_unit(spec, source)
    mapped = _required_joints(spec, source, where)
    # (T, Jk, 3, 3), (T, Jk, 3) over the Jk kept joints; source joint -> index among them
    source_rotations, source_positions, kept_index = _mapped_fk(source, mapped)
    if auto and spec.name != "auto":  # a preset found by names: are its axes the file's?
        spec = _checked_axes(spec, source.rest_positions(), mapped, source_positions,
                             {k: kept_index[v] for k, v in mapped.items()})
    skeleton = Skeleton.smpl22()
    alignment = rest_alignment(source, spec, mapped, skeleton)
    dropped = leading_calibration_frames(source_positions[:, [kept_index[v] for v in mapped.values()]],
                                         source.fps) if drop_calibration else 0
    if dropped:
        logger.warning("%s: dropped the first %d frame(s): a jump no person makes in one "
                       "frame (a calibration pose)", where, dropped)
        source_rotations, source_positions = source_rotations[dropped:], source_positions[dropped:]
    source_to_world = torch.from_numpy(alignment.source_to_world)
    source_of_smpl = {SMPL22_JOINT_NAMES.index(k): kept_index[v] for k, v in mapped.items()}
    global_rotations = _smpl_global_rotations(source_rotations, source_of_smpl, alignment)
    local = local_from_global(global_rotations, SMPL22_PARENTS)
    # Step 5: the SMPL hip midpoint follows the source hip midpoint.
    hips_source = 0.5 * (source_positions[:, source_of_smpl[1]]
                         + source_positions[:, source_of_smpl[2]]) @ source_to_world.T
    hips_smpl = torch.tensor(0.5 * (skeleton.offsets[1] + skeleton.offsets[2]))
    pelvis = alignment.root_scale * hips_source - (global_rotations[:, 0] @ hips_smpl[:, None])[..., 0]
    translation = pelvis - torch.tensor(skeleton.offsets[0])
    meta = _retarget_meta(source, spec, auto, mapped, dropped)
    return Motion(local.float(), translation.float(), source.fps, skeleton,
                  name=source.name if name is None else name, meta=meta)


def leading_calibration_frames(positions: torch.Tensor, fps: float) -> int:
    """How many leading frames of joint paths ``positions`` (T, J, 3), metres, end in a
    jump no human makes in one frame, followed by MAX_LEADING_DROP smooth frames (0 if
    none). Only the first MAX_LEADING_DROP frames may be dropped."""
    num_frames = positions.shape[0]
    if num_frames < 3:
        return 0
    n = min(2 * MAX_LEADING_DROP, num_frames - 1)
    jump = (positions[1:n + 1] - positions[:n]).norm(dim=-1).amax(dim=-1)  # (n,): frame i -> i + 1
    bad = (jump > MIN_JUMP_M) & (jump * fps > MAX_JOINT_SPEED_M_S)
    if not bool(bad[:MAX_LEADING_DROP].any()):
        return 0
    k = int(torch.nonzero(bad[:MAX_LEADING_DROP]).max()) + 1
    # Only a jump followed by smooth motion is a calibration pose (noise keeps jumping).
    return 0 if bool(bad[k:k + MAX_LEADING_DROP].any()) or k >= num_frames - 1 else k


def _with_unit(spec: RigSpec, source: SourceMotion) -> tuple[RigSpec, SourceMotion]:
    """Where the file's scale was guessed: the unit from the mapped body's size (presets)
    and the source rescaled to the map's own scale."""
    if spec.name != "auto" and source.meta.get("scale_guessed"):
        mapped = match_joints(spec, source.joint_names)
        if all(k in mapped for k in REQUIRED_JOINTS):  # the unit from the body's size
            spec = _unit_from_size(spec, source, mapped)
    if spec.unit not in ("", "given") and spec.scale is not None and source.meta.get("scale_guessed"):
        factor = spec.scale / float(source.meta["scale"])
        if abs(factor - 1.0) > 1e-9:
            source = source.rescaled(factor)
            source.meta["scale"] = spec.scale
    return spec, source


def _required_joints(spec: RigSpec, source: SourceMotion, where: str) -> dict[str, int]:
    """SMPL joint -> source joint of the map; ValueError naming the required ones missing."""
    mapped = match_joints(spec, source.joint_names)
    missing = [f"{k} -> {spec.joints[k]}" for k in REQUIRED_JOINTS if k not in mapped]
    if missing:
        raise ValueError(f"{where}: rig {spec.name!r} needs joints this file lacks: "
                         f"{', '.join(missing)}")
    logger.debug("%s: rig %r, %d of %d mapped joints found", where, spec.name, len(mapped),
                 len(spec.joints))
    return mapped


def _mapped_fk(source: SourceMotion, mapped: dict[str, int]
               ) -> tuple[torch.Tensor, torch.Tensor, dict[int, int]]:
    """Source FK restricted to the mapped joints and their ancestors (not the fingers):
    (global rotations (T, Jk, 3, 3), positions (T, Jk, 3), source joint -> index among
    the Jk kept)."""
    needed = set()
    for joint in mapped.values():
        while joint >= 0 and joint not in needed:
            needed.add(joint)
            joint = source.parents[joint]
    keep = sorted(needed)
    kept_index = {joint: k for k, joint in enumerate(keep)}
    global_rotations, positions = source_forward_kinematics(
        source.rotations[:, keep], source.translations[:, keep],
        tuple(-1 if source.parents[joint] < 0 else kept_index[source.parents[joint]] for joint in keep))
    return global_rotations, positions, kept_index


def _smpl_global_rotations(source_rotations: torch.Tensor, source_of_smpl: dict[int, int],
                           alignment: RestAlignment) -> torch.Tensor:
    """SMPL global rotations (T, 22, 3, 3) from the source's (T, Jk, 3, 3):
    R_smpl[j] = W @ R_src[s] @ C[j] for the mapped joints (``source_of_smpl``: SMPL
    joint -> source index); step 4 fills the others (spine by slerp, the rest from the parent)."""
    num_frames = source_rotations.shape[0]
    source_to_world = torch.from_numpy(alignment.source_to_world)
    global_rotations = torch.empty(num_frames, NUM_JOINTS, 3, 3, dtype=torch.float64)
    have = sorted(source_of_smpl)
    offsets = torch.from_numpy(np.stack([alignment.rotation_offsets[j] for j in have]))
    global_rotations[:, have] = source_to_world @ source_rotations[:, [source_of_smpl[j] for j in have]] @ offsets
    for k, joint in enumerate(SPINE_CHAIN):
        if joint in source_of_smpl:
            continue
        below = max(i for i in range(k) if SPINE_CHAIN[i] in source_of_smpl)
        above = min(i for i in range(k + 1, len(SPINE_CHAIN)) if SPINE_CHAIN[i] in source_of_smpl)
        weight = torch.full((num_frames,), (k - below) / (above - below), dtype=torch.float64)
        global_rotations[:, joint] = rot.slerp_matrices(global_rotations[:, SPINE_CHAIN[below]],
                                                        global_rotations[:, SPINE_CHAIN[above]], weight)
    for joint in range(NUM_JOINTS):
        if joint not in source_of_smpl and joint not in SPINE_CHAIN:
            global_rotations[:, joint] = global_rotations[:, SMPL22_PARENTS[joint]]
    return global_rotations


def _retarget_meta(source: SourceMotion, spec: RigSpec, auto: bool, mapped: dict[str, int],
                   dropped: int) -> dict:
    """The source's meta plus the rig, joint map, axes and unit used."""
    meta = dict(source.meta)
    meta.update(rig=spec.name, rig_auto=auto,
                joint_map={k: source.joint_names[mapped[k]] for k in SMPL22_JOINT_NAMES if k in mapped},
                axes=f"up {spec.up}, forward {spec.forward}, "
                     f"{'left' if spec.left_handed else 'right'}-handed",
                unit=spec.unit or _unit_name(source.meta.get("scale")),
                rig_axes=_rig_axes(spec, source))
    if spec.confidence is not None:
        meta["rig_confidence"] = spec.confidence
    if dropped:
        meta["dropped_leading_frames"] = dropped
    return meta


def _unit_from_size(spec: RigSpec, source: SourceMotion, mapped: dict[str, int]) -> RigSpec:
    """``spec`` with the unit (of ``rig_auto.UNITS`` and the map's own ``scale``) that
    makes the mapped body closest to SMPL's size (module ``rig_auto``, step 4)."""
    size = rig_auto.chain_size(source.rest_positions(), source.parents, mapped) / float(source.meta["scale"])
    extra = {} if spec.scale is None else {f"{spec.name} ({spec.scale:g} m)": spec.scale}
    unit, scale = rig_auto.choose_unit(size, extra)
    return replace(spec, scale=scale, unit=unit)


def _checked_axes(spec: RigSpec, rest: np.ndarray, mapped_rest: dict[str, int], positions: torch.Tensor,
                  mapped_positions: dict[str, int]) -> RigSpec:
    """A preset matched by joint names, with its up axis and handedness replaced by the
    file's own (``rig_auto.detect_axes``) where they disagree clearly (a z-up export of a
    y-up rig). rest: (J, 3) zero pose, used when it stands (a T/A-pose rig); else the
    joint paths ``positions`` (T, Jk, 3). mapped_rest / mapped_positions: SMPL joint ->
    index in each."""
    if rig_auto.zero_pose_stands(rest, mapped_rest):
        poses, mapped = rest[None], mapped_rest
    else:
        frames = evenly_spaced_frames(positions.shape[0], rig_auto.AXIS_FRAMES)
        poses, mapped = positions[frames].numpy(), mapped_positions
    try:
        up, left, left_handed, clarity = rig_auto.detect_axes(poses, mapped)
    except ValueError:
        return spec
    body_to_source = spec.body_to_source()
    feet = 0.5 * (poses[:, mapped["left_ankle"]] + poses[:, mapped["right_ankle"]])
    up_vector = (poses[:, mapped["head"]] - feet).mean(0)
    along = float(up_vector @ body_to_source[:, 1]) / max(float(np.linalg.norm(up_vector)), 1e-12)
    up_ok = up @ body_to_source[:, 1] > 0.99 or along > 0.3  # plausible (lying clips blur the motion's)
    if clarity < AXES_OVERRIDE_CLARITY or (up_ok and left_handed == spec.left_handed):
        return spec
    if up_ok:  # only the handedness differs (the toes say so)
        up = body_to_source[:, 1]
    up_name, forward_name = rig_auto.axes_names(up, left, left_handed)
    logger.info("%s: the file's axes are up %s, forward %s%s, not the preset's", spec.name,
                up_name, forward_name, " (mirrored)" if left_handed else "")
    return replace(spec, up=up_name, forward=forward_name, left_handed=left_handed, rest_axes={})


def _rig_axes(spec: RigSpec, source: SourceMotion) -> dict:
    """The non-joint fields of a joint map, for writing it back (``--write-map``)."""
    fields = {"up": spec.up, "forward": spec.forward, "left_handed": spec.left_handed,
              "align_bones": spec.align_bones}
    scale = spec.scale if spec.scale is not None else source.meta.get("scale")
    if scale is not None and source.meta.get("format") == "bvh":
        fields["scale"] = float(scale)
    if spec.rest_axes:
        fields["rest_axes"] = rig_to_dict(spec)["rest_axes"]
    return fields


def _unit_name(scale) -> str:
    """"cm (0.01 m)" for a file-unit scale, "" when unknown."""
    if scale is None:
        return ""
    for name, metres in rig_auto.UNITS.items():
        if abs(float(scale) - metres) < 1e-9 * max(metres, 1e-12) + 1e-12:
            return f"{name} ({metres:g} m)"
    return f"{float(scale):g} m"
