"""Tracking logs (CSV / JSON) -> a clean 60 fps :class:`mage.core.Tracking`.

A tracking log is what a VR application records: for each sample a timestamp and the
6-DoF pose of the headset and both controllers, in the runtime's native frame (chosen
with ``frame``, see :mod:`mage.inference.device`). Units: seconds and metres;
quaternions are (x, y, z, w). Timestamps in milliseconds, microseconds or nanoseconds
(OpenXR ``XrTime``) are recognised from the median sample spacing and converted, with a
warning (:func:`mage.core.limits.timestamp_scale`); text files may start with a UTF-8
byte-order mark (Excel's "CSV UTF-8").

CSV schema (a header row, then one row per sample; column order is free, extra columns
are ignored; an empty cell or ``nan`` marks a lost device for that sample)::

    timestamp,head_px,head_py,head_pz,head_qx,head_qy,head_qz,head_qw,
    left_px,left_py,left_pz,left_qx,left_qy,left_qz,left_qw,
    right_px,right_py,right_pz,right_qx,right_qy,right_qz,right_qw

JSON schema: an object ``{"frames": [FRAME, ...]}`` (or a bare list of FRAMEs). A
FRAME is the same object the streaming server accepts::

    {"timestamp": 0.0167,
     "head":  {"position": [x, y, z], "quaternion": [x, y, z, w]},
     "left":  {"position": [...], "quaternion": [...]},
     "right": null}

**Lost devices, one rule for both formats** (and for the streaming server): a device is
lost for a sample when it is missing or ``null`` (JSON), has an empty or ``nan`` cell
(CSV), has any NaN or infinite value, has a zero quaternion (an all-zero pose is how
several runtimes write "lost"), a quaternion norm outside
``QUAT_NORM_MIN..QUAT_NORM_MAX`` or a position farther than ``MAX_POSITION_M`` along an
axis (:mod:`mage.core.limits`). Lost samples are filled as below; they never reach the
network.

Bounds (:mod:`mage.core.limits`, checked before anything is allocated): the median
sample rate must be 4 to 2000 Hz in some unit, no two samples may be more than
``MAX_LOG_GAP_S`` (60 s) apart and a log may span at most ``MAX_LOG_DURATION_S`` (6 h).
Every problem of a file is a one-line ``ValueError`` naming the file (and line / frame
and field).

Cleaning (:func:`to_tracking`), after the frame conversion of each valid sample:

- resampling to ``fps`` (60, the model's rate) on the grid ``t0 + k / fps`` up to the
  last timestamp: positions linearly, rotations by slerp, each device on its own;
- gaps (lost samples, NaN rows, or missing rows: any interval between two valid samples
  of a device) up to ``max_gap`` seconds (0.25) are interpolated the same way;
- a longer gap is reported as a :class:`Gap` (device and time range; also a
  ``warnings.warn``) and filled by the rule: **hold** the last valid pose, then **blend**
  (slerp / linear) to the next valid pose over the last ``blend`` seconds (0.25) of the
  gap. Before a device's first valid sample its first pose is held, after its last the
  last one. A device with no valid sample at all is an error. The network never sees NaN.
"""

from __future__ import annotations

import csv
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mage.core import limits
from mage.core import rotations as rot
from mage.core.atomic import atomic_write
from mage.core.tracking import Tracking
from mage.inference import MODEL_FPS
from mage.inference.device import DEVICES, DeviceConfig

CSV_COLUMNS: tuple[str, ...] = ("timestamp",) + tuple(
    f"{d}_{c}" for d in DEVICES for c in ("px", "py", "pz", "qx", "qy", "qz", "qw")
)


def _number(v) -> float:
    """A JSON number as a float; integers too large for a float become +-inf."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def _numbers(value, n: int, name: str) -> np.ndarray:
    if not isinstance(value, (list, tuple)) or len(value) != n:
        raise ValueError(f"{name}: expected a list of {n} numbers, got {limits.quote(value)}")
    out = np.empty(n)
    for i, v in enumerate(value):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{name}: expected a list of {n} numbers, got {limits.quote(value)}")
        out[i] = _number(v)
    return out


@dataclass
class TrackingFrame:
    """One tracking sample in the device's native frame.

    positions: (3, 3) metres, quaternions: (3, 4) (x, y, z, w); rows head, left, right.
    A lost device has NaN in its rows. timestamp: seconds, or None.
    """

    positions: np.ndarray
    quaternions: np.ndarray
    timestamp: float | None = None

    def __post_init__(self):
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.quaternions = np.asarray(self.quaternions, dtype=np.float64)
        if self.positions.shape != (3, 3) or self.quaternions.shape != (3, 4):
            raise ValueError(
                f"TrackingFrame: expected positions (3, 3) and quaternions (3, 4), got "
                f"{self.positions.shape} and {self.quaternions.shape}"
            )

    @property
    def valid(self) -> np.ndarray:
        """(3,) bool: device tracked (the rule of the module docstring)."""
        return valid_mask(self.positions, self.quaternions)

    @classmethod
    def from_dict(cls, d) -> "TrackingFrame":
        """Parse the JSON frame object (schema in the module docstring); clear errors."""
        if not isinstance(d, dict):
            raise ValueError(f"expected a JSON object, got {type(d).__name__}")
        p = np.full((3, 3), np.nan)
        q = np.full((3, 4), np.nan)
        for i, dev in enumerate(DEVICES):
            pose = d.get(dev)
            if pose is None:
                continue
            if not isinstance(pose, dict) or "position" not in pose or "quaternion" not in pose:
                raise ValueError(
                    f"{dev}: expected null or an object with 'position' [x, y, z] and "
                    f"'quaternion' [x, y, z, w], got {limits.quote(pose)}"
                )
            p[i] = _numbers(pose["position"], 3, f"{dev}.position")
            q[i] = _numbers(pose["quaternion"], 4, f"{dev}.quaternion")
        t = d.get("timestamp")
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float))
                              or not math.isfinite(_number(t))):
            raise ValueError(f"timestamp: expected a finite number of seconds, got {limits.quote(t)}")
        return cls(p, q, None if t is None else float(t))

    def to_dict(self) -> dict:
        out: dict = {} if self.timestamp is None else {"timestamp": self.timestamp}
        for i, dev in enumerate(DEVICES):
            out[dev] = (
                {"position": self.positions[i].tolist(), "quaternion": self.quaternions[i].tolist()}
                if self.valid[i] else None
            )
        return out


def valid_mask(positions: np.ndarray, quaternions: np.ndarray) -> np.ndarray:
    """(..., 3) bool from positions (..., 3, 3) and quaternions (..., 3, 4): tracked, by
    the lost-device rule of the module docstring (finite, position within
    MAX_POSITION_M, quaternion norm within QUAT_NORM_MIN..QUAT_NORM_MAX)."""
    positions, quaternions = np.asarray(positions), np.asarray(quaternions)
    finite = np.isfinite(positions).all(-1) & np.isfinite(quaternions).all(-1)
    with np.errstate(invalid="ignore", over="ignore"):
        near = (np.abs(np.where(np.isfinite(positions), positions, 0)) <= limits.MAX_POSITION_M).all(-1)
        # Scale before the norm so that 1e300 does not overflow to inf (norm 0 stays 0).
        qf = np.where(np.isfinite(quaternions), quaternions, 0)
        big = np.abs(qf).max(-1, keepdims=True)
        norm = np.linalg.norm(qf / np.where(big > 0, big, 1), axis=-1) * big[..., 0]
        unit_ish = (norm >= limits.QUAT_NORM_MIN) & (norm <= limits.QUAT_NORM_MAX)
    return finite & near & unit_ish


def joint_poses(device: DeviceConfig, positions, quaternions) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """:meth:`DeviceConfig.to_joints` for native poses that may include lost devices.

    positions (..., 3, 3), quaternions (..., 3, 4), NaN where lost.
    returns rotations (..., 3, 3, 3), positions (..., 3, 3) (float64; identity / zero
    placeholders where lost, not to be used) and valid (..., 3) bool.
    """
    valid = valid_mask(positions, quaternions)
    P = np.where(valid[..., None], positions, 0.0)
    Q = np.where(valid[..., None], quaternions, np.array([0.0, 0.0, 0.0, 1.0]))
    R, p = device.to_joints(P, Q)
    return R, p, valid


@dataclass
class TrackingLog:
    """Raw samples of a log, native frame, irregular times, NaN = lost.

    timestamps: (T,) seconds, strictly increasing; positions: (T, 3, 3);
    quaternions: (T, 3, 4); source: file name (for messages).
    """

    timestamps: np.ndarray
    positions: np.ndarray
    quaternions: np.ndarray
    source: str = ""

    def __post_init__(self):
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64)
        self.positions = np.asarray(self.positions, dtype=np.float64)
        self.quaternions = np.asarray(self.quaternions, dtype=np.float64)
        T = self.timestamps.shape[0]
        where = f"{self.source}: " if self.source else ""
        if self.timestamps.ndim != 1 or self.positions.shape != (T, 3, 3) or self.quaternions.shape != (T, 3, 4):
            raise ValueError(
                f"{where}expected timestamps (T,), positions (T, 3, 3), quaternions (T, 3, 4), got "
                f"{self.timestamps.shape}, {self.positions.shape}, {self.quaternions.shape}"
            )
        if T < 2:
            raise ValueError(f"{where}need at least 2 samples, got {T}")
        if not np.isfinite(self.timestamps).all():
            i = int(np.flatnonzero(~np.isfinite(self.timestamps))[0])
            raise ValueError(f"{where}timestamp of sample {i} is not a finite number")
        bad = np.flatnonzero(np.diff(self.timestamps) <= 0)
        if bad.size:
            i = int(bad[0]) + 1
            raise ValueError(
                f"{where}timestamps must increase strictly: sample {i} (t={self.timestamps[i]:.6g} s) "
                f"is not after sample {i - 1} (t={self.timestamps[i - 1]:.6g} s)"
            )

    @classmethod
    def from_frames(cls, frames: list[TrackingFrame], source: str = "") -> "TrackingLog":
        if not frames:
            raise ValueError(f"{source or 'frames'}: no frames")
        missing = [i for i, f in enumerate(frames) if f.timestamp is None]
        if missing:
            raise ValueError(f"{source or 'frames'}: frame {missing[0]} has no 'timestamp'")
        return cls(np.array([f.timestamp for f in frames]), np.stack([f.positions for f in frames]),
                   np.stack([f.quaternions for f in frames]), source)


def read_tracking_log(path: str | Path) -> TrackingLog:
    """Read a ``.csv`` or ``.json`` tracking log (schemas in the module docstring).

    Timestamps in ms, us or ns are converted to seconds (with a warning); a log whose
    sample spacing fits no unit is refused (:func:`mage.core.limits.timestamp_scale`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: tracking log not found")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        log = _read_csv(path)
    elif suffix == ".json":
        log = _read_json(path)
    else:
        raise ValueError(f"{path}: unknown tracking log type {limits.quote(suffix)} (expected .csv or .json)")
    factor, unit = limits.timestamp_scale(log.timestamps, str(path))
    if factor != 1.0:
        warnings.warn(f"{path}: timestamps read as {unit} (from the sample spacing) and "
                      "converted to seconds", stacklevel=2)
        log = TrackingLog(log.timestamps * factor, log.positions, log.quaternions, log.source)
    return log


def _read_text(path: Path) -> str:
    """The file as text: UTF-8, a byte-order mark ignored; other bytes: a clean error."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte 0x{data[err.start]:02x}); "
                         "save the file as UTF-8") from None


def _read_csv(path: Path) -> TrackingLog:
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    rows = []
    line = 1  # first line of the row being read
    try:
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in CSV_COLUMNS if c not in header]
        if missing:
            raise ValueError(f"{path}: missing CSV column(s) {', '.join(missing)} (see mage.inference.tracking_log)")
        cols = [header.index(c) for c in CSV_COLUMNS]
        line = reader.line_num + 1  # first line of the next row
        for row in reader:
            line, first = reader.line_num + 1, line
            if not any(cell.strip() for cell in row):
                continue
            values = []
            for c, name in zip(cols, CSV_COLUMNS):
                cell = row[c].strip() if c < len(row) else ""
                try:
                    values.append(float(cell) if cell else math.nan)
                except ValueError:
                    raise ValueError(f"{path}: line {first}, column {name}: not a number: "
                                     f"{limits.quote(cell)}") from None
            rows.append(values)
    except csv.Error as err:  # e.g. a field over the csv module's size limit
        raise ValueError(f"{path}: line {line}: not valid CSV ({limits.quote(str(err), 120)})") from None
    if not rows:
        raise ValueError(f"{path}: no data rows")
    a = np.asarray(rows)
    per_dev = a[:, 1:].reshape(-1, 3, 7)
    return TrackingLog(a[:, 0], per_dev[..., :3], per_dev[..., 3:], str(path))


def parse_json(text: str):
    """``json.loads`` for untrusted text: any parser failure (syntax, nesting too deep,
    an integer beyond Python's digit limit) is a ValueError with a short message.
    Integers of more than 18 digits become floats (+-inf beyond the float range)."""
    def parse_int(s: str):
        return int(s) if len(s) <= 18 else float(s)  # float() of digits: at most inf

    try:
        return json.loads(text, parse_int=parse_int)
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except (ValueError, TypeError, OverflowError) as err:
        raise ValueError(f"not valid JSON ({limits.quote(str(err), 120)})") from None


def _read_json(path: Path) -> TrackingLog:
    try:
        data = parse_json(_read_text(path))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list):
        raise ValueError(f"{path}: expected {{\"frames\": [...]}} or a list of frames")
    if not frames:
        raise ValueError(f"{path}: no frames")
    parsed = []
    for i, f in enumerate(frames):
        try:
            parsed.append(TrackingFrame.from_dict(f))
        except ValueError as err:
            raise ValueError(f"{path}: frame {i}: {err}") from None
    return TrackingLog.from_frames(parsed, str(path))


def write_tracking_log(path: str | Path, log: TrackingLog) -> None:
    """Write ``log`` as CSV or JSON (by suffix), atomically; NaN -> empty cell / null."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with atomic_write(path, "w") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(CSV_COLUMNS)
            flat = np.concatenate([log.positions, log.quaternions], -1).reshape(len(log.timestamps), 21)
            for t, row in zip(log.timestamps, flat):
                w.writerow([repr(float(t))] + ["" if not np.isfinite(v) else repr(float(v)) for v in row])
    elif suffix == ".json":
        frames = [TrackingFrame(p, q, float(t)).to_dict()
                  for t, p, q in zip(log.timestamps, log.positions, log.quaternions)]
        with atomic_write(path, "w") as fh:
            json.dump({"frames": frames}, fh)
    else:
        raise ValueError(f"{path}: unknown tracking log type {suffix!r} (expected .csv or .json)")


@dataclass(frozen=True)
class Gap:
    """A device without valid data from ``start`` to ``end`` (seconds, the last valid
    sample before and the first after; None at the log's start or end)."""

    device: str
    start: float | None
    end: float | None

    def describe(self, max_gap: float) -> str:
        a = "the start" if self.start is None else f"{self.start:.3f} s"
        b = "the end" if self.end is None else f"{self.end:.3f} s"
        dur = "" if self.start is None or self.end is None else f" ({self.end - self.start:.3f} s > {max_gap} s)"
        if self.start is None:
            rule = "held its first valid pose"
        elif self.end is None:
            rule = "held its last valid pose"
        else:
            rule = "held the last pose, then blended to the next"
        return f"{self.device}: tracking lost from {a} to {b}{dur}; {rule}"


def to_tracking(
    log: TrackingLog,
    device: DeviceConfig | None = None,
    fps: float = MODEL_FPS,
    max_gap: float = 0.25,
    blend: float = 0.25,
) -> tuple[Tracking, list[Gap]]:
    """Convert, resample and gap-fill a log (rules in the module docstring).

    returns: the Tracking (T', rotations (T', 3, 3, 3), z-up joint poses at ``fps``)
    and the list of gaps longer than ``max_gap`` (each also issued as a warning).
    """
    device = device or DeviceConfig()
    if max_gap < 0 or blend < 0:
        raise ValueError(f"max_gap and blend must be >= 0, got {max_gap} and {blend}")
    where = log.source or "tracking log"
    fps = limits.check_fps(fps, "fps")
    t = log.timestamps
    # Bound the work by the data before allocating anything: seconds, no huge jump.
    factor, unit = limits.timestamp_scale(t, where)
    if factor != 1.0:
        raise ValueError(f"{where}: timestamps look like {unit}; they must be seconds "
                         "(read_tracking_log converts files)")
    limits.check_log_span(t, where)
    n_out = math.floor((t[-1] - t[0]) * fps + 1e-6) + 1
    grid = t[0] + np.arange(n_out) / fps
    R_all, p_all, valid = joint_poses(device, log.positions, log.quaternions)  # all samples at once
    R_out = torch.empty(n_out, 3, 3, 3, dtype=torch.float64)
    p_out = torch.empty(n_out, 3, 3, dtype=torch.float64)
    gaps: list[Gap] = []
    for d, name in enumerate(DEVICES):
        rows = np.flatnonzero(valid[:, d])
        if rows.size == 0:
            finite = np.isfinite(log.positions[:, d]).all(-1) & np.isfinite(log.quaternions[:, d]).all(-1)
            why = ""
            if finite.any():
                why = (f" ({int(finite.sum())} sample(s) with a zero / absurd quaternion or a position "
                       f"beyond {limits.MAX_POSITION_M:g} m count as lost)")
            raise ValueError(f"{where}: device '{name}' has no valid sample{why}")
        R_v, p_v, tv = R_all[rows, d], p_all[rows, d], t[rows]
        # Bracketing valid samples of each output time; before the first / after the
        # last valid sample both indices are the same sample (hold).
        i1 = np.searchsorted(tv, grid, side="right")
        i0 = np.clip(i1 - 1, 0, rows.size - 1)
        i1 = np.clip(i1, 0, rows.size - 1)
        span = tv[i1] - tv[i0]
        # Short gap: linear weight over the span. Long gap: 0 (hold) until the last
        # `blend` seconds of the gap, then linear up to 1 at the next valid sample.
        ramp = np.where(span > max_gap + 1e-9, np.minimum(blend, span), span)
        start = tv[i1] - ramp
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(ramp > 0, (grid - start) / np.where(ramp > 0, ramp, 1.0), (grid >= tv[i1]) * 1.0)
        wt = torch.as_tensor(np.clip(w, 0.0, 1.0))
        R_out[:, d] = rot.slerp_matrices(R_v[i0], R_v[i1], wt)
        p_out[:, d] = p_v[i0] * (1 - wt[:, None]) + p_v[i1] * wt[:, None]
        # Report: leading/trailing loss and interior gaps longer than max_gap.
        if tv[0] - t[0] > max_gap:
            gaps.append(Gap(name, None, float(tv[0])))
        for k in np.flatnonzero(np.diff(tv) > max_gap + 1e-9):
            gaps.append(Gap(name, float(tv[k]), float(tv[k + 1])))
        if t[-1] - tv[-1] > max_gap:
            gaps.append(Gap(name, float(tv[-1]), None))
    for g in gaps:
        warnings.warn(f"{where}: {g.describe(max_gap)}", stacklevel=2)
    return Tracking(R_out.float(), p_out.float(), fps), gaps


def load_tracking(path: str | Path, device: DeviceConfig | None = None, fps: float = MODEL_FPS,
                  max_gap: float = 0.25, blend: float = 0.25) -> tuple[Tracking, list[Gap]]:
    """:func:`read_tracking_log` then :func:`to_tracking`."""
    return to_tracking(read_tracking_log(path), device, fps, max_gap, blend)
