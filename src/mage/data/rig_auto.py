"""Automatic joint maps: any humanoid rig -> SMPL-22 joints, axes and unit, from the
skeleton itself (used by ``retarget(..., rig="auto")`` when no preset matches).

Method:

1. Names. Each joint name is split into words (camelCase, ``_``, ``.``, spaces, digits,
   a ``namespace:`` prefix dropped) and read for a SIDE (Left/Right, L/R, l_/r_, _l/_r,
   .L/.R, "Bip01 L Thigh", a glued "lfemur" / "rShldr") and a ROLE from the synonym table
   :data:`ROLE_WORDS` (Thigh/UpLeg/UpperLeg/Hip/Femur, Shin/Leg/LowerLeg/Knee/Calf/Tibia,
   Foot/Ankle, Toe/Toes/ToeBase, Clavicle/Collar, Arm/UpperArm/Humerus/Shldr,
   ForeArm/LowerArm/Elbow/Radius, Hand/Wrist, Neck, Head; "Shoulder" is either the collar
   or the upper arm, decided by the chain). Twist / roll / share / IK bones, fingers,
   toes' digits, eyes, jaws and end sites get no role.
2. Tree. The hands and ankles are the shallowest joints with those roles on each side,
   the head the shallowest unsided head joint. The pelvis is the common ancestor of both
   ankles and the head; the chest (SMPL spine3) that of both hands. Each limb is the path
   from the trunk to its end; its roles are taken in order along it, and a role no name
   gives is taken by position along the chain (a knee or elbow: the joint nearest the
   middle of the chain's length; a hip or shoulder: the nearest usable joint above it;
   a collar: a joint between the chest and the shoulder). The trunk path pelvis -> head
   gives the spine joints (first, middle by length, the chest) and the neck (the first
   joint named neck). Chains shorter than
   SMPL's leave joints unmapped (filled by the retargeting); longer ones skip joints.
3. Geometry, in world space (FK of up to :data:`AXIS_FRAMES` frames): up is the axis
   nearest the mean direction from the ankles to the head; left comes from the mapped
   left/right hips and shoulders; forward is left x up turned to the nearest axis, and
   where toes are mapped and point the other way the file is mirrored (left-handed;
   without toes a mirrored file is not recognised). When the zero pose itself stands
   (a T- or A-pose rig: :func:`zero_pose_stands`) its own up and left are used, so that
   clips that lie or crawl do not blur them.
4. Unit: the candidate of :data:`UNITS` that makes the thigh + shin + pelvis-to-head
   lengths (along the chains, so any rest pose works) closest to SMPL's.

The confidence in ``AutoRig.confidence`` (0..1) is the share of the 22 SMPL joints found
by name, times how clearly up and left/right stand out of the geometry.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from mage.core.skeleton import Skeleton

INCH = 0.0254  # metres
# Units a file may use (metres per file unit), by name.
UNITS: dict[str, float] = {
    "m": 1.0, "cm": 0.01, "mm": 0.001, "inch": INCH, "cmu": INCH / 0.45,  # CMU: 1/0.45 inch
}
AXIS_FRAMES = 60  # frames (evenly spaced) whose FK decides the axes
_SIDES = {"l": "L", "left": "L", "lft": "L", "r": "R", "right": "R", "rgt": "R"}
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# Words that make a joint unusable for any role.
_SKIP_WORDS = {
    "twist", "roll", "share", "bone", "nub", "end", "site", "ik", "fk", "pole", "target",
    "eye", "eyes", "jaw", "teeth", "tongue", "facial", "breast", "ribs", "finger", "fingers",
    "thumb", "index", "middle", "mid", "ring", "pinky", "little", "carpal", "metacarpal",
    "joint", "buttock", "ear", "hair", "weapon", "prop", "hat", "tail", "nose", "brow", "lip",
    "cheek", "top", "helper", "dummy", "null", "aux", "corrective", "upperneck", "fingerbase",
    "headtop", "headend", "eyelid", "pinkytoe", "bigtoe", "midtoe", "ringtoe", "indextoe",
}
# Glued side prefixes ("lfemur", "rShldr") are recognised only before these part words.
_PART_STEMS = (
    "hip", "femur", "tibia", "foot", "toe", "clavicle", "collar", "humerus", "radius", "wrist",
    "hand", "finger", "thumb", "shldr", "shoulder", "thigh", "shin", "knee", "ankle", "elbow",
    "arm", "forearm", "leg", "upleg", "eye", "buttock", "calf", "uparm", "index", "pinky",
    "ring", "mid", "lowerarm", "upperarm", "lowerleg", "upperleg",
)
_PREFIX_WORDS = {"bip", "bip01", "cc", "base", "mixamorig", "def", "org", "mch", "bn", "b",
                 "jnt", "j", "ctrl", "sk", "rig", "character", "char"}
# SMPL role -> patterns on a joint's part string (its non-side words joined, lower case).
ROLE_WORDS: dict[str, tuple[str, ...]] = {
    "foot": ("toe", "ball"),
    "ankle": ("foot", "ankle"),
    "hip": ("upleg", "upperleg", "thigh", "femur", "uleg", "hip"),
    "knee": ("lowerleg", "lowleg", "shin", "knee", "calf", "tibia", "crus", "leg"),
    "elbow": ("forearm", "lowerarm", "lowarm", "elbow", "radius", "ulna"),
    "shoulder": ("upperarm", "uparm", "humerus", "shldr", "arm"),
    "collar": ("clavicle", "collar", "clav", "shoulder"),
    "wrist": ("hand", "wrist"),
    "head": ("head",),
    "neck": ("neck",),
}


@dataclass
class JointName:
    side: str | None  # "L", "R" or None
    part: str  # non-side words, lower case, no digits
    skip: bool  # twist bones, fingers, end sites, ... (never mapped)

    def role(self) -> str | None:
        if self.skip:
            return None
        for role, words in ROLE_WORDS.items():
            if any(w in self.part for w in words):
                if role == "hip" and self.side is None:
                    return None  # an unsided "Hips" is the pelvis
                if role == "knee" and ("upleg" in self.part or "upperleg" in self.part):
                    continue
                return role
        return None


def parse_name(name: str) -> JointName:
    """Side and part words of a joint name ("Bip01 L Thigh" -> L, "thigh")."""
    base = re.split(r"[:|]", name)[-1]
    words = [w.lower() for w in _WORD.findall(base)]
    side = None
    kept = []
    for w in words:
        if w in _SIDES and side is None:
            side = _SIDES[w]
        elif not w.isdigit():
            kept.append(w)
    while len(kept) > 1 and kept[0] in _PREFIX_WORDS:
        kept.pop(0)
    if side is None and kept:
        for pre, s in (("left", "L"), ("right", "R"), ("l", "L"), ("r", "R")):
            rest = kept[0][len(pre):]
            if kept[0].startswith(pre) and rest and rest.startswith(_PART_STEMS):
                side, kept[0] = s, rest
                break
    part = "".join(kept)
    skip = (any(w in _SKIP_WORDS for w in kept) or part in _SKIP_WORDS or "twist" in part
            or "joint" in part or "finger" in part or part.endswith(("end", "nub", "top")))
    return JointName(side, part, skip)


@dataclass
class AutoRig:
    """An automatic joint map and how sure it is (see the module docstring)."""

    joints: dict[str, str]  # SMPL joint name -> source joint name
    up: str
    forward: str
    left_handed: bool
    unit: str  # a key of UNITS, or "given"
    scale: float  # file units -> metres
    confidence: float
    by_name: list[str] = field(default_factory=list)  # SMPL joints found by name
    by_position: list[str] = field(default_factory=list)  # found by position on a chain
    notes: list[str] = field(default_factory=list)


def _depths(parents) -> list[int]:
    d = []
    for p in parents:
        d.append(0 if p < 0 else d[p] + 1)
    return d


def _path(parents, a: int, b: int) -> list[int]:
    """Joints from a (exclusive) down to its descendant b (inclusive); [] if not below."""
    out = []
    while b >= 0 and b != a:
        out.append(b)
        b = parents[b]
    return out[::-1] if b == a else []


def _lca(parents, joints) -> int:
    chains = []
    for j in joints:
        c = []
        while j >= 0:
            c.append(j)
            j = parents[j]
        chains.append(c[::-1])
    k = 0
    while all(len(c) > k for c in chains) and len({c[k] for c in chains}) == 1:
        k += 1
    return chains[0][k - 1]


def _nearest_by_fraction(path: list[int], arc: np.ndarray, frac: float, lo: int, hi: int,
                         usable) -> int | None:
    """Index into ``path`` (strictly between lo and hi) nearest ``frac`` of the arc from
    path[lo] to path[hi]."""
    best, best_d = None, math.inf
    span = arc[path[hi]] - arc[path[lo]]
    if span <= 0:
        return None
    for k in range(lo + 1, hi):
        if not usable(path[k]):
            continue
        d = abs((arc[path[k]] - arc[path[lo]]) / span - frac)
        if d < best_d:
            best, best_d = k, d
    return best


@dataclass
class _Tree:
    """What :func:`map_joints` knows of each source joint: parsed name, role, depth,
    parent, and the arc length from the root along the tree."""

    parents: tuple[int, ...]
    info: list[JointName]
    roles: list[str | None]
    depth: list[int]
    seg: np.ndarray  # (J,) offset lengths
    arc: np.ndarray  # (J,) length along the tree from the root

    @classmethod
    def of(cls, joint_names, parents, offsets) -> "_Tree":
        parents = tuple(parents)
        info = [parse_name(n) for n in joint_names]
        seg = np.linalg.norm(np.asarray(offsets, dtype=np.float64), axis=1)
        arc = np.zeros(len(joint_names))
        for j in range(1, len(joint_names)):
            arc[j] = arc[parents[j]] + seg[j]
        return cls(parents, info, [i.role() for i in info], _depths(parents), seg, arc)

    @property
    def J(self) -> int:
        return len(self.info)

    def usable(self, j: int) -> bool:
        return not self.info[j].skip

    def shallowest(self, role: str, side: str | None) -> int | None:
        c = [j for j in range(self.J) if self.roles[j] == role and self.info[j].side == side]
        return min(c, key=lambda j: (self.depth[j], j)) if c else None

    def path(self, a: int, b: int) -> list[int]:
        """``a`` and the joints from it down to ``b``."""
        return [a] + _path(self.parents, a, b)


def _unmappable(where: str, why: str) -> ValueError:
    return ValueError(f"{where}: cannot map its joints to SMPL automatically: {why}; "
                      "pass --rig map.json")


def _by_position(tree: _Tree, path: list[int], middle: int | None, upper: int | None,
                 names: tuple[str, str], why: tuple[str, str], by_pos: set[str],
                 where: str) -> tuple[int, int]:
    """A limb's middle joint (knee, elbow) and upper joint (hip, shoulder) as indices
    into ``path``, filling those not found by name: the middle one halfway along the
    path (below the upper one where that is named), the upper one the nearest usable
    joint above the middle. ``names``: their SMPL names; ``why``: what to say when none."""
    if middle is None:
        lo = upper if upper is not None else 1
        middle = _nearest_by_fraction(path, tree.arc, 0.5, lo, len(path) - 1, tree.usable)
        by_pos.add(names[0])
    if middle is None:
        raise _unmappable(where, why[0])
    if upper is None:
        upper = next((k for k in range(middle - 1, 0, -1) if tree.usable(path[k])), None)
        by_pos.add(names[1])
    if upper is None:
        raise _unmappable(where, why[1])
    return middle, upper


def _map_leg(tree: _Tree, pelvis: int, ankle: int, s: str, side: str, found: dict[str, int],
             by_pos: set[str], where: str) -> None:
    """Hip, knee, ankle (+ toe) along pelvis -> ankle."""
    roles = tree.roles
    path = tree.path(pelvis, ankle)
    found[f"{side}_ankle"] = ankle
    toes = [j for j in range(tree.J) if roles[j] == "foot" and tree.info[j].side in (s, None)
            and _path(tree.parents, ankle, j)]
    if toes:
        found[f"{side}_foot"] = min(toes, key=lambda j: (tree.depth[j], j))
    knee = next((k for k in range(1, len(path) - 1) if roles[path[k]] == "knee"), None)
    hip = None
    if knee is not None:
        hip = next((k for k in range(knee - 1, 0, -1) if roles[path[k]] == "hip"), None)
    knee, hip = _by_position(
        tree, path, knee, hip, (f"{side}_knee", f"{side}_hip"),
        (f"no {side} knee between the hip and the ankle", f"no {side} hip joint below the pelvis"),
        by_pos, where)
    found[f"{side}_hip"], found[f"{side}_knee"] = path[hip], path[knee]


def _map_arm(tree: _Tree, chest: int, hand: int, side: str, found: dict[str, int],
             by_pos: set[str], where: str) -> None:
    """Collar, shoulder, elbow, wrist along chest -> hand."""
    roles, info = tree.roles, tree.info
    path = tree.path(chest, hand)
    found[f"{side}_wrist"] = hand
    elbow = next((k for k in range(1, len(path) - 1) if roles[path[k]] == "elbow"), None)
    top = elbow if elbow is not None else len(path) - 1
    sh = next((k for k in range(top - 1, 0, -1) if roles[path[k]] == "shoulder"), None)
    if sh is None:  # no upper-arm joint: one named "shoulder" (a collar word too) is the shoulder
        sh = next((k for k in range(top - 1, 0, -1)
                   if roles[path[k]] == "collar" and "shoulder" in info[path[k]].part), None)
    elbow, sh = _by_position(
        tree, path, elbow, sh, (f"{side}_elbow", f"{side}_shoulder"),
        (f"no {side} elbow between the shoulder and the hand", f"no {side} shoulder joint"),
        by_pos, where)
    collar = next((k for k in range(sh - 1, 0, -1) if roles[path[k]] == "collar"), None)
    if collar is None and sh > 1 and tree.usable(path[sh - 1]) and tree.seg[path[sh]] > 0:
        collar = sh - 1  # a joint between the chest and the shoulder: the collar
        by_pos.add(f"{side}_collar")
    if collar is not None:
        found[f"{side}_collar"] = path[collar]
    found[f"{side}_shoulder"], found[f"{side}_elbow"] = path[sh], path[elbow]


def _map_trunk(tree: _Tree, trunk: list[int], chest: int, found: dict[str, int],
               by_pos: set[str]) -> None:
    """Spine joints up to the chest, then the neck."""
    roles, arc = tree.roles, tree.arc
    inner = trunk[1:-1]
    necks = [j for j in inner if roles[j] == "neck"]
    if necks and trunk.index(necks[0]) > trunk.index(chest):
        found["neck"] = necks[0]
    elif not necks and chest != trunk[-2] and chest in inner and tree.usable(trunk[-2]):
        found["neck"] = trunk[-2]
        by_pos.add("neck")
    spine = [j for j in trunk[1:trunk.index(chest) + 1] if tree.usable(j) or j == chest]
    if spine:
        found["spine3"] = spine[-1]
        if len(spine) >= 2:
            found["spine1"] = spine[0]
        if len(spine) >= 3:
            mid = arc[spine[0]] + 0.5 * (arc[spine[-1]] - arc[spine[0]])
            found["spine2"] = min(spine[1:-1], key=lambda j: abs(arc[j] - mid))


def map_joints(joint_names, parents, offsets, where: str = "motion"):
    """SMPL joint -> source joint index from names and the tree (module docstring, 1-2).

    offsets: (J, 3) used only for lengths along chains. Returns (mapping, by_name set,
    by_position set). Raises ValueError naming ``where`` and what was not found.
    """
    tree = _Tree.of(joint_names, parents, offsets)
    hands = {s: tree.shallowest("wrist", s) for s in "LR"}
    ankles = {s: tree.shallowest("ankle", s) for s in "LR"}
    head = tree.shallowest("head", None)
    missing = [what for what, j in (
        ("left hand/wrist", hands["L"]), ("right hand/wrist", hands["R"]),
        ("left foot/ankle", ankles["L"]), ("right foot/ankle", ankles["R"]), ("head", head))
        if j is None]
    if missing:
        raise ValueError(
            f"{where}: cannot map its joints to SMPL automatically: no joint found for "
            f"{', '.join(missing)} (names: {', '.join(joint_names[:8])}, ...); write a joint "
            "map and pass --rig map.json (see `mage data import --write-map`)")
    pelvis = _lca(tree.parents, [ankles["L"], ankles["R"], head])
    chest = _lca(tree.parents, [hands["L"], hands["R"], head])
    trunk = tree.path(pelvis, head)
    if chest not in trunk or _lca(tree.parents, [ankles["L"], head]) != pelvis:
        raise _unmappable(where, "the legs, arms and head do not branch like a human's")

    found: dict[str, int] = {"pelvis": pelvis, "head": head}
    by_pos: set[str] = set()
    for s, side in (("L", "left"), ("R", "right")):
        _map_leg(tree, pelvis, ankles[s], s, side, found, by_pos, where)
    for s, side in (("L", "left"), ("R", "right")):
        _map_arm(tree, chest, hands[s], side, found, by_pos, where)
    _map_trunk(tree, trunk, chest, found, by_pos)
    by_name = {k for k in found if k not in by_pos}
    return found, by_name, by_pos


def _axis_name(v: np.ndarray) -> str:
    a = int(np.argmax(np.abs(v)))
    return ("-" if v[a] < 0 else "") + "xyz"[a]


def _snap(v: np.ndarray, exclude: int | None = None) -> np.ndarray:
    w = v.copy()
    if exclude is not None:
        w[exclude] = 0.0
    a = int(np.argmax(np.abs(w)))
    out = np.zeros(3)
    out[a] = math.copysign(1.0, w[a])
    return out


def detect_axes(P: np.ndarray, m: dict[str, int]) -> tuple[np.ndarray, np.ndarray, bool, float]:
    """(up axis (3,), left direction (3,), left_handed, clarity 0..1) from world positions
    P (T, J, 3) of the mapped joints ``m`` (SMPL name -> joint index): up is the axis
    nearest the mean ankles -> head direction, left the mean right -> left hip and
    shoulder direction across it; toes pointing against left x up frame after frame
    mean the axes are mirrored."""
    feet = 0.5 * (P[:, m["left_ankle"]] + P[:, m["right_ankle"]])
    up_v = (P[:, m["head"]] - feet).mean(0)
    n = np.linalg.norm(up_v)
    if not n > 0:
        raise ValueError("the head and the ankles coincide")
    up = _snap(up_v)
    up_clarity = abs(up_v @ up) / n
    left_v = (P[:, m["left_hip"]] - P[:, m["right_hip"]]
              + P[:, m["left_shoulder"]] - P[:, m["right_shoulder"]])
    left_v = left_v - np.outer(left_v @ up, up)
    left_m = left_v.mean(0)
    left_clarity = float(np.linalg.norm(left_m) / max(np.linalg.norm(left_v, axis=1).mean(), 1e-12))
    left_handed = False
    if "left_foot" in m and "right_foot" in m:
        toe = (P[:, m["left_foot"]] - P[:, m["left_ankle"]]
               + P[:, m["right_foot"]] - P[:, m["right_ankle"]])
        toe = toe - np.outer(toe @ up, up)
        agree = np.sign(toe @ np.cross(left_m / max(np.linalg.norm(left_m), 1e-12), up))
        left_handed = bool(agree.mean() < -0.5)
    return up, left_m, left_handed, float(up_clarity * min(1.0, left_clarity))


def zero_pose_stands(rest: np.ndarray, m: dict[str, int]) -> bool:
    """Whether a rest pose (J, 3) is a standing T/A-pose: head straight above the pelvis
    and both legs straight below their hips along one axis (cos > 0.8)."""
    up = _snap(rest[m["head"]] - rest[m["pelvis"]])

    def cos(a, b):
        v = rest[m[b]] - rest[m[a]]
        n = np.linalg.norm(v)
        return float(v @ up / n) if n > 0 else 0.0

    return (cos("pelvis", "head") > 0.8 and cos("left_hip", "left_ankle") < -0.8
            and cos("right_hip", "right_ankle") < -0.8)


def axes_names(up: np.ndarray, left: np.ndarray, left_handed: bool) -> tuple[str, str]:
    """(up, forward) axis names; forward = left x up turned to the nearest axis (the
    opposite for mirrored axes)."""
    fwd = _snap(np.cross(left, up), exclude=int(np.argmax(np.abs(up))))
    return _axis_name(up), _axis_name(-fwd if left_handed else fwd)


def chain_size(P0: np.ndarray, parents, m: dict[str, int]) -> float:
    """Thigh + shin (mean of both legs) + pelvis-to-head, each summed along the joint
    chain of one pose P0 (J, 3): independent of the pose, in P0's units."""
    def along(a, b):
        path = [a] + _path(parents, a, b)
        return float(sum(np.linalg.norm(P0[path[k + 1]] - P0[path[k]]) for k in range(len(path) - 1)))
    legs = np.mean([along(m[f"{s}_hip"], m[f"{s}_ankle"]) for s in ("left", "right")])
    return float(legs + along(m["pelvis"], m["head"]))


def smpl_chain_size() -> float:
    rest = Skeleton.smpl22().rest_positions()
    d = lambda a, b: float(np.linalg.norm(rest[a] - rest[b]))  # noqa: E731
    legs = 0.5 * (d(1, 4) + d(4, 7) + d(2, 5) + d(5, 8))
    return legs + d(0, 3) + d(3, 6) + d(6, 9) + d(9, 12) + d(12, 15)


def choose_unit(size_file_units: float, extra: dict[str, float] | None = None) -> tuple[str, float]:
    """The unit of :data:`UNITS` (and ``extra``: name -> metres) making a body of
    ``size_file_units`` (:func:`chain_size`) closest to SMPL's, on a log scale."""
    target = smpl_chain_size()
    units = {**UNITS, **(extra or {})}
    name = min(units, key=lambda u: abs(math.log(max(size_file_units, 1e-12) * units[u] / target)))
    return name, units[name]
