"""Joint maps ("rigs"): which source joint plays which SMPL-22 joint, with the rig's axes and unit.

A joint map is a :class:`RigSpec`. It comes from a JSON preset in ``mage/data/rigs/``
(:func:`list_presets`), from a user's own JSON / YAML file with the same fields
(:func:`load_rig`), or, for ``rig="auto"`` when no preset matches the joint names, from
the skeleton itself (:func:`auto_rig`, built on the names / tree / geometry analysis of
``mage.data.rig_auto``)::

    {"name": "my_rig",                   # optional, defaults to the file name
     "up": "y", "forward": "z",          # source world axes of up and of the way the
                                         # rig faces in its T-pose ("-z" allowed)
     "scale": 0.01,                      # optional: file units -> metres when the
                                         # caller gives none (BVH only)
     "align_bones": true,                # align limb bones with SMPL's (mage.data.rest_alignment)
     "left_handed": false,               # mirrored axes: left = forward x up
     "joints": {"pelvis": "Hips", "left_hip": "LeftUpLeg", ...},  # SMPL name -> source
     "rest_axes": {"Hips": ["x", "y", "z"], ...}}                 # optional: where the joint's
                                         # local x, y, z axes point in the body frame in the T-pose

Joint names match exactly first, then ignoring case and a ``namespace:`` prefix
(:func:`match_joints`). :func:`resolve_rig` turns what a caller passes (``"auto"``, a
preset name, a file, a RigSpec) into the map used.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from mage.core.constants import NUM_JOINTS
from mage.core.skeleton import SMPL22_JOINT_NAMES
from mage.data import rig_auto
from mage.data.source_motion import SourceMotion, evenly_spaced_frames, source_forward_kinematics

logger = logging.getLogger(__name__)

# SMPL joints a joint map must provide; the retargeting fills the others (mage.data.retarget).
REQUIRED_JOINTS: tuple[str, ...] = (
    "pelvis", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist",
)
_AXES = {"x": 0, "y": 1, "z": 2}
_FIELDS = {"name", "description", "up", "forward", "scale", "align_bones", "joints",
           "rest_axes", "left_handed", "confidence", "unit"}


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
        """(3, 3) rotation ``A``: SMPL body frame (x left, y up, z forward) -> source world.

        Its columns are left, up and forward in source-world axes. Raises ValueError when
        up and forward are the same axis.
        """
        up, forward = _axis_vector(self.up, self.origin), _axis_vector(self.forward, self.origin)
        if abs(up @ forward) > 1e-9:
            raise ValueError(f"{self.origin}: up {self.up!r} and forward {self.forward!r} "
                             "must be different axes")
        left = np.cross(forward, up) if self.left_handed else np.cross(up, forward)
        return np.stack([left, up, forward], axis=1)


def _axis_vector(spec: str, origin: str) -> np.ndarray:
    """"x", "-z", ... -> the (3,) unit vector; ValueError naming ``origin`` otherwise."""
    text = str(spec).strip().lower()
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-")
    if text not in _AXES:
        raise ValueError(f"{origin}: axis {spec!r} must be one of x, y, z, -x, -y, -z")
    vector = np.zeros(3)
    vector[_AXES[text]] = sign
    return vector


def _parse_rest_axes(value, origin: str, joint: str) -> np.ndarray:
    """["-x", "y", "z"] (where local x, y, z point in the body frame) -> (3, 3) columns."""
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError(f"{origin}: rest_axes[{joint!r}] must be 3 axes such as "
                         f"[\"-x\", \"-y\", \"z\"], got {value!r}")
    axes = np.stack([_axis_vector(v, origin) for v in value], axis=1)
    if abs(np.linalg.det(axes) - 1.0) > 1e-6:
        raise ValueError(f"{origin}: rest_axes[{joint!r}] = {value!r} is not a rotation "
                         "(a mirror or repeated axis)")
    return axes


def rig_from_dict(table: dict, origin: str) -> RigSpec:
    """Validate a joint-map dictionary (from a preset or a user's file).

    origin: where it came from, named in errors. Raises ValueError for unknown fields,
    non-SMPL joint names, missing required joints, a bad scale or bad axes.
    """
    if not isinstance(table, dict) or not isinstance(table.get("joints"), dict):
        raise ValueError(f"{origin}: a joint map needs a 'joints' table "
                         "(SMPL joint name -> source joint name)")
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise ValueError(f"{origin}: unknown field(s) {unknown}; known: {sorted(_FIELDS)}")
    not_smpl = sorted(set(table["joints"]) - set(SMPL22_JOINT_NAMES))
    if not_smpl:
        raise ValueError(f"{origin}: {not_smpl} are not SMPL-22 joint names; known: "
                         + ", ".join(SMPL22_JOINT_NAMES))
    joints = {smpl: source for smpl, source in table["joints"].items() if source}
    not_str = sorted(smpl for smpl, source in joints.items() if not isinstance(source, str))
    if not_str:
        raise ValueError(f"{origin}: joints {not_str} must map to source joint names (text)")
    missing = [j for j in REQUIRED_JOINTS if j not in joints]
    if missing:
        raise ValueError(f"{origin}: the joint map must give {missing}")
    scale = table.get("scale")
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, (int, float))
                              or not scale > 0):
        raise ValueError(f"{origin}: scale must be a positive number, got {scale!r}")
    rest_axes = {name: _parse_rest_axes(value, origin, name)
                 for name, value in (table.get("rest_axes") or {}).items()}
    spec = RigSpec(
        name=str(table.get("name") or Path(origin).stem), joints=joints,
        up=str(table.get("up", "y")), forward=str(table.get("forward", "z")),
        scale=None if scale is None else float(scale),
        align_bones=bool(table.get("align_bones", True)), rest_axes=rest_axes,
        left_handed=bool(table.get("left_handed", False)),
        description=str(table.get("description", "")), origin=origin,
    )
    spec.body_to_source()  # validates the axes
    return spec


def rig_to_dict(spec: RigSpec) -> dict:
    """A joint map as the JSON-able dictionary :func:`rig_from_dict` reads back."""
    table = {"name": spec.name, "description": spec.description, "up": spec.up,
             "forward": spec.forward, "left_handed": spec.left_handed,
             "align_bones": spec.align_bones, "joints": dict(spec.joints)}
    if spec.scale is not None:
        table["scale"] = spec.scale
    if spec.rest_axes:
        table["rest_axes"] = {name: [_axis_name(axes[:, column]) for column in range(3)]
                              for name, axes in spec.rest_axes.items()}
    return table


def _axis_name(vector: np.ndarray) -> str:
    """The signed axis name ("x", "-y", ...) of the largest component of ``vector`` (3,)."""
    axis = int(np.argmax(np.abs(vector)))
    return ("-" if vector[axis] < 0 else "") + "xyz"[axis]


# --- presets and files ------------------------------------------------------------------
def list_presets() -> tuple[str, ...]:
    """Names of the joint-map presets shipped in ``mage/data/rigs/``."""
    folder = resources.files("mage.data") / "rigs"
    return tuple(sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json")))


@functools.lru_cache(maxsize=None)
def _preset(name: str) -> RigSpec:
    text = (resources.files("mage.data") / "rigs" / f"{name}.json").read_text()
    return rig_from_dict(json.loads(text), f"preset {name!r}")


def load_rig(rig: str | Path) -> RigSpec:
    """A preset by name (see :func:`list_presets`) or a user's JSON / YAML joint map.

    Raises FileNotFoundError for a missing .json / .yaml file, ValueError for an unknown
    name or a file that does not parse or validate.
    """
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
        try:
            table = yaml.safe_load(text)
        except yaml.YAMLError as err:  # the message names the line
            raise ValueError(f"{path}: cannot parse joint map ({err})") from None
    else:
        try:
            table = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: cannot parse joint map ({err})") from None
    return rig_from_dict(table, str(path))


# --- matching a map to a file's joints --------------------------------------------------
def _loose(name: str) -> str:
    """Name key for tolerant matching: no namespace ("mixamorig:"), case-insensitive."""
    return name.rsplit(":", 1)[-1].rsplit("|", 1)[-1].lower()


def match_joints(spec: RigSpec, joint_names: tuple[str, ...]) -> dict[str, int]:
    """SMPL joint name -> source joint index for every map entry found (exact names
    first, then ignoring case and a ``namespace:`` prefix)."""
    exact = {name: i for i, name in enumerate(joint_names)}
    loose: dict[str, list[int]] = {}
    for i, name in enumerate(joint_names):
        loose.setdefault(_loose(name), []).append(i)
    found = {}
    for smpl, source in spec.joints.items():
        if source in exact:
            found[smpl] = exact[source]
        elif len(loose.get(_loose(source), ())) == 1:
            found[smpl] = loose[_loose(source)][0]
    return found


def _match_score(spec: RigSpec, joint_names: tuple[str, ...]) -> tuple[float, float]:
    """(share of the map's joints found, share found by their exact name)."""
    names = set(joint_names)
    num_mapped = len(spec.joints)
    exact = sum(source in names for source in spec.joints.values())
    return len(match_joints(spec, joint_names)) / num_mapped, exact / num_mapped


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
            "Pass --rig with a preset name or a JSON/YAML joint map (see mage.data.rig_map)")
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


def auto_rig(source: SourceMotion, where: str = "motion") -> RigSpec:
    """An automatic joint map of ``source`` (names, tree, geometry: ``mage.data.rig_auto``).

    The unit found is returned in ``scale`` when the file's unit was guessed; details
    (what was found by name or by position, the confidence) in ``spec.description``.
    Raises ValueError naming ``where``, what was not found and how to pass ``--rig``.
    """
    found, by_name, by_position = rig_auto.map_joints(source.joint_names, source.parents,
                                                      source.offsets, where)
    # World positions of a few frames, for the axes.
    frames = evenly_spaced_frames(source.num_frames, rig_auto.AXIS_FRAMES)
    _, positions = source_forward_kinematics(source.rotations[frames], source.translations[frames],
                                             source.parents)
    positions = positions.numpy()
    rest = source.rest_positions()
    try:
        up, left, left_handed, clarity = rig_auto.detect_axes(positions, found)
        zero = rig_auto.detect_axes(rest[None], found)
    except ValueError:
        raise ValueError(f"{where}: cannot map its joints to SMPL automatically: the head and "
                         "the ankles coincide; pass --rig map.json") from None
    if zero[3] > 0.9 and rig_auto.zero_pose_stands(rest, found):  # a T/A-pose rig: its own axes
        up, left, left_handed = zero[0], zero[1], zero[2] if "left_foot" in found else left_handed
    up_name, forward_name = rig_auto.axes_names(up, left, left_handed)
    scale = None
    unit = "given"
    if source.meta.get("scale_guessed"):
        size = rig_auto.chain_size(rest, source.parents, found) / float(source.meta["scale"])
        if size > 0:
            unit, scale = rig_auto.choose_unit(size)
    confidence = round(len(by_name) / NUM_JOINTS * clarity, 2)
    joints = {smpl: source.joint_names[index] for smpl, index in found.items()}
    description = (f"automatic map: {len(by_name)} joints by name, {len(by_position)} by position along "
                   f"the chain ({', '.join(sorted(by_position)) or 'none'}); unit {unit}; "
                   f"confidence {confidence:.2f}")
    return RigSpec(name="auto", joints=joints, up=up_name, forward=forward_name, scale=scale,
                   left_handed=left_handed, description=description, origin=f"{where} (auto)",
                   confidence=confidence, unit=unit)
