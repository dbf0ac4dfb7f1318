"""Plausibility bounds for untrusted input, as named limits in one place.

Every reader of outside data (motion files, tracking logs, server messages) and every
motion writer checks values against these, so that absurd but finite numbers (a frame
rate of 1e300, a head 1e12 m away) fail early in one line naming the file and field,
instead of overflowing, allocating terabytes or producing NaN poses later.

The bounds are wide: they reject only what cannot be a human body captured by a
motion-capture system or a VR runtime, never an unusual but real recording.

========================  ===========  ==================================================
limit                     value        checked by
========================  ===========  ==================================================
MIN_FPS, MAX_FPS          1 .. 10 000  motion frame rates (AMASS ``mocap_framerate``, BVH
                                       ``Frame Time``, ASF/AMC, the project's npz, writers)
MIN_LOG_RATE_HZ,          4 .. 2 000   median sample rate of a tracking log (decides the
MAX_LOG_RATE_HZ                        timestamp unit: s, ms, us or ns, see
                                       ``timestamp_scale``)
MAX_LOG_GAP_S             60 s         largest interval between two log samples
MAX_LOG_DURATION_S        6 h          length of a tracking log (bounds resampling work)
MAX_POSITION_M            10 000 m     any joint / device / root position (|x|, |y|, |z|)
MIN_BODY_HEIGHT_M,        0.2 .. 4 m   rest-pose height of a skeleton (BVH, ASF, body
MAX_BODY_HEIGHT_M                      models)
MAX_ROOT_SPEED_M_S        1 000 m/s    root translation speed between frames (above any capture
                                       glitch: catches unit mix-ups and garbage)
MAX_ANGLE_RAD             1 000 rad    any rotation angle in a file (axis-angle, Euler);
                                       beyond it sin / cos lose all precision
MIN_SAMPLES_FOR_UNIT      8            samples a log needs for its timestamp unit to be
                                       guessed (fewer: seconds only)
QUAT_NORM_MIN,            1e-6 .. 1e6  norm of a device quaternion; outside: lost (an
QUAT_NORM_MAX                          all-zero pose is how runtimes write "lost")
MAX_QUOTE_CHARS           60           characters of input quoted in an error message
========================  ===========  ==================================================
"""

from __future__ import annotations

import math
import re

import numpy as np

MIN_FPS = 1.0
MAX_FPS = 10_000.0
MIN_LOG_RATE_HZ = 4.0
MAX_LOG_RATE_HZ = 2_000.0
MAX_LOG_GAP_S = 60.0
MAX_LOG_DURATION_S = 6 * 3600.0
MAX_POSITION_M = 10_000.0
MIN_BODY_HEIGHT_M = 0.2
MAX_BODY_HEIGHT_M = 4.0
MAX_ROOT_SPEED_M_S = 1_000.0
MAX_ANGLE_RAD = 1_000.0
QUAT_NORM_MIN = 1e-6
QUAT_NORM_MAX = 1e6
MAX_QUOTE_CHARS = 60
MAX_MESSAGE_CHARS = 400  # an error message as a whole (shorten)
MIN_SAMPLES_FOR_UNIT = 8  # a log needs this many samples for its timestamp unit to be guessed

# Timestamp units a log may use, tried in this order (factor to seconds).
TIMESTAMP_UNITS: tuple[tuple[str, float], ...] = (
    ("seconds", 1.0), ("milliseconds", 1e-3), ("microseconds", 1e-6), ("nanoseconds", 1e-9),
)


def quote(value, limit: int = MAX_QUOTE_CHARS) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters."""
    text = value if isinstance(value, str) else None
    if text is not None and len(text) > limit:
        return repr(text[:limit]) + f"... ({len(text)} characters)"
    try:
        r = repr(value)
    except Exception:  # e.g. a huge int beyond the int->str digit limit
        r = f"<{type(value).__name__}>"
    return r if len(r) <= limit else r[:limit] + f"... ({len(r)} characters)"


def shorten(message: str, limit: int = MAX_QUOTE_CHARS, keep: tuple[str, ...] = ()) -> str:
    """``message`` on one line, with every run of more than ``limit`` non-blank
    characters (quoted input) cut to ``limit`` plus "...", except the strings ``keep``
    (file names), and at most about MAX_MESSAGE_CHARS long (plus the kept strings): a
    safety net for messages that quote a file."""
    text = " ".join(str(message).split())
    keep = tuple(k for k in keep if k)
    if keep:
        pattern = "|".join(re.escape(k) for k in sorted(keep, key=len, reverse=True))
        text = "".join(p if p in keep else _cut_runs(p, limit) for p in re.split(f"({pattern})", text))
    else:
        text = _cut_runs(text, limit)
    cap = MAX_MESSAGE_CHARS + sum(len(k) for k in keep if k in text)
    if len(text) > cap:
        text = text[:cap] + f"... ({len(text)} characters)"
    return text


def _cut_runs(text: str, limit: int) -> str:
    def cut(m):
        run = m.group(0)
        return run if _PATH.match(run) else run[:limit] + "..."
    return re.sub(r"\S{%d,}" % (limit + 1), cut, text)


_PATH = re.compile(r"^[\w./\\:~+-]+\.\w{1,8}[,:;)]*$")  # a file name, not quoted input


def check_fps(fps, where: str) -> float:
    """``fps`` as a float within MIN_FPS..MAX_FPS, else ValueError naming ``where``
    (e.g. ``"x.npz: field 'mocap_framerate'"``)."""
    try:
        value = float(fps)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where} must be a plausible frame rate, got {quote(fps)}") from None
    if not (MIN_FPS <= value <= MAX_FPS):  # also NaN
        raise ValueError(f"{where} must be a plausible frame rate ({MIN_FPS:g} to {MAX_FPS:g} "
                         f"frames/s), got {value:.6g}")
    return value


def check_frame_time(seconds, where: str) -> float:
    """A BVH-style frame duration in seconds -> the frame rate, checked with check_fps."""
    try:
        dt = float(seconds)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{where} must be a plausible frame time, got {quote(seconds)}") from None
    if not (1.0 / MAX_FPS <= dt <= 1.0 / MIN_FPS):
        raise ValueError(f"{where} must be a plausible frame time ({1 / MAX_FPS:g} to "
                         f"{1 / MIN_FPS:g} s), got {dt:.6g}")
    return 1.0 / dt


def check_positions(x, where: str) -> None:
    """Raise if any value of the array-like ``x`` (metres) is non-finite or beyond
    MAX_POSITION_M in magnitude."""
    a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.size == 0:
        return
    if not np.isfinite(a).all():
        raise ValueError(f"{where} contains NaN/inf")
    m = float(np.abs(a).max())
    if m > MAX_POSITION_M:
        raise ValueError(f"{where}: positions up to {m:.3g} m from the origin (the limit is "
                         f"{MAX_POSITION_M:g} m); check the units")


def check_angles(x, where: str, degrees: bool = False) -> None:
    """Raise if any rotation angle of the array-like ``x`` (radians, or degrees) is
    non-finite or beyond MAX_ANGLE_RAD in magnitude."""
    a = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
    if a.size == 0:
        return
    if not np.isfinite(a).all():
        raise ValueError(f"{where} contains NaN/inf")
    m = float(np.abs(a).max()) * (math.pi / 180 if degrees else 1.0)
    if m > MAX_ANGLE_RAD:
        raise ValueError(f"{where}: rotation angles up to {m:.3g} rad (the limit is "
                         f"{MAX_ANGLE_RAD:g} rad)")


def check_body_height(height_m: float, where: str) -> None:
    """Raise if a skeleton's rest height (metres) is not that of a human body."""
    if not (MIN_BODY_HEIGHT_M <= float(height_m) <= MAX_BODY_HEIGHT_M):
        raise ValueError(f"{where}: body height {float(height_m):.4g} m is not plausible "
                         f"({MIN_BODY_HEIGHT_M:g} to {MAX_BODY_HEIGHT_M:g} m); check the units "
                         "and the joint map")


def check_root_speed(trans, fps: float, where: str) -> None:
    """Raise if the root translation (T, 3) metres moves faster than MAX_ROOT_SPEED_M_S."""
    a = np.asarray(trans.detach().cpu() if hasattr(trans, "detach") else trans, dtype=np.float64)
    if a.shape[0] < 2:
        return
    speed = np.linalg.norm(np.diff(a, axis=0), axis=-1) * float(fps)
    k = int(np.argmax(speed))
    if speed[k] > MAX_ROOT_SPEED_M_S:
        raise ValueError(f"{where}: the root moves {speed[k]:.3g} m/s between frames {k} and "
                         f"{k + 1} (the limit is {MAX_ROOT_SPEED_M_S:g} m/s); check the units "
                         "and the frame rate")


def check_motion(motion, where: str) -> None:
    """Frame rate, root positions and root speed of a :class:`mage.core.Motion`."""
    check_fps(motion.fps, f"{where}: frame rate")
    check_positions(motion.trans, f"{where}: root translation")
    check_root_speed(motion.trans, motion.fps, where)


def timestamp_scale(timestamps: np.ndarray, where: str) -> tuple[float, str]:
    """The factor that turns a log's timestamps into seconds, and the unit's name.

    Decided from the median spacing of the samples, before anything is allocated: the
    unit (seconds, ms, us, ns, tried in that order) whose median spacing is a sample rate
    of MIN_LOG_RATE_HZ..MAX_LOG_RATE_HZ. That range spans less than a factor 1000, so at
    most one unit fits. A log of fewer than MIN_SAMPLES_FOR_UNIT samples must be in
    seconds. None fits: ValueError naming ``where``.
    """
    t = np.asarray(timestamps, dtype=np.float64)
    if t.size < 2:
        return 1.0, "seconds"
    spacing = float(np.median(np.diff(t)))
    # Too few samples to tell a unit from a long gap: seconds or nothing.
    units = TIMESTAMP_UNITS if t.size >= MIN_SAMPLES_FOR_UNIT else TIMESTAMP_UNITS[:1]
    for name, factor in units:
        dt = spacing * factor
        if 1.0 / MAX_LOG_RATE_HZ <= dt <= 1.0 / MIN_LOG_RATE_HZ:
            return factor, name
    raise ValueError(
        f"{where}: timestamps: the median spacing of the samples is {spacing:.6g}, which is no "
        f"sample rate of {MIN_LOG_RATE_HZ:g} to {MAX_LOG_RATE_HZ:g} Hz in seconds, ms, us or ns; "
        "timestamps must be seconds")


def check_log_span(timestamps_s: np.ndarray, where: str) -> None:
    """Bound a log's resampling work by its data: no interval between two samples longer
    than MAX_LOG_GAP_S, no log longer than MAX_LOG_DURATION_S (seconds)."""
    t = np.asarray(timestamps_s, dtype=np.float64)
    if t.size < 2:
        return
    d = np.diff(t)
    k = int(np.argmax(d))
    if not math.isfinite(d[k]) or d[k] > MAX_LOG_GAP_S:
        raise ValueError(f"{where}: timestamps jump by {d[k]:.6g} s between samples {k} and {k + 1} "
                         f"(the limit is {MAX_LOG_GAP_S:g} s); split the log there")
    span = float(t[-1] - t[0])
    if span > MAX_LOG_DURATION_S:
        raise ValueError(f"{where}: the log spans {span:.6g} s (the limit is "
                         f"{MAX_LOG_DURATION_S:g} s); split it")
