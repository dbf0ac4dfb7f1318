"""Source-rig motions (any BVH / ASF skeleton) and their retargeting to SMPL-22.

Importers (``mage.data.bvh``, ``mage.data.asfamc``) read a file into a
:class:`SourceMotion` (the file's own joint tree, metres, the file's own world axes);
:func:`retarget` turns it into a :class:`mage.core.Motion` on the DEFAULT SMPL skeleton
(``Skeleton.smpl22()``), z-up world, with ``motion.meta["rig"]`` naming the joint map.

Joint maps ("rigs") are JSON files in ``mage/data/rigs/`` (presets: :func:`list_presets`)
or a user's own JSON / YAML file with the same fields::

    {"name": "my_rig",                   # optional, defaults to the file name
     "up": "y", "forward": "z",          # source world axes of up and of the way the
                                         # rig faces in its T-pose ("-z" allowed)
     "scale": 0.01,                      # optional: file units -> metres when the
                                         # caller gives none (BVH only)
     "align_bones": true,                # align limb bones with SMPL's (step 2)
     "joints": {"pelvis": "Hips", "left_hip": "LeftUpLeg", ...},  # SMPL name -> source
     "rest_axes": {"Hips": ["x", "y", "z"], ...}}                 # optional, see below

Method (all corrections are computed once per file from the two rest poses):

1. Rest frames. Every SourceMotion's zero pose has all local rotations = identity, so
   every joint frame there is parallel to the source world. The SMPL rest pose is the
   T-pose in the body frame (x left, y up, z forward). ``A`` maps the body frame to the
   source world (columns: left = up x forward, up, forward of the preset).
2. T-pose orientation ``Q_s`` of each mapped source joint ``s`` (joint frame -> source
   world when the rig stands in SMPL's T-pose), joints taken parents first. It starts
   from a hint ``H_s``: the preset's ``rest_axes[s]`` if given (where the joint's local
   x, y, z axes point in the body frame in the T-pose, e.g. ``["-x", "-y", "z"]``, for
   rigs whose zero pose is not a T-pose: Character Creator bones point along their
   local +y), else the zero-pose frame carried along by the nearest mapped ancestor
   (``H_s = Q_ancestor``: a child keeps its rest angle to its parent, as when a rig is
   posed into a T-pose from the root outwards). For the LIMB joints (hips, knees,
   ankles, collars, shoulders, elbows), whose rest bone direction is a pose choice of
   the rig (T- vs A-pose, CMU's legs splayed by 20 degrees), ``Q_s`` is then the
   smallest rotation turning the source bone (to the joint mapped to the SMPL child)
   onto SMPL's bone, applied to ``H_s`` (so the hint's twist about the bone is kept).
   Trunk and end joints (pelvis, spine, neck, head, wrists, feet) are not aligned:
   their bone directions differ between rigs because joints sit at different
   anatomical places (SMPL's head joint is 5 cm in front of its neck joint, CMU's root
   is behind its hip joints), not because the pose differs; they keep ``H_s``.
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
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import roma
import torch

from mage.core import rotations as rot
from mage.core.checks import check_fps
from mage.core.kinematics import local_from_global
from mage.core.skeleton import rest_positions
from mage.core.motion import Motion
from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS, Skeleton

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
class SourceMotion:
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

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(f"joint {name!r} is not in this rig") from None

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
    rest_axes: dict = field(default_factory=dict)  # source name -> (3, 3) body-frame axes
    description: str = ""
    origin: str = ""  # preset or file it came from

    def body_to_source(self) -> np.ndarray:
        """A (3, 3): SMPL body frame (x left, y up, z forward) -> source world."""
        up, fwd = _axis_vector(self.up, self.origin), _axis_vector(self.forward, self.origin)
        if abs(up @ fwd) > 1e-9:
            raise ValueError(f"{self.origin}: up {self.up!r} and forward {self.forward!r} "
                             "must be different axes")
        return np.stack([np.cross(up, fwd), up, fwd], axis=1)


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
             "rest_axes"}
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
    text = path.read_text()
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


def detect_rig(joint_names: tuple[str, ...], where: str = "motion") -> RigSpec:
    """The preset whose joint names match ``joint_names`` best (all required joints
    found); ValueError naming ``where`` and listing the presets otherwise."""
    best, best_score = None, (-1.0, -1.0)
    for name in list_presets():
        spec = load_rig(name)
        found = match_joints(spec, joint_names)
        if any(j not in found for j in REQUIRED_JOINTS):
            continue
        score = _match_score(spec, joint_names)
        if score > best_score:
            best, best_score = spec, score
    if best is None:
        raise ValueError(
            f"{where}: no joint-map preset matches its joints (first names: "
            f"{', '.join(joint_names[:6])}, ...); presets: {', '.join(list_presets())}. "
            "Pass rig= a preset name or a JSON/YAML joint map (see mage.data.retarget)")
    return best


def resolve_rig(rig, joint_names: tuple[str, ...], where: str = "motion") -> tuple[RigSpec, bool]:
    """(RigSpec, auto-detected?) for ``rig`` = "auto", a preset, a file, or a RigSpec."""
    if isinstance(rig, RigSpec):
        return rig, False
    if rig is None or (isinstance(rig, str) and rig == "auto"):
        spec = detect_rig(joint_names, where)
        logger.info("%s: rig %r auto-detected", where, spec.name)
        return spec, True
    return load_rig(rig), False


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
    root_scale: SMPL leg length / source leg length (T-pose), applied to the hip path.
    """

    A: np.ndarray
    W: np.ndarray
    C: dict
    Q: dict
    root_scale: float


def rest_alignment(source: SourceMotion, spec: RigSpec, mapped: dict[str, int],
                   skeleton: Skeleton) -> RestAlignment:
    """The constant corrections of :func:`retarget` (module docstring, steps 1, 2, 5)."""
    where = source.meta.get("source") or source.name or "motion"
    A = spec.body_to_source()
    W = _rx90() @ A.T
    rest = source.rest_positions()
    smpl_rest = skeleton.rest_positions()
    children = _smpl_children()
    idx = {SMPL22_JOINT_NAMES.index(k): v for k, v in mapped.items()}

    def first_mapped(c: int) -> int | None:
        queue = [c]
        while queue:
            k = queue.pop(0)
            if k in idx:
                return k
            queue.extend(children[k])
        return None

    Q, C = {}, {}
    for j in sorted(idx):  # parents before children
        s = idx[j]
        name = source.joint_names[s]
        a = SMPL22_PARENTS[j]
        while a >= 0 and a not in Q:
            a = SMPL22_PARENTS[a]
        if name in spec.rest_axes:  # the preset's T-pose frame
            H = A @ spec.rest_axes[name]
        else:  # the zero-pose frame, carried along by the nearest mapped ancestor
            H = Q[a] if a >= 0 else np.eye(3)
        Q[j] = H
        if spec.align_bones and j in ALIGNED_JOINTS:
            d = first_mapped(children[j][0])
            if d is not None and idx[d] != s and _is_ancestor(source.parents, s, idx[d]):
                v = rest[idx[d]] - rest[s]  # the bone in the joint's frame (zero pose)
                u = A @ (smpl_rest[d] - smpl_rest[j])  # SMPL's bone, source world
                if np.linalg.norm(v) > 1e-9:
                    Q[j] = _swing(H @ v, u, f"{where}: joint {name}") @ H
        C[j] = Q[j].T @ A

    # Leg length: hip-midpoint height above the feet in the T-pose, source vs SMPL.
    def leg_height(side_joints_list) -> tuple[float, float]:
        src_h, smpl_h = [], []
        for chain in side_joints_list:
            chain = [k for k in chain if k in idx]
            v_src = sum((A.T @ Q[a] @ (rest[idx[b]] - rest[idx[a]]) for a, b in itertools.pairwise(chain)),
                        np.zeros(3))
            src_h.append(-v_src[1])
            smpl_h.append(smpl_rest[chain[0]][1] - smpl_rest[chain[-1]][1])
        return float(np.mean(src_h)), float(np.mean(smpl_h))

    feet = (10, 11) if 10 in idx and 11 in idx else (7, 8)
    src_leg, smpl_leg = leg_height([(1, 4, 7, feet[0]), (2, 5, 8, feet[1])])
    if not src_leg > 1e-3:
        raise ValueError(f"{where}: the rig's legs have no height in its T-pose "
                         f"({src_leg:.4f} m); check the joint map")
    return RestAlignment(A=A, W=W, C=C, Q=Q, root_scale=smpl_leg / src_leg)


def retarget(source: SourceMotion, rig="auto", name: str | None = None) -> Motion:
    """Retarget ``source`` onto the default SMPL-22 skeleton (method: module docstring).

    rig: "auto" (best-matching preset, logged and stored in meta["rig"]), a preset
        name, a JSON/YAML joint-map path, or a :class:`RigSpec`.
    Returns a Motion (float32, z-up, metres) at the source's frame rate.
    """
    where = source.meta.get("source") or source.name or "motion"
    spec, auto = resolve_rig(rig, source.joint_names, where)
    mapped = match_joints(spec, source.joint_names)
    missing = [f"{k} -> {spec.joints[k]}" for k in REQUIRED_JOINTS if k not in mapped]
    if missing:
        raise ValueError(f"{where}: rig {spec.name!r} needs joints this file lacks: "
                         f"{', '.join(missing)}")
    logger.debug("%s: rig %r, %d of %d mapped joints found", where, spec.name, len(mapped),
                 len(spec.joints))
    skeleton = Skeleton.smpl22()
    al = rest_alignment(source, spec, mapped, skeleton)
    # Source FK restricted to the mapped joints and their ancestors (not the fingers).
    needed = set()
    for s in mapped.values():
        while s >= 0 and s not in needed:
            needed.add(s)
            s = source.parents[s]
    keep = sorted(needed)
    where_in = {s: k for k, s in enumerate(keep)}
    G_src, P_src = source_forward_kinematics(  # (T, Jk, 3, 3), (T, Jk, 3)
        source.rotations[:, keep], source.translations[:, keep],
        tuple(-1 if source.parents[s] < 0 else where_in[source.parents[s]] for s in keep))
    T = source.num_frames
    W = torch.from_numpy(al.W)
    idx = {SMPL22_JOINT_NAMES.index(k): where_in[v] for k, v in mapped.items()}

    G = torch.empty(T, 22, 3, 3, dtype=torch.float64)
    have = sorted(idx)
    C = torch.from_numpy(np.stack([al.C[j] for j in have]))
    G[:, have] = W @ G_src[:, [idx[j] for j in have]] @ C

    # Step 4: fill the joints the source lacks.
    for k, j in enumerate(SPINE_CHAIN):
        if j in idx:
            continue
        lo = max(i for i in range(k) if SPINE_CHAIN[i] in idx)
        hi = min(i for i in range(k + 1, len(SPINE_CHAIN)) if SPINE_CHAIN[i] in idx)
        w = torch.full((T,), (k - lo) / (hi - lo), dtype=torch.float64)
        G[:, j] = rot.slerp_matrices(G[:, SPINE_CHAIN[lo]], G[:, SPINE_CHAIN[hi]], w)
    for j in range(22):
        if j not in idx and j not in SPINE_CHAIN:
            G[:, j] = G[:, SMPL22_PARENTS[j]]

    local = local_from_global(G, SMPL22_PARENTS)
    # Step 5: the SMPL hip midpoint follows the source hip midpoint.
    hips_src = 0.5 * (P_src[:, idx[1]] + P_src[:, idx[2]]) @ W.T
    hips_smpl = torch.tensor(0.5 * (skeleton.offsets[1] + skeleton.offsets[2]))
    pelvis = al.root_scale * hips_src - (G[:, 0] @ hips_smpl[:, None])[..., 0]
    trans = pelvis - torch.tensor(skeleton.offsets[0])
    meta = dict(source.meta)
    meta.update(rig=spec.name, rig_auto=auto)
    return Motion(local.float(), trans.float(), source.fps, skeleton,
                  name=source.name if name is None else name, meta=meta)
