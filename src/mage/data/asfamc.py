"""Acclaim ASF/AMC files (the CMU motion-capture database's original format).

``read_asf`` parses the skeleton, ``read_amc`` a motion on it (-> SourceMotion),
``load_asfamc`` does both and retargets to the default SMPL-22 skeleton (-> Motion).
The parser is written by hand: no maintained library reads ASF/AMC, and the format is a
short keyword grammar.

Semantics (the Acclaim spec as CMU's own viewer and the widely used ``amc_parser``
apply it; all rotations act on column vectors):
- units: ``length u`` means 1 file unit = 1/u inch, so metres = value * (1/u) * 0.0254
  (CMU: u = 0.45); ``angle deg|rad``.
- bone ``b``: ``direction`` (unit, world rest frame), ``length``, ``axis ax ay az ORDER``
  -> C_b = rotation applying the axis angles in ORDER about the fixed world axes
  (``XYZ``: C = Rz @ Ry @ Rx); ``dof`` lists the AMC values of the bone, and the motion
  rotation M_b applies them in that order about the bone's axis frame.
- the bone's global motion matrix: M_global(b) = M_global(parent) @ C_b @ M_b @ C_b^T;
  the bone starts at its parent's end and ends ``length * M_global(b) @ direction``
  further. The root: ``order`` (e.g. TX TY TZ RX RY RZ) gives the AMC root values, the
  translation is absolute, rotations apply in the listed order; ``axis``/``orientation``
  give C_root (identity in CMU files).

SourceMotion layout: joint "root", then one joint per bone placed at the bone's START
(its rotation is C_b M_b C_b^T, so the zero pose - all AMC values 0 - is the ASF rest
pose with every joint frame parallel to the world), plus an end joint "<bone>_end" at
the end of every leaf bone. So SMPL's ``left_hip`` maps to ``lfemur`` (the rotation at
the hip joint), ``left_knee`` to ``ltibia``, and so on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import roma
import torch

from mage.data.retarget import retarget
from mage.data.rig_auto import INCH
from mage.data.source_motion import SourceMotion

CMU_FPS = 120.0  # CMU AMC files do not store their frame rate; the database's is 120 Hz


@dataclass
class AsfBone:
    name: str
    direction: np.ndarray  # (3,) unit vector, world rest frame
    length: float  # file units
    axis: np.ndarray  # (3,) angles in the file's angle unit, in ``axis_order`` order
    axis_order: str  # e.g. "XYZ"
    dof: tuple[str, ...]  # e.g. ("rx", "ry", "rz")
    line: int  # line of its ``begin``, for messages


@dataclass
class AsfSkeleton:
    """A parsed ASF file. Lengths in file units; ``length_to_metres`` converts."""

    path: Path
    bones: dict[str, AsfBone]
    parents: dict[str, str]  # bone -> parent bone or "root"
    root_order: tuple[str, ...]  # e.g. ("TX", "TY", "TZ", "RX", "RY", "RZ")
    root_axis_order: str
    root_position: np.ndarray
    root_orientation: np.ndarray
    length_to_metres: float
    angle_degrees: bool
    order: list[str] = field(default_factory=list)  # bones, parents first (hierarchy DFS)


def _err(path, line, msg) -> ValueError:
    return ValueError(f"{path}, line {line}: {msg}")


def _floats(words, path, line, n, what) -> np.ndarray:
    if len(words) < n:
        raise _err(path, line, f"{what}: expected {n} numbers, got {len(words)}")
    try:
        v = np.array([float(w) for w in words[:n]])
    except ValueError:
        raise _err(path, line, f"{what}: non-numeric value in {' '.join(words[:n])!r}") from None
    if not np.isfinite(v).all():
        raise _err(path, line, f"{what}: NaN/inf value")
    return v


def _rotation_order(order: str, path, line) -> str:
    o = order.upper()
    if len(o) != 3 or sorted(o) != ["X", "Y", "Z"]:
        raise _err(path, line, f"rotation order {order!r} must be a permutation of XYZ")
    return o


_ROOT_CHANNELS = ("TX", "TY", "TZ", "RX", "RY", "RZ")


class _AsfReader:
    """The line-by-line state of :func:`read_asf`: one method per section."""

    def __init__(self, path: Path):
        self.path = path
        self.length_unit, self.angle_deg = 1.0, True
        self.root_order, self.root_axis = _ROOT_CHANNELS, "XYZ"
        self.root_pos, self.root_ori = np.zeros(3), np.zeros(3)
        self.bones: dict[str, AsfBone] = {}
        self.parents: dict[str, str] = {}
        self.children: dict[str, list[str]] = {"root": []}
        self.cur: dict | None = None  # the open bone block
        self.in_limits = False

    def units(self, i: int, key: str, words: list[str]) -> None:
        if key == "length":
            self.length_unit = float(_floats(words[1:], self.path, i, 1, "length")[0])
            if self.length_unit <= 0:
                raise _err(self.path, i, "length unit must be positive")
        elif key == "angle":
            if len(words) < 2 or words[1].lower() not in ("deg", "rad"):
                raise _err(self.path, i, "angle unit must be 'deg' or 'rad'")
            self.angle_deg = words[1].lower() == "deg"

    def root(self, i: int, key: str, words: list[str]) -> None:
        path = self.path
        if key == "order":
            self.root_order = tuple(w.upper() for w in words[1:])
            bad = [w for w in self.root_order if w not in _ROOT_CHANNELS]
            if bad or len(set(self.root_order)) != len(self.root_order):
                raise _err(path, i, f"root order: unexpected channels {words[1:]}")
        elif key == "axis":
            self.root_axis = _rotation_order(words[1] if len(words) > 1 else "", path, i)
        elif key == "position":
            self.root_pos = _floats(words[1:], path, i, 3, "root position")
        elif key == "orientation":
            self.root_ori = _floats(words[1:], path, i, 3, "root orientation")

    def bonedata(self, i: int, key: str, words: list[str], line: str) -> None:
        path, cur = self.path, self.cur
        if key == "begin":
            self.cur = {"line": i, "dof": ()}
            self.in_limits = False
        elif key == "end":
            self._close_bone(i)
        elif cur is None:
            raise _err(path, i, f"{words[0]!r} outside a begin/end bone block")
        elif key == "name":
            cur["name"] = words[1]
        elif key == "direction":
            cur["direction"] = _floats(words[1:], path, i, 3, "direction")
        elif key == "length":
            cur["length"] = _floats(words[1:], path, i, 1, "length")[0]
        elif key == "axis":
            cur["axis"] = _floats(words[1:], path, i, 3, "axis")
            cur["axis_order"] = _rotation_order(words[4] if len(words) > 4 else "XYZ", path, i)
        elif key == "dof":
            dof = tuple(w.lower() for w in words[1:])
            bad = [d for d in dof if d not in ("rx", "ry", "rz")]
            if bad:
                raise _err(path, i, f"dof {bad} not supported (rotations rx ry rz only)")
            cur["dof"] = dof
            self.in_limits = False
        elif key == "limits":
            self.in_limits = True
        elif key in ("id", "bodymass", "cofmass") or (self.in_limits and line.startswith("(")):
            pass
        else:
            raise _err(path, i, f"unknown bone field {words[0]!r}")

    def _close_bone(self, i: int) -> None:
        cur = self.cur
        if cur is None:
            raise _err(self.path, i, "'end' without 'begin'")
        missing = [k for k in ("name", "direction", "length", "axis") if k not in cur]
        if missing:
            raise _err(self.path, i, f"bone block from line {cur['line']} lacks {missing}")
        n = np.linalg.norm(cur["direction"])
        direction = cur["direction"] / n if n > 0 else cur["direction"]
        if cur["name"] in self.bones or cur["name"] == "root":
            raise _err(self.path, cur["line"], f"duplicate bone name {cur['name']!r}")
        self.bones[cur["name"]] = AsfBone(cur["name"], direction, float(cur["length"]),
                                          cur["axis"], cur["axis_order"], cur["dof"], cur["line"])
        self.cur = None

    def hierarchy(self, i: int, key: str, words: list[str]) -> None:
        if key in ("begin", "end"):
            return
        parent = words[0]
        for child in words[1:]:
            if child in self.parents:
                raise _err(self.path, i, f"bone {child!r} has two parents")
            self.parents[child] = parent
            self.children.setdefault(parent, []).append(child)

    def check_hierarchy(self) -> None:
        """Every bone has a parent, and every name in the hierarchy is a bone."""
        for name, b in self.bones.items():
            if name not in self.parents:
                raise _err(self.path, b.line, f"bone {name!r} is not in the :hierarchy")
        for child, parent in self.parents.items():
            if child not in self.bones:
                raise ValueError(f"{self.path}: the :hierarchy names an unknown bone {child!r}")
            if parent != "root" and parent not in self.bones:
                raise ValueError(f"{self.path}: the :hierarchy names an unknown parent {parent!r}")

    def bone_order(self) -> list[str]:
        """The bones, parents first (depth-first from the root)."""
        order: list[str] = []
        stack = list(reversed(self.children["root"]))
        while stack:
            b = stack.pop()
            order.append(b)
            stack.extend(reversed(self.children.get(b, [])))
        if len(order) != len(self.bones):
            raise ValueError(f"{self.path}: the :hierarchy does not connect every bone to the root")
        return order


def read_asf(path: str | Path) -> AsfSkeleton:
    """Parse an ASF skeleton file (CRLF or LF)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ASF file not found")
    lines = path.read_text(encoding="latin-1").splitlines()
    r = _AsfReader(path)
    section = None
    seen_bonedata = seen_hierarchy = False
    for i, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        key = words[0].lower()
        if key.startswith(":"):
            if r.cur is not None:
                raise _err(path, i, f"bone block opened at line {r.cur['line']} has no 'end'")
            section = key
            seen_bonedata |= section == ":bonedata"
            seen_hierarchy |= section == ":hierarchy"
        elif section == ":units":
            r.units(i, key, words)
        elif section == ":root":
            r.root(i, key, words)
        elif section == ":bonedata":
            r.bonedata(i, key, words, line)
        elif section == ":hierarchy":
            r.hierarchy(i, key, words)
    if r.cur is not None:
        raise _err(path, len(lines), f"file truncated: bone block from line {r.cur['line']} has no 'end'")
    if not seen_bonedata or not r.bones:
        raise _err(path, len(lines), "no :bonedata section (not an ASF file, or truncated)")
    if not seen_hierarchy:
        raise _err(path, len(lines), "no :hierarchy section (file truncated?)")
    r.check_hierarchy()
    return AsfSkeleton(path, r.bones, r.parents, r.root_order, r.root_axis, r.root_pos, r.root_ori,
                       INCH / r.length_unit, r.angle_deg, r.bone_order())


def _extrinsic(order: str, angles: torch.Tensor, degrees: bool) -> torch.Tensor:
    """Rotations applied in ``order`` about FIXED axes (Acclaim): "XYZ" -> Rz @ Ry @ Rx."""
    return roma.euler_to_rotmat(order.lower(), angles, degrees=degrees)


_NAME_RE = re.compile(r"^[ \t]*([A-Za-z_][^\s]*)", re.MULTILINE)
_FRAME_RE = re.compile(r"^[ \t]*\d+[ \t]*$", re.MULTILINE)


def _amc_values(lines: list[str], start: int, layout: list[tuple[str, int]]):
    """Frame-major values (T, 1 + sum of counts) for a fixed per-frame ``layout`` of
    (name, value count), parsed in one numpy call; None when the file does not follow
    the layout (bone names per frame, consecutive frame numbers, total value count), and
    then the general line-by-line reader runs and names the first bad line."""
    body = "\n".join(lines[start:])
    names = _NAME_RE.findall(body)
    n_per = 1 + sum(n for _, n in layout)
    n_frames = len(_FRAME_RE.findall(body))
    if n_frames == 0 or names != [name for name, _ in layout] * n_frames:
        return None
    stripped = _NAME_RE.sub(" ", body)
    try:
        values = np.fromstring(stripped, dtype=np.float64, sep=" ")
    except ValueError:
        return None
    if values.size != n_frames * n_per or not np.isfinite(values).all():
        return None
    values = values.reshape(n_frames, n_per)
    if not np.array_equal(values[:, 0], np.arange(values[0, 0], values[0, 0] + n_frames)):
        return None
    return values


def read_amc(amc_path: str | Path, asf: AsfSkeleton | str | Path,
             fps: float = CMU_FPS) -> SourceMotion:
    """Read an AMC motion on an ASF skeleton -> SourceMotion (metres, ASF world axes).

    fps: AMC files do not store it; CMU's database is 120 Hz.
    """
    amc_path = Path(amc_path)
    if not isinstance(asf, AsfSkeleton):
        asf = read_asf(asf)
    if not amc_path.is_file():
        raise FileNotFoundError(f"{amc_path}: AMC file not found")
    lines = amc_path.read_text(encoding="latin-1").splitlines()
    start, degrees = _amc_header(lines, asf.angle_degrees, amc_path)
    counts = {"root": len(asf.root_order)}
    counts.update({b: len(asf.bones[b].dof) for b in asf.order if asf.bones[b].dof})
    cols = _amc_columns(lines, start, counts, amc_path)
    T = next(iter(cols.values())).shape[0]

    names, parents, offsets = _amc_joints(asf)
    index = {n: k for k, n in enumerate(names)}
    R = _amc_rotations(asf, cols, index, T, len(names), degrees)
    trans = np.broadcast_to(np.asarray(offsets), (T, len(names), 3)).copy()
    root = cols["root"]
    for a, ch in enumerate(("TX", "TY", "TZ")):
        if ch in asf.root_order:
            trans[:, 0, a] = root[:, asf.root_order.index(ch)] * asf.length_to_metres
    meta = {"source": str(amc_path), "format": "amc", "asf": str(asf.path)}
    return SourceMotion(names, parents, np.asarray(offsets), R, torch.from_numpy(trans), fps,
                        name=amc_path.stem, meta=meta)


def _amc_header(lines: list[str], degrees: bool, path: Path) -> tuple[int, bool]:
    """(index of the first frame-number line, whether angles are degrees): the header's
    ``:DEGREES`` / ``:RADIANS`` override the ASF's unit."""
    for i, raw in enumerate(lines):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith(":"):
            if s.upper() == ":DEGREES":
                degrees = True
            elif s.upper() == ":RADIANS":
                degrees = False
            continue
        return i, degrees
    raise _err(path, len(lines), "no frames (file truncated?)")


def _amc_columns(lines: list[str], start: int, counts: dict[str, int], path: Path) -> dict:
    """{bone or "root": (T, count) values}: the layout of the first frame (read line by
    line) drives a fast vectorised parse of all frames; else the general reader."""
    layout: list[tuple[str, int]] = []
    for raw in lines[start + 1:]:
        words = raw.split()
        if not words or words[0].isdigit():
            break
        layout.append((words[0], counts.get(words[0], -1)))
    values = None
    if sorted(n for n, _ in layout) == sorted(counts) and all(c >= 0 for _, c in layout):
        values = _amc_values(lines, start, layout)
    if values is None:
        return _amc_slow(lines, start, counts, path)
    cols, c = {}, 1
    for name, n in layout:
        cols[name] = values[:, c:c + n]
        c += n
    return cols


def _amc_joints(asf: AsfSkeleton) -> tuple[list[str], list[int], list[np.ndarray]]:
    """(names, parents, rest offsets in metres) of the joints: root, the bones (placed at
    their start), then an end joint for every leaf bone."""
    names = ["root"] + list(asf.order)
    index = {n: k for k, n in enumerate(names)}
    parents = [-1] + [index[asf.parents[b]] for b in asf.order]
    k = asf.length_to_metres
    vec = {b: asf.bones[b].direction * asf.bones[b].length * k for b in asf.order}
    offsets = [asf.root_position * k] + [
        np.zeros(3) if asf.parents[b] == "root" else vec[asf.parents[b]] for b in asf.order]
    has_child = {asf.parents[b] for b in asf.order}
    for b in asf.order:
        if b not in has_child:
            names.append(f"{b}_end")
            parents.append(index[b])
            offsets.append(vec[b])
    return names, parents, offsets


def _amc_rotations(asf: AsfSkeleton, cols: dict, index: dict[str, int], T: int, J: int,
                   degrees: bool) -> torch.Tensor:
    """Local rotations (T, J, 3, 3): C M C^T per bone with dof, and the root's."""
    R = torch.eye(3, dtype=torch.float64).expand(T, J, 3, 3).clone()
    for b in asf.order:
        bone = asf.bones[b]
        if not bone.dof:
            continue
        C = _extrinsic(bone.axis_order, torch.from_numpy(bone.axis), asf.angle_degrees)
        order = "".join(d[1] for d in bone.dof)
        M = _extrinsic(order, torch.from_numpy(np.ascontiguousarray(cols[b])), degrees)
        R[:, index[b]] = C @ M @ C.T
    root = cols["root"]
    rot_ch = [c for c in asf.root_order if c[0] == "R"]
    rvals = torch.from_numpy(np.ascontiguousarray(
        root[:, [asf.root_order.index(c) for c in rot_ch]]))
    C = _extrinsic(asf.root_axis_order, torch.from_numpy(asf.root_orientation), asf.angle_degrees)
    if rot_ch:
        R[:, 0] = C @ _extrinsic("".join(c[1] for c in rot_ch), rvals, degrees) @ C.T
    return R


def _amc_slow(lines: list[str], start: int, counts: dict[str, int], path: Path) -> dict:
    """General AMC reader (any bone order per frame); names the first bad line."""
    frames: list[dict[str, list[float]]] = []
    frame_line: list[int] = []
    for i in range(start, len(lines)):
        words = lines[i].split()
        if not words:
            continue
        if words[0].isdigit() and len(words) == 1:
            if frames and len(frames[-1]) != len(counts):
                miss = sorted(set(counts) - set(frames[-1]))
                raise _err(path, frame_line[-1], f"frame {len(frames)} lacks {miss}")
            frames.append({})
            frame_line.append(i + 1)
            continue
        if not frames:
            raise _err(path, i + 1, f"expected a frame number, found {words[0]!r}")
        name = words[0]
        if name not in counts:
            raise _err(path, i + 1, f"unknown bone {name!r} (or a bone without dof in the ASF)")
        if len(words) - 1 != counts[name]:
            raise _err(path, i + 1, f"{name}: expected {counts[name]} values, got {len(words) - 1}")
        frames[-1][name] = list(_floats(words[1:], path, i + 1, counts[name], name))
    if not frames:
        raise _err(path, len(lines), "no frames (file truncated?)")
    if len(frames[-1]) != len(counts):
        miss = sorted(set(counts) - set(frames[-1]))
        raise _err(path, len(lines), f"file truncated: the last frame lacks {miss}")
    return {n: np.array([f[n] for f in frames], dtype=np.float64).reshape(len(frames), c)
            for n, c in counts.items()}


def find_asf(amc_path: str | Path) -> Path:
    """The ``*.asf`` skeleton of an AMC file: the single one in its folder, else the one
    in its folder or the folder above whose name starts the AMC's name (HDM05:
    ``HDM_bd.asf`` beside the folder ``bd/`` holding ``HDM_bd_walk_001_120.amc``)."""
    amc_path = Path(amc_path)
    folder = amc_path.parent
    here = sorted({*folder.glob("*.asf"), *folder.glob("*.ASF")})
    if len(here) == 1:
        return here[0]
    near = here + sorted({*folder.parent.glob("*.asf"), *folder.parent.glob("*.ASF")})
    named = [p for p in near if amc_path.stem.lower().startswith(p.stem.lower())]
    if named:
        return max(named, key=lambda p: len(p.stem))
    if not near:
        raise FileNotFoundError(f"{amc_path}: no .asf skeleton in {folder} or its parent; "
                                "pass asf_path=")
    raise ValueError(f"{amc_path}: several .asf files in {folder} "
                     f"({', '.join(p.name for p in here)}) and none named like the AMC; pass asf_path=")


def load_asfamc(amc_path: str | Path, asf_path: str | Path | None = None, rig="auto",
                fps: float = CMU_FPS):
    """Read an AMC (+ its ASF) and retarget to the default SMPL-22 skeleton -> Motion.

    asf_path: default the single ``*.asf`` in the AMC's folder. rig: "auto" (preset
    ``cmu_asf`` for CMU files), a preset name or a JSON/YAML joint map.
    """
    asf = read_asf(asf_path if asf_path is not None else find_asf(amc_path))
    src = read_amc(amc_path, asf, fps=fps)
    motion = retarget(src, rig)
    return motion
