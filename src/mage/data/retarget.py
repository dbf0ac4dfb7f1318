"""Source-rig motions (any BVH / ASF skeleton) and their retargeting to SMPL-22.

Importers (``mage.data.bvh``, ``mage.data.asfamc``) read a file into a
:class:`SourceMotion` (the file's own joint tree, metres, the file's own world axes);
:func:`retarget` turns it into a :class:`mage.core.Motion` on the DEFAULT SMPL skeleton
(``Skeleton.smpl22()``), z-up world, with ``motion.meta["rig"]`` naming the joint map.

Joint maps ("rigs") are JSON files in ``mage/data/rigs/`` (presets: :func:`list_presets`),
a user's own JSON / YAML file with the same fields, or, for ``rig="auto"`` when no preset
matches the joint names, an automatic map found from the skeleton itself (names, tree,
geometry, unit: :func:`auto_rig`, ``mage.data.rig_auto``)::

    {"name": "my_rig",                   # optional, defaults to the file name
     "up": "y", "forward": "z",          # source world axes of up and of the way the
                                         # rig faces in its T-pose ("-z" allowed)
     "scale": 0.01,                      # optional: file units -> metres when the
                                         # caller gives none (BVH only)
     "align_bones": true,                # align limb bones with SMPL's (step 2)
     "left_handed": false,               # mirrored axes: left = forward x up
     "joints": {"pelvis": "Hips", "left_hip": "LeftUpLeg", ...},  # SMPL name -> source
     "rest_axes": {"Hips": ["x", "y", "z"], ...}}                 # optional, see below

Method (all corrections are computed once per file from the two rest poses):

1. Rest frames. Every SourceMotion's zero pose has all local rotations = identity, so
   every joint frame there is parallel to the source world. The SMPL rest pose is the
   T-pose in the body frame (x left, y up, z forward). ``A`` maps the body frame to the
   source world (columns: left = up x forward, up, forward of the preset).
2. T-pose orientation ``Q_s`` of each mapped source joint ``s`` (joint frame -> source
   world when the rig stands in SMPL's T-pose), joints taken parents first, from a
   REFERENCE pose: the zero pose, or the motion's most upright standing frame (legs
   straightest) where the zero pose is no T/A-pose. It starts from a hint ``H_s``: the
   preset's ``rest_axes[s]`` if given (where the joint's local x, y, z axes point in
   the body frame in the T-pose, e.g. ``["-x", "-y", "z"]``: Character Creator bones
   point along their local +y), else the joint's rotation relative to its nearest mapped
   ancestor in the reference pose, carried along (``H_s = Q_a R_a^T R_s``; zero pose:
   ``Q_a``). The pelvis: the identity when its zero-pose frame (left from its hips, up
   along its first trunk bone, in its own axes) is within ZERO_POSE_MAX_PELVIS_DEG of the
   rig's axes (presets keep their behaviour); else the rest pose is "folded" (bones
   along a local axis, as in the Bandai Namco rig) and the pelvis frame of the standing
   frame (left from the hips, up to the neck) is turned onto SMPL's. For the LIMB joints (hips, knees, ankles, collars, shoulders, elbows),
   whose rest bone direction is a pose choice of the rig (T- vs A-pose, CMU's legs
   splayed by 20 degrees), ``Q_s`` is then the smallest rotation turning the source bone
   (to the joint mapped to the SMPL child) onto SMPL's bone, applied to ``H_s`` (so the
   hint's twist about the bone is kept); a bone more than ZERO_POSE_MAX_SWING_DEG off in
   the zero pose is aligned from the standing frame instead. Trunk joints (spine1-3,
   neck) are aligned too when more than TRUNK_MAX_DEG off. In a folded rest, they and
   the head take their rotation relative to the pelvis from the standing frame, which
   is assumed to stand straight and look ahead (no alignment); the legs take their
   frames from it too (then aligned), as the zero pose of such a rig does not define
   their twist about the bone. Outside the limbs, the trunk joints, the head, wrists
   and feet keep ``H_s``: their bone directions differ between rigs because joints sit
   at different anatomical places (SMPL's head joint is 5 cm in front of its neck joint, CMU's root
   is behind its hip joints), not because the pose differs. So any rest pose gives the
   same SMPL joint positions (tests/test_rig_auto.py).
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

import functools
import itertools
import json
import logging
import math
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import roma
import torch

from mage.core import rotations as rot
from mage.core.checks import check_fps
from mage.core.constants import NUM_JOINTS
from mage.core.kinematics import local_from_global
from mage.core.skeleton import rest_positions
from mage.core.motion import Motion
from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS, NamedJoints, Skeleton

logger = logging.getLogger(__name__)

# SMPL joints a joint map must provide; the others are filled (see the module docstring).
REQUIRED_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
SPINE_CHAIN: tuple[int, ...] = (0, 3, 6, 9, 12, 15)  # pelvis, spine1-3, neck, head
# Limb joints whose rest bone direction is a pose choice of the rig (T- vs A-pose, leg
# splay): their source bones are turned onto SMPL's. Trunk bones are not: their
# directions differ between rigs because joints sit at different anatomical places (SMPL's
# head joint is 5 cm in front of its neck joint, CMU's root is behind the hip joints).
ALIGNED_JOINTS: frozenset[int] = frozenset((1, 2, 4, 5, 7, 8, 13, 14, 16, 17, 18, 19))
_AXES = {"x": 0, "y": 1, "z": 2}


# --- the source-rig motion type ---------------------------------------------------------
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
        J = len(self.joint_names)
        self.joint_names = tuple(self.joint_names)
        self.parents = tuple(int(p) for p in self.parents)
        self.offsets = np.asarray(self.offsets, dtype=np.float64)
        self.rotations = torch.as_tensor(self.rotations, dtype=torch.float64)
        self.translations = torch.as_tensor(self.translations, dtype=torch.float64)
        if len(self.parents) != J or self.offsets.shape != (J, 3):
            raise ValueError(f"SourceMotion: {J} names but {len(self.parents)} parents and "
                             f"offsets of shape {self.offsets.shape}")
        for j, p in enumerate(self.parents):
            if (j == 0) != (p == -1) or p >= j:
                raise ValueError(f"SourceMotion: joint {j} ({self.joint_names[j]}) has parent "
                                 f"{p}; the root must come first and parents before children")
        T = self.rotations.shape[0]
        if self.rotations.shape != (T, J, 3, 3) or self.translations.shape != (T, J, 3):
            raise ValueError(
                f"SourceMotion: rotations {tuple(self.rotations.shape)} / translations "
                f"{tuple(self.translations.shape)} do not match (T, {J}, 3, 3) / (T, {J}, 3)")
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


def source_forward_kinematics(rotations: torch.Tensor, translations: torch.Tensor,
                              parents: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """General FK: G[j] = G[p] @ R[j], x[j] = x[p] + G[p] @ t[j] (root: G = R, x = t).

    rotations: (..., J, 3, 3); translations: (..., J, 3). Returns (..., J, 3, 3) and
    (..., J, 3). (``mage.core.kinematics`` is the SMPL flavour with constant offsets.)
    """
    rots = [rotations[..., 0, :, :]]
    pos = [translations[..., 0, :]]
    for j in range(1, len(parents)):
        p = parents[j]
        rots.append(rots[p] @ rotations[..., j, :, :])
        pos.append(pos[p] + (rots[p] @ translations[..., j, :, None])[..., 0])
    return torch.stack(rots, dim=-3), torch.stack(pos, dim=-2)


# --- joint maps ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RigSpec:
    """A joint map: how a source rig's joints, axes and units relate to SMPL-22."""

    name: str
    joints: dict  # SMPL joint name -> source joint name (missing / None: filled)
    up: str = "y"
    forward: str = "z"
    scale: float | None = None
    align_bones: bool = True
    left_handed: bool = False  # mirrored source axes: left = forward x up, not up x forward
    rest_axes: dict = field(default_factory=dict)  # source name -> (3, 3) body-frame axes
    description: str = ""
    origin: str = ""  # preset or file it came from
    confidence: float | None = None  # automatic maps: 0..1 (see mage.data.rig_auto)
    unit: str = ""  # automatic maps: the unit found ("cm", "inch", ...)

    def body_to_source(self) -> np.ndarray:
        """A (3, 3): SMPL body frame (x left, y up, z forward) -> source world."""
        up, fwd = _axis_vector(self.up, self.origin), _axis_vector(self.forward, self.origin)
        if abs(up @ fwd) > 1e-9:
            raise ValueError(f"{self.origin}: up {self.up!r} and forward {self.forward!r} "
                             "must be different axes")
        left = np.cross(fwd, up) if self.left_handed else np.cross(up, fwd)
        return np.stack([left, up, fwd], axis=1)


def _axis_vector(spec: str, origin: str) -> np.ndarray:
    s = str(spec).strip().lower()
    sign = -1.0 if s.startswith("-") else 1.0
    s = s.lstrip("+-")
    if s not in _AXES:
        raise ValueError(f"{origin}: axis {spec!r} must be one of x, y, z, -x, -y, -z")
    v = np.zeros(3)
    v[_AXES[s]] = sign
    return v


def _parse_rest_axes(value, origin: str, joint: str) -> np.ndarray:
    """["-x", "y", "z"] (where local x, y, z point in the body frame) -> (3, 3) columns."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError(f"{origin}: rest_axes[{joint!r}] must be 3 axes such as "
                         f"[\"-x\", \"-y\", \"z\"], got {value!r}")
    M = np.stack([_axis_vector(v, origin) for v in value], axis=1)
    if abs(np.linalg.det(M) - 1.0) > 1e-6:
        raise ValueError(f"{origin}: rest_axes[{joint!r}] = {value!r} is not a rotation "
                         "(a mirror or repeated axis)")
    return M


def rig_from_dict(d: dict, origin: str) -> RigSpec:
    """Validate a joint-map dictionary (from a preset or a user's file)."""
    if not isinstance(d, dict) or not isinstance(d.get("joints"), dict):
        raise ValueError(f"{origin}: a joint map needs a 'joints' table "
                         "(SMPL joint name -> source joint name)")
    known = {"name", "description", "up", "forward", "scale", "align_bones", "joints",
             "rest_axes", "left_handed", "confidence", "unit"}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"{origin}: unknown field(s) {unknown}; known: {sorted(known)}")
    bad = sorted(set(d["joints"]) - set(SMPL22_JOINT_NAMES))
    if bad:
        raise ValueError(f"{origin}: {bad} are not SMPL-22 joint names; known: "
                         + ", ".join(SMPL22_JOINT_NAMES))
    joints = {k: v for k, v in d["joints"].items() if v}
    not_str = sorted(k for k, v in joints.items() if not isinstance(v, str))
    if not_str:
        raise ValueError(f"{origin}: joints {not_str} must map to source joint names (text)")
    missing = [j for j in REQUIRED_JOINTS if j not in joints]
    if missing:
        raise ValueError(f"{origin}: the joint map must give {missing}")
    scale = d.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not scale > 0):
        raise ValueError(f"{origin}: scale must be a positive number, got {scale!r}")
    rest_axes = {k: _parse_rest_axes(v, origin, k) for k, v in (d.get("rest_axes") or {}).items()}
    spec = RigSpec(
        name=str(d.get("name") or Path(origin).stem), joints=joints,
        up=str(d.get("up", "y")), forward=str(d.get("forward", "z")),
        scale=None if scale is None else float(scale),
        align_bones=bool(d.get("align_bones", True)), rest_axes=rest_axes,
        left_handed=bool(d.get("left_handed", False)),
        description=str(d.get("description", "")), origin=origin,
    )
    spec.body_to_source()  # validates the axes
    return spec


def list_presets() -> tuple[str, ...]:
    """Names of the joint-map presets shipped in ``mage/data/rigs/``."""
    folder = resources.files("mage.data") / "rigs"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")))


@functools.lru_cache(maxsize=None)
def _preset(name: str) -> RigSpec:
    text = (resources.files("mage.data") / "rigs" / f"{name}.json").read_text()
    return rig_from_dict(json.loads(text), f"preset {name!r}")


def load_rig(rig: str | Path) -> RigSpec:
    """A preset by name (see :func:`list_presets`) or a user's JSON / YAML joint map."""
    presets = list_presets()
    if isinstance(rig, str) and rig in presets:
        return _preset(rig)
    path = Path(rig)
    if not path.is_file():
        if path.suffix.lower() in (".json", ".yaml", ".yml"):
            raise FileNotFoundError(f"{path}: joint-map file not found")
        raise ValueError(f"unknown rig {str(rig)!r}: not a preset ({', '.join(presets)}) and "
                         "not a joint-map file (.json / .yaml)")
    text = path.read_text(encoding="utf-8-sig")  # a joint map saved with a BOM reads too
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:  # the message names the line
            raise ValueError(f"{path}: cannot parse joint map ({err})") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: cannot parse joint map ({err})") from None
    return rig_from_dict(data, str(path))


def _loose(name: str) -> str:
    """Name key for tolerant matching: no namespace ("mixamorig:"), case-insensitive."""
    return name.rsplit(":", 1)[-1].rsplit("|", 1)[-1].lower()


def match_joints(spec: RigSpec, joint_names: tuple[str, ...]) -> dict[str, int]:
    """SMPL joint name -> source joint index for every map entry found (exact names
    first, then ignoring case and a ``namespace:`` prefix)."""
    exact = {n: i for i, n in enumerate(joint_names)}
    loose: dict[str, list[int]] = {}
    for i, n in enumerate(joint_names):
        loose.setdefault(_loose(n), []).append(i)
    out = {}
    for smpl, src in spec.joints.items():
        if src in exact:
            out[smpl] = exact[src]
        elif len(loose.get(_loose(src), ())) == 1:
            out[smpl] = loose[_loose(src)][0]
    return out


def _match_score(spec: RigSpec, joint_names: tuple[str, ...]) -> tuple[float, float]:
    names = set(joint_names)
    n = len(spec.joints)
    exact = sum(src in names for src in spec.joints.values())
    return len(match_joints(spec, joint_names)) / n, exact / n


def detect_preset(joint_names: tuple[str, ...]) -> RigSpec | None:
    """The preset whose joint names match ``joint_names`` best with every required joint
    found (the fast path of ``rig="auto"``), or None."""
    best, best_score = None, (-1.0, -1.0)
    for name in list_presets():
        spec = load_rig(name)
        found = match_joints(spec, joint_names)
        if any(j not in found for j in REQUIRED_JOINTS):
            continue
        score = _match_score(spec, joint_names)
        if score > best_score:
            best, best_score = spec, score
    return best


def detect_rig(joint_names: tuple[str, ...], where: str = "motion") -> RigSpec:
    """The preset whose joint names match ``joint_names`` best (all required joints
    found); ValueError naming ``where`` and listing the presets otherwise."""
    best = detect_preset(joint_names)
    if best is None:
        raise ValueError(
            f"{where}: no joint-map preset matches its joints (first names: "
            f"{', '.join(joint_names[:6])}, ...); presets: {', '.join(list_presets())}. "
            "Pass --rig with a preset name or a JSON/YAML joint map (see mage.data.retarget)")
    return best


def resolve_rig(rig, joint_names: tuple[str, ...], where: str = "motion",
                source: SourceMotion | None = None) -> tuple[RigSpec, bool]:
    """(RigSpec, auto-detected?) for ``rig`` = "auto", a preset, a file, or a RigSpec.

    "auto": the best-matching preset, else (given ``source``) an automatic map from the
    skeleton (:func:`auto_rig`); ValueError naming ``where`` when neither works.
    """
    if isinstance(rig, RigSpec):
        return rig, False
    if rig is None or (isinstance(rig, str) and rig == "auto"):
        spec = detect_preset(joint_names)
        if spec is None:
            if source is None:
                return detect_rig(joint_names, where), True
            try:
                spec = auto_rig(source, where)
            except ValueError as err:
                raise ValueError(f"{err} (no preset matches either: {', '.join(list_presets())})") from None
        logger.info("%s: rig %r auto-detected", where, spec.name)
        return spec, True
    return load_rig(rig), False


def rig_to_dict(spec: RigSpec) -> dict:
    """A joint map as the JSON-able dictionary :func:`rig_from_dict` reads back."""
    d = {"name": spec.name, "description": spec.description, "up": spec.up,
         "forward": spec.forward, "left_handed": spec.left_handed,
         "align_bones": spec.align_bones, "joints": dict(spec.joints)}
    if spec.scale is not None:
        d["scale"] = spec.scale
    if spec.rest_axes:
        names = {0: "x", 1: "y", 2: "z"}
        d["rest_axes"] = {
            k: [("-" if M[int(np.argmax(np.abs(M[:, c]))), c] < 0 else "") + names[int(np.argmax(np.abs(M[:, c])))]
                for c in range(3)] for k, M in spec.rest_axes.items()}
    return d


def auto_rig(source: SourceMotion, where: str = "motion") -> RigSpec:
    """An automatic joint map of ``source`` (names, tree, geometry: ``mage.data.rig_auto``).

    The unit found is returned in ``scale`` when the file's unit was guessed; details
    (what was found by name or by position, the confidence) in ``spec.description``.
    Raises ValueError naming ``where``, what was not found and how to pass ``--rig``.
    """
    from mage.data import rig_auto

    found, by_name, by_pos = rig_auto.map_joints(source.joint_names, source.parents,
                                                 source.offsets, where)
    # World positions of a few frames, for the axes.
    T = source.num_frames
    frames = np.unique(np.linspace(0, T - 1, min(T, rig_auto.AXIS_FRAMES)).round().astype(int))
    _, P = source_forward_kinematics(source.rotations[frames], source.translations[frames],
                                     source.parents)
    P = P.numpy()
    rest = source.rest_positions()
    try:
        up, left, lh, clarity = rig_auto.detect_axes(P, found)
        zero = rig_auto.detect_axes(rest[None], found)
    except ValueError:
        raise ValueError(f"{where}: cannot map its joints to SMPL automatically: the head and "
                         "the ankles coincide; pass --rig map.json") from None
    if zero[3] > 0.9 and rig_auto.zero_pose_stands(rest, found):  # a T/A-pose rig: its
        up, left, lh = zero[0], zero[1], zero[2] if "left_foot" in found else lh  # axes
    up_name, fwd = rig_auto.axes_names(up, left, lh)
    scale = None
    unit = "given"
    if source.meta.get("scale_guessed"):
        size = rig_auto.chain_size(rest, source.parents, found) / float(source.meta["scale"])
        if size > 0:
            unit, scale = rig_auto.choose_unit(size)
    confidence = round(len(by_name) / 22 * clarity, 2)
    joints = {k: source.joint_names[v] for k, v in found.items()}
    desc = (f"automatic map: {len(by_name)} joints by name, {len(by_pos)} by position along "
            f"the chain ({', '.join(sorted(by_pos)) or 'none'}); unit {unit}; "
            f"confidence {confidence:.2f}")
    return RigSpec(name="auto", joints=joints, up=up_name, forward=fwd, scale=scale,
                   left_handed=lh, description=desc, origin=f"{where} (auto)",
                   confidence=confidence, unit=unit)


# --- rotations helpers ------------------------------------------------------------------
def _rx90() -> np.ndarray:
    return np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def _swing(a: np.ndarray, b: np.ndarray, where: str) -> np.ndarray:
    """Smallest rotation taking direction a onto direction b (3,) -> (3, 3)."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(a @ b)
    if s < 1e-6 and c < 0:
        raise ValueError(f"{where}: the rest hint points this bone opposite to SMPL's; "
                         "fix rest_axes in the joint map")
    if s < 1e-12:
        return np.eye(3)
    rotvec = axis / s * np.arctan2(s, c)
    return roma.rotvec_to_rotmat(torch.from_numpy(rotvec)).numpy()


def _smpl_children() -> list[list[int]]:
    children: list[list[int]] = [[] for _ in SMPL22_PARENTS]
    for j, p in enumerate(SMPL22_PARENTS):
        if p >= 0:
            children[p].append(j)
    return children


def _is_ancestor(parents: tuple[int, ...], a: int, d: int) -> bool:
    while d >= 0:
        if d == a:
            return True
        d = parents[d]
    return False


@dataclass
class RestAlignment:
    """Per-file constants of a retargeting (all in float64 numpy).

    A: (3, 3) body frame -> source world; W: (3, 3) source world -> z-up world;
    C: {SMPL joint: (3, 3)} so that R_smpl[j] = W @ R_src[s] @ C[j];
    Q: {SMPL joint: (3, 3)} source joint frame -> source world in the T-pose;
    root_scale: SMPL leg length / source leg length (T-pose), applied to the hip path;
    reference: {SMPL joint: "zero" | frame index} the pose each joint's T-pose frame was
    derived from.
    """

    A: np.ndarray
    W: np.ndarray
    C: dict
    Q: dict
    root_scale: float
    reference: dict = field(default_factory=dict)


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
TRUNK_MAX_DEG = 45.0


def _frame(left: np.ndarray, up: np.ndarray, left_handed: bool) -> np.ndarray | None:
    """(3, 3) orthonormal columns (left, up, forward) from a left and an up direction."""
    n_left = np.linalg.norm(left)
    if np.linalg.norm(up) < 1e-9 or n_left < 1e-9:
        return None
    up = up / np.linalg.norm(up)
    left = left - (left @ up) * up
    if np.linalg.norm(left) < 0.3 * n_left:
        return None  # hips along the trunk: no usable frame
    left = left / np.linalg.norm(left)
    fwd = np.cross(left, up) * (-1.0 if left_handed else 1.0)
    return np.stack([left, up, fwd], axis=1)


def _pelvis_frames(G: np.ndarray, P: np.ndarray, idx: dict, parents, A: np.ndarray,
                   smpl_rest: np.ndarray, left_handed: bool, to_neck: bool = False):
    """(B, B_smpl) or None: the pelvis's frame (left, up, forward) in its OWN axes in a
    reference pose (G (J, 3, 3), P (J, 3)) - left from the right to the left hip, up along
    the first trunk bone above the pelvis - and the same frame of SMPL's T-pose in the
    source world, so that Q_pelvis = B_smpl @ B^T."""
    p = idx[0]
    left = G[p].T @ (P[idx[1]] - P[idx[2]])
    path = [idx[15]]  # the trunk from the head down to the pelvis
    while parents[path[-1]] >= 0 and path[-1] != p:
        path.append(parents[path[-1]])
    top = next((k for k in reversed(path[:-1])  # the first joint clearly above the pelvis
                if np.linalg.norm(P[k] - P[p]) > 0.25 * np.linalg.norm(left)), idx[15])
    if to_neck:  # a standing frame: the whole trunk, less sensitive to joint placement
        top = next((idx[k] for k in (12, 9, 15) if k in idx), top)
    B = _frame(left, G[p].T @ (P[top] - P[p]), left_handed)
    top_smpl = next((j for j, s in idx.items() if s == top), 3)
    B_smpl = _frame(A @ (smpl_rest[1] - smpl_rest[2]), A @ (smpl_rest[top_smpl] - smpl_rest[0]),
                    left_handed)
    return None if B is None or B_smpl is None else (B, B_smpl)


def _angle_deg(R: np.ndarray) -> float:
    return math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(R) - 1.0) / 2.0))))


def _standing_frame(source: SourceMotion, idx: dict, A: np.ndarray) -> int:
    """The frame (of up to 60 spread over the clip) whose legs hang most straight down."""
    T = source.num_frames
    frames = np.unique(np.linspace(0, T - 1, min(T, 60)).round().astype(int))
    _, P = source_forward_kinematics(source.rotations[frames], source.translations[frames],
                                     source.parents)
    P = P.numpy()
    down = -A[:, 1]
    cost = np.zeros(len(frames))
    for a, b in ((1, 4), (4, 7), (2, 5), (5, 8), (0, 15)):
        if a in idx and b in idx:
            v = P[:, idx[b]] - P[:, idx[a]]
            v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)
            cost += 1.0 - v @ (-down if a == 0 else down)
    return int(frames[int(np.argmin(cost))])


class _RestAligner:
    """The state of :func:`rest_alignment` as it goes through the mapped SMPL joints,
    parents first: the reference poses met so far, each joint's T-pose frame ``Q`` and
    the pose it came from (``used``), and whether the rest pose is folded."""

    def __init__(self, source: SourceMotion, spec: RigSpec, mapped: dict[str, int],
                 skeleton: Skeleton):
        self.source, self.spec = source, spec
        self.where = source.meta.get("source") or source.name or "motion"
        self.A = spec.body_to_source()
        self.smpl_rest = skeleton.rest_positions()
        self.children = _smpl_children()
        self.idx = {SMPL22_JOINT_NAMES.index(k): v for k, v in mapped.items()}
        eye = np.broadcast_to(np.eye(3), (source.num_joints, 3, 3))
        # reference poses (G (J, 3, 3), P (J, 3)): "zero", then "frame" and its index
        self.refs: dict = {"zero": (eye, source.rest_positions())}
        self.Q: dict[int, np.ndarray] = {}
        self.used: dict[int, str | int] = {}
        self.folded = False  # the zero-pose pelvis is not upright: trunk and legs from the standing frame

    def ref(self, r):
        """The reference pose ``r``: "zero", or "frame" (the most upright standing frame)."""
        if r not in self.refs:
            src = self.source
            f = _standing_frame(src, self.idx, self.A)
            G, P = source_forward_kinematics(src.rotations[f], src.translations[f], src.parents)
            self.refs[r] = (G.numpy(), P.numpy())
            self.refs[f] = self.refs[r]
        return self.refs[r]

    def first_mapped(self, c: int) -> int | None:
        """The first mapped SMPL joint at or below ``c`` (breadth first)."""
        queue = [c]
        while queue:
            k = queue.pop(0)
            if k in self.idx:
                return k
            queue.extend(self.children[k])
        return None

    def solve(self, j: int) -> None:
        """``Q[j]`` and ``used[j]``: from the zero pose, or the standing frame where the
        zero pose swings the bone too far (or gives no frame); ValueError if neither does."""
        spec, idx = self.spec, self.idx
        s = idx[j]
        name = self.source.joint_names[s]
        a = SMPL22_PARENTS[j]
        while a >= 0 and a not in self.Q:
            a = SMPL22_PARENTS[a]
        d = self.first_mapped(self.children[j][0]) if self.children[j] else None
        has_bone = d is not None and idx[d] != s and _is_ancestor(self.source.parents, s, idx[d])
        candidates = ["zero", "frame"] if name not in spec.rest_axes else ["zero"]
        if self.folded and j in FROM_STANDING_WHEN_FOLDED:
            candidates = ["frame"]  # twist about the trunk and the legs: from a standing frame
        best = None
        for r in candidates:
            G, P = self.ref(r)
            H = self._unaligned_frame(j, s, name, a, r, G, P)
            if H is None:
                continue
            v = G[s].T @ (P[idx[d]] - P[s]) if has_bone else None
            aligned = self._bone_aligned(j, d, name, H, v, has_bone)
            if aligned is None:  # no defined smallest rotation: try the other pose
                continue
            best = (r, aligned[0])
            if aligned[1] <= ZERO_POSE_MAX_SWING_DEG or r != "zero":
                break
        if best is None:
            raise ValueError(f"{self.where}: joint {name}: its rest pose gives no usable bone "
                             "direction; check the joint map")
        r, self.Q[j] = best
        self.used[j] = r if r == "zero" else int(next(k for k in self.refs if isinstance(k, int)))

    def _unaligned_frame(self, j, s, name, a, r, G, P) -> np.ndarray | None:
        """The joint's T-pose frame in reference pose ``r`` before its bone is aligned;
        None where that pose gives none (for the pelvis, sets ``folded``)."""
        spec, A = self.spec, self.A
        if name in spec.rest_axes:  # the preset's T-pose frame
            return A @ spec.rest_axes[name]
        if a >= 0:  # keeps its reference-pose rotation relative to the ancestor
            return self.Q[a] @ G[self.idx[a]].T @ G[s]
        # the pelvis: upright from its hips and trunk bone in the reference pose
        frames = _pelvis_frames(G, P, self.idx, self.source.parents, A, self.smpl_rest,
                                spec.left_handed, to_neck=r != "zero")
        if frames is None:
            return None
        B, B_smpl = frames
        if r != "zero":
            return B_smpl @ B.T
        self.folded = _angle_deg(B_smpl @ B.T) > ZERO_POSE_MAX_PELVIS_DEG
        # folded: from the standing frame instead, upright up to the neck
        return None if self.folded else np.eye(3)

    def _bone_aligned(self, j, d, name, H, v, has_bone) -> tuple[np.ndarray, float] | None:
        """(frame, swing in degrees): ``H`` turned so that the bone ``v`` lies along
        SMPL's (limbs; trunk joints beyond TRUNK_MAX_DEG); None if the swing is ~180."""
        Qj, swing = H, 0.0
        if self.spec.align_bones and has_bone and np.linalg.norm(v) > 1e-9 and (
                j in ALIGNED_JOINTS or (j in TRUNK_JOINTS and not self.folded)):
            u = self.A @ (self.smpl_rest[d] - self.smpl_rest[j])  # SMPL's bone, source world
            hv = H @ v
            swing = math.degrees(math.acos(np.clip(hv @ u / np.linalg.norm(hv) / np.linalg.norm(u), -1, 1)))
            if swing > 179.0:
                return None
            if j in ALIGNED_JOINTS or swing > TRUNK_MAX_DEG:
                Qj = _swing(hv, u, f"{self.where}: joint {name}") @ H
        return Qj, swing

    def bone_vec(self, a: int, b: int) -> np.ndarray:
        """Bone a -> b of the source in joint a's frame (in a's reference pose)."""
        idx = self.idx
        G, P = self.ref(self.used[a] if self.used[a] == "zero" else "frame")
        return G[idx[a]].T @ (P[idx[b]] - P[idx[a]])

    def leg_height(self, chains) -> tuple[float, float]:
        """Hip-to-foot height in the T-pose, (source, SMPL), averaged over ``chains``."""
        A, smpl_rest = self.A, self.smpl_rest
        src_h, smpl_h = [], []
        for chain in chains:
            chain = [k for k in chain if k in self.idx]
            v_src = sum((A.T @ self.Q[a] @ self.bone_vec(a, b) for a, b in itertools.pairwise(chain)),
                        np.zeros(3))
            src_h.append(-v_src[1])
            smpl_h.append(smpl_rest[chain[0]][1] - smpl_rest[chain[-1]][1])
        return float(np.mean(src_h)), float(np.mean(smpl_h))


def rest_alignment(source: SourceMotion, spec: RigSpec, mapped: dict[str, int],
                   skeleton: Skeleton) -> RestAlignment:
    """The constant corrections of :func:`retarget` (module docstring, steps 1, 2, 5).

    Each joint's T-pose frame Q is derived from a reference pose: the zero pose, or, for a
    limb whose zero-pose bone is more than ZERO_POSE_MAX_SWING_DEG from SMPL's and for
    the pelvis, trunk, head and legs of a "folded" rest (module docstring, step 2), the
    motion's most upright standing frame; in either pose the joint keeps its rotation
    relative to its nearest mapped ancestor, then (limbs) its bone is turned onto SMPL's.
    So any rest pose gives the same SMPL joint positions. Raises ValueError naming the
    file when no reference pose gives a joint a usable frame.
    """
    al = _RestAligner(source, spec, mapped, skeleton)
    for j in sorted(al.idx):  # parents before children
        al.solve(j)
    A = al.A
    # Leg length: hip-midpoint height above the feet in the T-pose, source vs SMPL.
    feet = (10, 11) if 10 in al.idx and 11 in al.idx else (7, 8)
    src_leg, smpl_leg = al.leg_height([(1, 4, 7, feet[0]), (2, 5, 8, feet[1])])
    if not src_leg > 1e-3:
        raise ValueError(f"{al.where}: the rig's legs have no height in its T-pose "
                         f"({src_leg:.4f} m); check the joint map")
    return RestAlignment(A=A, W=_rx90() @ A.T, C={j: Q.T @ A for j, Q in al.Q.items()}, Q=al.Q,
                         root_scale=smpl_leg / src_leg, reference=al.used)


# Leading frames that jump further than a person can move in one frame (a calibration
# T-pose the converter put first, as in cgspeed's CMU BVH files) are dropped: a mapped
# joint moving more than MAX_JOINT_SPEED_M_S, and more than MIN_JUMP_M, between frames.
MAX_JOINT_SPEED_M_S = 25.0
MIN_JUMP_M = 0.3
MAX_LEADING_DROP = 10  # only the first frames are examined


def leading_calibration_frames(P: torch.Tensor, fps: float) -> int:
    """How many leading frames of joint paths P (T, J, 3), metres, end in a jump no
    human makes in one frame, followed by MAX_LEADING_DROP smooth frames (0 if none).
    Only the first MAX_LEADING_DROP frames may be dropped."""
    T = P.shape[0]
    if T < 3:
        return 0
    n = min(2 * MAX_LEADING_DROP, T - 1)
    jump = (P[1:n + 1] - P[:n]).norm(dim=-1).amax(dim=-1)  # (n,): frame i -> i + 1
    bad = (jump > MIN_JUMP_M) & (jump * fps > MAX_JOINT_SPEED_M_S)
    if not bool(bad[:MAX_LEADING_DROP].any()):
        return 0
    k = int(torch.nonzero(bad[:MAX_LEADING_DROP]).max()) + 1
    # Only a jump followed by smooth motion is a calibration pose (noise keeps jumping).
    return 0 if bool(bad[k:k + MAX_LEADING_DROP].any()) or k >= T - 1 else k


def retarget(source: SourceMotion, rig="auto", name: str | None = None,
             drop_calibration: bool = True) -> Motion:
    """Retarget ``source`` onto the default SMPL-22 skeleton (method: module docstring).

    rig: "auto" (best-matching preset, else an automatic map from the skeleton, see
        :func:`auto_rig`; logged and stored in meta["rig"]), a preset name, a JSON/YAML
        joint-map path, or a :class:`RigSpec`.
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
    G_src, P_src, where_in = _mapped_fk(source, mapped)  # (T, Jk, 3, 3), (T, Jk, 3)
    if auto and spec.name != "auto":  # a preset found by names: are its axes the file's?
        spec = _checked_axes(spec, source.rest_positions(), mapped, P_src,
                             {k: where_in[v] for k, v in mapped.items()})
    skeleton = Skeleton.smpl22()
    al = rest_alignment(source, spec, mapped, skeleton)
    dropped = leading_calibration_frames(P_src[:, [where_in[v] for v in mapped.values()]],
                                         source.fps) if drop_calibration else 0
    if dropped:
        logger.warning("%s: dropped the first %d frame(s): a jump no person makes in one "
                       "frame (a calibration pose)", where, dropped)
        G_src, P_src = G_src[dropped:], P_src[dropped:]
    W = torch.from_numpy(al.W)
    idx = {SMPL22_JOINT_NAMES.index(k): where_in[v] for k, v in mapped.items()}
    G = _smpl_global_rotations(G_src, idx, al)
    local = local_from_global(G, SMPL22_PARENTS)
    # Step 5: the SMPL hip midpoint follows the source hip midpoint.
    hips_src = 0.5 * (P_src[:, idx[1]] + P_src[:, idx[2]]) @ W.T
    hips_smpl = torch.tensor(0.5 * (skeleton.offsets[1] + skeleton.offsets[2]))
    pelvis = al.root_scale * hips_src - (G[:, 0] @ hips_smpl[:, None])[..., 0]
    trans = pelvis - torch.tensor(skeleton.offsets[0])
    meta = _retarget_meta(source, spec, auto, mapped, dropped)
    return Motion(local.float(), trans.float(), source.fps, skeleton,
                  name=source.name if name is None else name, meta=meta)


def _with_unit(spec: RigSpec, source: SourceMotion) -> tuple[RigSpec, SourceMotion]:
    """Where the file's scale was guessed: the unit from the mapped body's size (presets)
    and the source rescaled to the map's own scale."""
    if spec.name != "auto" and source.meta.get("scale_guessed"):
        m = match_joints(spec, source.joint_names)
        if all(k in m for k in REQUIRED_JOINTS):  # the unit from the body's size
            spec = _unit_from_size(spec, source, m)
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
    (G (T, Jk, 3, 3), P (T, Jk, 3), source joint -> index among the Jk kept)."""
    needed = set()
    for s in mapped.values():
        while s >= 0 and s not in needed:
            needed.add(s)
            s = source.parents[s]
    keep = sorted(needed)
    where_in = {s: k for k, s in enumerate(keep)}
    G_src, P_src = source_forward_kinematics(
        source.rotations[:, keep], source.translations[:, keep],
        tuple(-1 if source.parents[s] < 0 else where_in[source.parents[s]] for s in keep))
    return G_src, P_src, where_in


def _smpl_global_rotations(G_src: torch.Tensor, idx: dict[int, int],
                           al: RestAlignment) -> torch.Tensor:
    """SMPL global rotations (T, J, 3, 3): R_smpl[j] = W @ R_src[s] @ C[j] for the
    mapped joints; step 4 fills the others (spine by slerp, the rest from the parent)."""
    T = G_src.shape[0]
    W = torch.from_numpy(al.W)
    G = torch.empty(T, NUM_JOINTS, 3, 3, dtype=torch.float64)
    have = sorted(idx)
    C = torch.from_numpy(np.stack([al.C[j] for j in have]))
    G[:, have] = W @ G_src[:, [idx[j] for j in have]] @ C
    for k, j in enumerate(SPINE_CHAIN):
        if j in idx:
            continue
        lo = max(i for i in range(k) if SPINE_CHAIN[i] in idx)
        hi = min(i for i in range(k + 1, len(SPINE_CHAIN)) if SPINE_CHAIN[i] in idx)
        w = torch.full((T,), (k - lo) / (hi - lo), dtype=torch.float64)
        G[:, j] = rot.slerp_matrices(G[:, SPINE_CHAIN[lo]], G[:, SPINE_CHAIN[hi]], w)
    for j in range(NUM_JOINTS):
        if j not in idx and j not in SPINE_CHAIN:
            G[:, j] = G[:, SMPL22_PARENTS[j]]
    return G


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


def _unit_from_size(spec: RigSpec, source: SourceMotion, m: dict[str, int]) -> RigSpec:
    """``spec`` with the unit (of ``rig_auto.UNITS`` and the map's own ``scale``) that
    makes the mapped body closest to SMPL's size (module ``rig_auto``, step 4)."""
    from mage.data import rig_auto

    size = rig_auto.chain_size(source.rest_positions(), source.parents, m) / float(source.meta["scale"])
    extra = {} if spec.scale is None else {f"{spec.name} ({spec.scale:g} m)": spec.scale}
    unit, scale = rig_auto.choose_unit(size, extra)
    return replace(spec, scale=scale, unit=unit)


AXES_OVERRIDE_CLARITY = 0.7  # a preset's axes are replaced only by a clear geometry


def _checked_axes(spec: RigSpec, rest: np.ndarray, m_rest: dict[str, int], P: torch.Tensor,
                  m_P: dict[str, int]) -> RigSpec:
    """A preset matched by joint names, with its up axis and handedness replaced by the
    file's own (``rig_auto.detect_axes``) where they disagree clearly (a z-up export of a
    y-up rig). rest: (J, 3) zero pose, used when it stands (a T/A-pose rig); else the
    joint paths P (T, Jk, 3). m_rest / m_P: SMPL joint -> index in each."""
    from mage.data import rig_auto

    if rig_auto.zero_pose_stands(rest, m_rest):
        X, m = rest[None], m_rest
    else:
        T = P.shape[0]
        frames = np.unique(np.linspace(0, T - 1, min(T, rig_auto.AXIS_FRAMES)).round().astype(int))
        X, m = P[frames].numpy(), m_P
    try:
        up, left, lh, clarity = rig_auto.detect_axes(X, m)
    except ValueError:
        return spec
    A = spec.body_to_source()
    feet = 0.5 * (X[:, m["left_ankle"]] + X[:, m["right_ankle"]])
    up_v = (X[:, m["head"]] - feet).mean(0)
    along = float(up_v @ A[:, 1]) / max(float(np.linalg.norm(up_v)), 1e-12)
    up_ok = up @ A[:, 1] > 0.99 or along > 0.3  # plausible (lying clips blur the motion's)
    if clarity < AXES_OVERRIDE_CLARITY or (up_ok and lh == spec.left_handed):
        return spec
    if up_ok:  # only the handedness differs (the toes say so)
        up = A[:, 1]
    up_name, fwd = rig_auto.axes_names(up, left, lh)
    logger.info("%s: the file's axes are up %s, forward %s%s, not the preset's", spec.name,
                up_name, fwd, " (mirrored)" if lh else "")
    return replace(spec, up=up_name, forward=fwd, left_handed=lh, rest_axes={})


def _rig_axes(spec: RigSpec, source: SourceMotion) -> dict:
    """The non-joint fields of a joint map, for writing it back (``--write-map``)."""
    d = {"up": spec.up, "forward": spec.forward, "left_handed": spec.left_handed,
         "align_bones": spec.align_bones}
    scale = spec.scale if spec.scale is not None else source.meta.get("scale")
    if scale is not None and source.meta.get("format") == "bvh":
        d["scale"] = float(scale)
    if spec.rest_axes:
        d["rest_axes"] = rig_to_dict(spec)["rest_axes"]
    return d


def _unit_name(scale) -> str:
    """"cm (0.01 m)" for a file-unit scale, "" when unknown."""
    if scale is None:
        return ""
    from mage.data.rig_auto import UNITS

    for k, v in UNITS.items():
        if abs(float(scale) - v) < 1e-9 * max(v, 1e-12) + 1e-12:
            return f"{k} ({v:g} m)"
    return f"{float(scale):g} m"
