"""BVH files: read any rig (``read_bvh`` -> SourceMotion), load as SMPL-22 (``load_bvh``),
write SMPL-22 motions (``save_bvh``).

Reading (a parser written by hand: no maintained Python BVH library is a dependency
here, and the format is a small grammar) supports any channel order per joint, any
rotation order (intrinsic, as the channels are listed: "Zrotation Yrotation Xrotation"
is R = Rz @ Ry @ Rx), position channels on any joint, End Sites (kept as leaf joints
named ``<parent>_End``), LF / CRLF / CR line endings. The frames are parsed with numpy
in one call (``np.loadtxt``); malformed input raises ValueError naming file and line.

Position channels: the common convention (Blender, most engines) is that they hold the
joint's translation, REPLACING its OFFSET; the root's hold its absolute position. Some
writers instead store a displacement added to OFFSET (Character Creator's files: OFFSET
105 cm + channel 5 cm). Rule, per joint with a non-zero OFFSET and per channel axis: the
channel replaces the OFFSET's component when it comes within REPLACE_REACH (5 %) of the
OFFSET's length of that component in some frame (a root standing at its rest height at
least once: a clip that sits most of the time is still absolute), or when it is closer
to the component than to 0 in the median; otherwise it is added (meta["translation"]:
"replace", "add" or e.g. "replace y"). So a root position is never counted twice. (Not
decidable: an absolute clip that never comes near its rest height, e.g. lying only.)
Joint names are kept as written ("Bip01 L Thigh", spaces and all).
A file whose OFFSETs are all zero, with every translation in the channels (some FBX
exporters), gets its rest skeleton from the first frame's channel translations.

Units: ``scale`` converts file units to metres; when None it is guessed from the rest
height (largest extent of the zero pose): the candidate unit (metres, centimetres, and
the rig preset's own unit if it has one) that makes the rig closest to 1.7 m tall (on a
log scale), so a human rig taller than ~17 units is read as centimetres.

Writing: the SMPL-22 hierarchy with our joint names, root 6 channels (Xposition
Yposition Zposition Zrotation Yrotation Xrotation), others 3 (Zrotation Yrotation
Xrotation), in metres by default, Y-UP as BVH tools expect: the file's world is the
z-up world turned by Rx(-90 deg) (file x = world x, file y = world z, file z = -world y)
and the joint frames are SMPL's body frame, so a file written here opens in Blender
upright. ``load_bvh(path, rig="smpl")`` (or auto) reads it back to the same Motion.
"""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path

import numpy as np
import roma
import torch

from mage.core import rotations as rot
from mage.core.atomic import atomic_write
from mage.data.retarget import retarget
from mage.data.source_motion import SourceMotion

logger = logging.getLogger(__name__)

_POS = {"xposition": 0, "yposition": 1, "zposition": 2}
_ROT = {"xrotation": "x", "yrotation": "y", "zrotation": "z"}
TYPICAL_HEIGHT_M = 1.7
REPLACE_REACH = 0.05  # see the module docstring: position channels replace OFFSET
UNIT_CANDIDATES = (1.0, 0.01)  # metres, centimetres


class _Tokens:
    """Whitespace tokens of the HIERARCHY section with their 1-based line numbers."""

    def __init__(self, lines: list[str], path: Path):
        self.path = path
        self.items: list[tuple[str, int]] = []
        self.pos = 0
        self.motion_line = None
        for i, line in enumerate(lines):
            words = line.split()
            if words and words[0].upper() == "MOTION":
                self.motion_line = i
                break
            self.items.extend((w, i + 1) for w in words)
        self.last_line = len(lines)

    def error(self, msg: str, line: int | None = None) -> ValueError:
        if line is None:
            line = self.items[self.pos][1] if self.pos < len(self.items) else self.last_line
        return ValueError(f"{self.path}, line {line}: {msg}")

    def next(self, what: str) -> tuple[str, int]:
        if self.pos >= len(self.items):
            raise self.error(f"unexpected end of the hierarchy (file truncated?), expected {what}")
        item = self.items[self.pos]
        self.pos += 1
        return item

    def expect(self, word: str) -> int:
        tok, line = self.next(repr(word))
        if tok.upper() != word.upper():
            raise self.error(f"expected {word!r}, found {tok!r}", line)
        return line

    def number(self, what: str) -> float:
        tok, line = self.next(what)
        try:
            value = float(tok)
        except ValueError:
            raise self.error(f"expected a number ({what}), found {tok!r}", line) from None
        if not math.isfinite(value):
            raise self.error(f"{what} is not finite: {tok!r}", line)
        return value

    def peek(self) -> str | None:
        return self.items[self.pos][0] if self.pos < len(self.items) else None


def _parse_hierarchy(tok: _Tokens):
    """-> names, parents, offsets (J, 3) file units, channels: list of (joint, kind, axis)."""
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[tuple[int, str, str]] = []  # (joint, "pos"|"rot", axis letter)
    first, line = tok.next("HIERARCHY")
    if first.upper() != "HIERARCHY":
        raise tok.error(f"not a BVH file: expected 'HIERARCHY', found {first!r}", line)
    kw, line = tok.next("ROOT")
    if kw.upper() != "ROOT":
        raise tok.error(f"expected 'ROOT', found {kw!r}", line)

    def joint(parent: int, name_line: int, end_site: bool) -> None:
        # name: the rest of the line up to '{', verbatim ("Bip01 L Thigh"; runs of
        # blanks become one space)
        words = []
        while tok.peek() is not None and tok.peek() != "{" and tok.items[tok.pos][1] == name_line:
            words.append(tok.next("a name")[0])
        if end_site:
            name = f"{names[parent]}_End"
        else:
            if not words:
                raise tok.error("joint without a name", name_line)
            name = " ".join(words)
        if name in names:
            raise tok.error(f"duplicate joint name {name!r}", name_line)
        j = len(names)
        names.append(name)
        parents.append(parent)
        tok.expect("{")
        tok.expect("OFFSET")
        offsets.append([tok.number("OFFSET x"), tok.number("OFFSET y"), tok.number("OFFSET z")])
        if not end_site and tok.peek() is not None and tok.peek().upper() == "CHANNELS":
            _, cline = tok.next("CHANNELS")
            n = tok.number("the channel count")
            if n != int(n) or not 0 <= n <= 6:
                raise tok.error(f"channel count must be 0..6, got {n:g}", cline)
            for _ in range(int(n)):
                c, cl = tok.next("a channel name")
                key = c.lower()
                if key in _POS:
                    channels.append((j, "pos", "xyz"[_POS[key]]))
                elif key in _ROT:
                    channels.append((j, "rot", _ROT[key]))
                else:
                    raise tok.error(f"unknown channel {c!r} (expected X/Y/Z position/rotation)", cl)
        while True:
            word, wline = tok.next("'}', JOINT or End Site")
            up = word.upper()
            if up == "}":
                return
            if end_site:
                raise tok.error(f"an End Site holds only OFFSET, found {word!r}", wline)
            if up == "JOINT":
                joint(j, wline, False)
            elif up == "END":
                site, sline = tok.next("Site")
                if site.upper() != "SITE":
                    raise tok.error(f"expected 'End Site', found 'End {site}'", sline)
                joint(j, sline, True)
            else:
                raise tok.error(f"expected '}}', JOINT or End Site, found {word!r}", wline)

    joint(-1, line, False)
    if tok.peek() is not None:
        word, wline = tok.next("MOTION")
        raise tok.error(f"expected MOTION after the root joint, found {word!r}", wline)
    return names, parents, np.asarray(offsets, dtype=np.float64), channels


def _parse_frames(lines: list[str], start: int, n_frames: int, n_channels: int,
                  path: Path) -> np.ndarray:
    """(n_frames, n_channels) from lines[start:]: one ``np.loadtxt`` call when the data
    is clean, else a line-by-line pass that names the first bad line (and drops, with a
    warning, non-empty lines after the declared frames)."""
    body = lines[start:]
    try:
        data = np.loadtxt(io.StringIO("\n".join(body)), dtype=np.float64, ndmin=2)
        if data.shape == (n_frames, n_channels) and np.isfinite(data).all():
            return data
    except ValueError:
        pass
    rows: list[list[float]] = []
    for i, ln in enumerate(body):
        words = ln.split()
        if not words:
            continue
        lineno = start + i + 1
        if len(rows) == n_frames:
            logger.warning("%s, line %d: text after the %d declared frames is ignored",
                           path, lineno, n_frames)
            break
        if len(words) != n_channels:
            raise ValueError(f"{path}, line {lineno}: frame {len(rows) + 1} has {len(words)} "
                             f"values, the hierarchy declares {n_channels} channels")
        try:
            row = [float(w) for w in words]
        except ValueError:
            bad = next(w for w in words if not _is_float(w))
            raise ValueError(f"{path}, line {lineno}: non-numeric value {bad!r} in frame "
                             f"{len(rows) + 1}") from None
        if not all(math.isfinite(v) for v in row):
            raise ValueError(f"{path}, line {lineno}: NaN/inf value in frame {len(rows) + 1}")
        rows.append(row)
    if len(rows) < n_frames:
        raise ValueError(f"{path}, line {len(lines)}: file truncated: 'Frames: {n_frames}' but "
                         f"only {len(rows)} frame lines")
    return np.asarray(rows, dtype=np.float64).reshape(n_frames, n_channels)


def _is_float(word: str) -> bool:
    try:
        float(word)
        return True
    except ValueError:
        return False


def frame_rate_from_time(dt_text: str) -> float:
    """1 / Frame Time, snapped to the integer rate when the printed (rounded) time is
    consistent with it: "0.016667" -> 60, "0.0333333" -> 30, "0.03337" (29.97) kept."""
    dt = float(dt_text)
    fps = 1.0 / dt
    decimals = len(dt_text.split(".")[1]) if "." in dt_text and "e" not in dt_text.lower() else 15
    tol = fps * fps * 0.5 * 10.0 ** (-decimals) + 1e-9
    return float(round(fps)) if round(fps) > 0 and abs(fps - round(fps)) <= tol else fps


def _rest_height(parents, offsets) -> float:
    pos = np.zeros_like(offsets)
    for j, p in enumerate(parents):
        pos[j] = 0.0 if p < 0 else pos[p] + offsets[j]
    return float((pos.max(0) - pos.min(0)).max())


def guess_scale(height_units: float, extra_units: tuple[float, ...] = ()) -> float:
    """File units -> metres: the candidate making the rig closest to 1.7 m (log scale)."""
    if height_units <= 0:
        return 1.0
    cands = tuple(UNIT_CANDIDATES) + tuple(extra_units)
    return min(cands, key=lambda s: abs(math.log(height_units * s / TYPICAL_HEIGHT_M)))


def read_bvh(path: str | Path, scale: float | None = None) -> SourceMotion:
    """Read a BVH file of any rig into a :class:`SourceMotion` (metres, file axes).

    scale: file units -> metres; None guesses metres or centimetres (module docstring),
    stored in ``meta["scale"]`` with ``meta["scale_guessed"]``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BVH file not found")
    lines = _read_lines(path)
    tok = _Tokens(lines, path)
    if not tok.items:
        raise ValueError(f"{path}, line 1: empty file, not a BVH file")
    names, parents, offsets, channels = _parse_hierarchy(tok)
    if tok.motion_line is None:
        raise ValueError(f"{path}, line {len(lines)}: file truncated: no MOTION section")
    start, n_frames, frame_time = _parse_motion_header(lines, tok.motion_line, path)
    data = _parse_frames(lines, start, n_frames, len(channels), path)
    J, T = len(names), n_frames
    scale_used, guessed = _scale_of(scale, parents, offsets)

    rot_cols, rot_axes, pos_cols = _channel_columns(channels)
    R = _rotations(data, rot_cols, rot_axes, T, J)
    # All-zero OFFSETs with translations in the channels: the rest skeleton is frame 0's.
    zero_rest = bool(pos_cols) and not np.abs(offsets[1:]).any() and len(pos_cols) > 1
    if zero_rest:
        offsets = _rest_from_channels(offsets, pos_cols, data)
        if scale is None:
            scale_used = guess_scale(_rest_height(parents, offsets))
    trans, modes = _translations(data, offsets, pos_cols, names, T)

    meta = {"source": str(path), "format": "bvh", "scale": scale_used, "scale_guessed": guessed,
            "translation": modes}
    if zero_rest:
        meta["rest_from_channels"] = True
    return SourceMotion(names, parents, offsets * scale_used, R,
                        torch.from_numpy(trans * scale_used), frame_rate_from_time(frame_time),
                        name=path.stem, meta=meta)


def _read_lines(path: Path) -> list[str]:
    """The file's lines: UTF-8 (with or without a BOM), else Latin-1."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return text.splitlines()


def _parse_motion_header(lines: list[str], motion_line: int, path: Path) -> tuple[int, int, str]:
    """``Frames: N`` and ``Frame Time: dt`` after MOTION (each on its own line, blank
    lines allowed) -> (index of the first frame line, N, dt as written)."""
    i = motion_line + 1
    header: list[tuple[list[str], int]] = []
    while len(header) < 2 and i < len(lines):
        if lines[i].split():
            header.append((lines[i].split(), i + 1))
        i += 1
    if len(header) < 2:
        raise ValueError(f"{path}, line {len(lines)}: file truncated: expected 'Frames:' and "
                         "'Frame Time:' after MOTION")
    (fw, fl), (tw, tl) = header
    if len(fw) != 2 or fw[0].lower() != "frames:":
        raise ValueError(f"{path}, line {fl}: expected 'Frames: <count>', found {' '.join(fw)!r}")
    try:
        n_frames = int(fw[1])
    except ValueError:
        raise ValueError(f"{path}, line {fl}: frame count {fw[1]!r} is not an integer") from None
    if n_frames < 1:
        raise ValueError(f"{path}, line {fl}: frame count must be >= 1, got {n_frames}")
    if len(tw) != 3 or tw[0].lower() != "frame" or tw[1].lower() != "time:":
        raise ValueError(f"{path}, line {tl}: expected 'Frame Time: <seconds>', found {' '.join(tw)!r}")
    try:
        dt = float(tw[2])
    except ValueError:
        raise ValueError(f"{path}, line {tl}: frame time {tw[2]!r} is not a number") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"{path}, line {tl}: frame time must be positive, got {tw[2]}")
    return i, n_frames, tw[2]


def _scale_of(scale, parents, offsets) -> tuple[float, bool]:
    """(file units -> metres, whether guessed): the given scale, checked, or a guess."""
    if scale is None:
        return guess_scale(_rest_height(parents, offsets)), True
    try:
        scale_used = float(scale)
    except (TypeError, ValueError):
        scale_used = float("nan")
    if not (math.isfinite(scale_used) and scale_used > 0):
        raise ValueError(f"scale: must be a positive number, got {scale!r}")
    return scale_used, False


def _channel_columns(channels) -> tuple[dict[int, list[int]], dict[int, str], dict[int, dict[int, int]]]:
    """Data columns per joint: (rotation columns, their axis order as letters, and
    {axis index: column} of the position channels)."""
    rot_cols: dict[int, list[int]] = {}
    rot_axes: dict[int, str] = {}
    pos_cols: dict[int, dict[int, int]] = {}
    for col, (j, kind, axis) in enumerate(channels):
        if kind == "rot":
            rot_cols.setdefault(j, []).append(col)
            rot_axes[j] = rot_axes.get(j, "") + axis
        else:
            pos_cols.setdefault(j, {})["xyz".index(axis)] = col
    return rot_cols, rot_axes, pos_cols


def _rotations(data: np.ndarray, rot_cols, rot_axes, T: int, J: int) -> torch.Tensor:
    """Local rotations (T, J, 3, 3): joints grouped by rotation order, one batched Euler
    call per group; identity for joints without rotation channels."""
    R = torch.eye(3, dtype=torch.float64).expand(T, J, 3, 3).clone()
    by_order: dict[str, list[int]] = {}
    for j, order in rot_axes.items():
        by_order.setdefault(order, []).append(j)
    for order, joints in by_order.items():
        angles = torch.from_numpy(data[:, [rot_cols[j] for j in joints]].reshape(T, len(joints), len(order)))
        R[:, joints] = rot.euler_to_matrix(angles, order, degrees=True)
    return R


def _rest_from_channels(offsets: np.ndarray, pos_cols, data: np.ndarray) -> np.ndarray:
    """The offsets with every non-root joint's position channels of frame 0 put in."""
    offsets = offsets.copy()
    for j, cols in pos_cols.items():
        if j > 0:
            for a, col in cols.items():
                offsets[j, a] = data[0, col]
    return offsets


def _translations(data: np.ndarray, offsets: np.ndarray, pos_cols, names: list[str],
                  T: int) -> tuple[np.ndarray, dict[str, str]]:
    """Local translations (T, J, 3) in file units: offsets, replaced by or added to the
    position channels (module docstring); and the mode chosen per joint with channels."""
    J = len(names)
    trans = np.broadcast_to(offsets, (T, J, 3)).copy()
    modes = {}
    for j, cols in pos_cols.items():
        ch = np.zeros((T, 3))
        for a, col in cols.items():
            ch[:, a] = data[:, col]
        off = offsets[j]
        n = np.linalg.norm(off)
        axes = [a for a in cols if abs(off[a]) > 1e-9 * max(n, 1e-300)]  # others: same either way
        rep = [a for a in axes if (
            float(np.abs(ch[:, a] - off[a]).min()) <= REPLACE_REACH * n
            or float(np.median(np.abs(ch[:, a] - off[a]))) <= float(np.median(np.abs(ch[:, a]))))]
        base = off.copy()
        base[rep] = 0.0
        trans[:, j] = base + ch
        modes[names[j]] = ("add" if not rep else "replace" if len(rep) == len(axes) else
                           "replace " + "".join("xyz"[a] for a in sorted(rep)))
    return trans, modes


def load_bvh(path: str | Path, rig="auto", scale: float | None = None):
    """Read a BVH file and retarget it to the default SMPL-22 skeleton -> Motion.

    rig: "auto" (best-matching preset, see ``mage.data.rig_map.list_presets``, else an
    automatic map from the skeleton), a preset name, or a JSON/YAML joint-map file.
    scale: file units -> metres (None: the unit - m, cm, mm, inch, CMU units or the map's
    own ``scale`` - that makes the mapped body closest to SMPL's size).
    Raises FileNotFoundError, ValueError (one line naming the file).
    """
    return retarget(read_bvh(path, scale=scale), rig)


# --- writing ------------------------------------------------------------------------------
# File (y-up) <- z-up world: x -> x, z -> y, y -> -z; the inverse of Rx(+90 deg).
_WORLD_TO_FILE = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=torch.float64)
_UNITS = {"m": 1.0, "cm": 100.0}


def save_bvh(motion, path: str | Path, units: str = "m") -> None:
    """Write a Motion (any skeleton of the SMPL 22-joint tree) as a y-up BVH (atomic).

    units: "m" (default; Blender's import at scale 1 gives real size) or "cm".
    Channels: root Xposition Yposition Zposition Zrotation Yrotation Xrotation, others
    Zrotation Yrotation Xrotation, degrees with 6 decimals. The root position channels
    hold the pelvis position (the root OFFSET is written as 0 0 0); End Sites are added
    at leaf joints (half the leaf's bone, only to give viewers a bone tail).
    """
    if units not in _UNITS:
        raise ValueError(f"units: expected 'm' or 'cm', got {units!r}")
    k = _UNITS[units]
    sk = motion.skeleton
    J, T = sk.num_joints, motion.num_frames
    if T < 1:
        raise ValueError("motion: has no frames to write")
    offsets = np.asarray(sk.offsets, dtype=np.float64) * k
    children: list[list[int]] = [[] for _ in range(J)]
    for j, p in enumerate(sk.parents):
        if p >= 0:
            children[p].append(j)

    out = ["HIERARCHY"]

    def emit(j: int, depth: int) -> None:
        ind = "  " * depth
        out.append(f"{ind}{'ROOT' if j == 0 else 'JOINT'} {sk.joint_names[j]}")
        out.append(f"{ind}{{")
        off = np.zeros(3) if j == 0 else offsets[j]
        out.append(f"{ind}  OFFSET {off[0]:.6f} {off[1]:.6f} {off[2]:.6f}")
        if j == 0:
            out.append(f"{ind}  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation")
        else:
            out.append(f"{ind}  CHANNELS 3 Zrotation Yrotation Xrotation")
        for c in children[j]:
            emit(c, depth + 1)
        if not children[j]:
            tail = 0.5 * offsets[j]
            out.append(f"{ind}  End Site")
            out.append(f"{ind}  {{")
            out.append(f"{ind}    OFFSET {tail[0]:.6f} {tail[1]:.6f} {tail[2]:.6f}")
            out.append(f"{ind}  }}")
        out.append(f"{ind}}}")

    emit(0, 0)
    R = motion.rotations.detach().to("cpu", torch.float64).clone()
    R[:, 0] = _WORLD_TO_FILE @ R[:, 0]
    order = []  # depth-first order of the joints, as in the hierarchy
    stack = [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children[j]))
    eul = roma.rotmat_to_euler("ZYX", R[:, order], degrees=True)  # (T, J, 3): z, y, x
    pelvis = (motion.trans.detach().to("cpu", torch.float64)
              + torch.tensor(np.array(sk.offsets[0]), dtype=torch.float64)) @ _WORLD_TO_FILE.T * k
    frames = torch.cat([pelvis, eul.reshape(T, -1)], dim=1).numpy()
    out += ["MOTION", f"Frames: {T}", f"Frame Time: {1.0 / motion.fps:.10f}"]
    buf = io.StringIO()
    np.savetxt(buf, frames, fmt="%.6f")
    with atomic_write(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
        fh.write(buf.getvalue())
