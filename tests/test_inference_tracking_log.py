import json
import math

import numpy as np
import pytest
import torch

from mage.core import rotations as rot
from mage.inference.device import DeviceConfig
from mage.inference.tracking_log import (
    CSV_COLUMNS,
    Gap,
    TrackingFrame,
    TrackingLog,
    read_tracking_log,
    to_tracking,
    write_tracking_log,
)

OMEGA = 1.3  # rad/s about z
VEL = np.array([[0.5, -0.2, 0.1], [0.0, 0.3, 0.0], [-0.4, 0.0, 0.2]])  # m/s per device
P0 = np.array([[0.0, 0.0, 1.7], [0.3, 0.2, 1.0], [-0.3, 0.2, 1.0]])


def _truth(t):
    """Analytic z-up trajectory: positions linear in t, rotations Rz(OMEGA t + d)."""
    t = np.asarray(t, dtype=np.float64)
    p = P0 + VEL * t[:, None, None]
    angles = OMEGA * t[:, None] + np.array([0.0, 0.5, -0.5])
    R = rot.rotation_about_axis(torch.as_tensor(angles), "z").double()
    return R, p


def _log(t):
    R, p = _truth(t)
    return TrackingLog(t, p, rot.matrix_to_quaternion(R).numpy(), "test.csv")


def _irregular_times(duration=2.0, seed=0):
    rng = np.random.default_rng(seed)
    dt = rng.uniform(1 / 90, 1 / 45, 400)  # jittery 45-90 Hz
    return np.concatenate([[0.0], np.cumsum(dt)])[: int(duration * 60)]


def test_resample_irregular_times_to_60fps_exact_on_linear_and_geodesic_motion():
    t = _irregular_times() + 5.0  # timestamps need not start at 0
    tracking, gaps = to_tracking(_log(t))
    assert gaps == [] and tracking.fps == 60
    grid = t[0] + np.arange(tracking.num_frames) / 60
    assert grid[-1] <= t[-1] + 1e-9 and t[-1] - grid[-1] < 1 / 60
    R, p = _truth(grid - 5.0 + 5.0)
    assert np.allclose(tracking.positions.numpy(), p, atol=1e-5)
    # Constant-rate rotation about a fixed axis: slerp between samples is exact.
    assert torch.allclose(tracking.rotations.double(), R, atol=1e-5)


def test_short_gap_interpolated_long_gap_held_then_blended():
    t = np.arange(0, 3.0, 1 / 60)
    log = _log(t)
    # Short drop-out of the head (0.1 s of NaN rows) and a long one of the left hand.
    log.positions[(t > 0.5) & (t < 0.6), 0] = np.nan
    lost = (t > 1.0 + 1e-9) & (t < 2.0 - 1e-9)
    log.quaternions[lost, 1] = np.nan
    with pytest.warns(UserWarning, match=r"left: tracking lost from 1\.000 s to 2\.000 s"):
        tracking, gaps = to_tracking(log, max_gap=0.25, blend=0.2)
    assert gaps == [Gap("left", pytest.approx(1.0), pytest.approx(2.0))]
    R, p = _truth(t)
    head = tracking.positions[:, 0].double().numpy()
    assert np.allclose(head, p[:, 0], atol=1e-5)  # interpolated exactly (linear motion)
    left = tracking.positions[:, 1].double().numpy()
    hold = (t >= 1.0) & (t <= 1.8 + 1e-9)
    assert np.allclose(left[hold], p[60, 1], atol=1e-5)  # held at the pose of t = 1.0
    i = 114  # t = 1.9 s: halfway through the 0.2 s blend
    assert np.allclose(left[i], 0.5 * (p[60, 1] + p[120, 1]), atol=1e-5)
    half = rot.slerp_matrices(R[60, 1], R[120, 1], torch.tensor(0.5, dtype=torch.float64))
    assert torch.allclose(tracking.rotations[i, 1].double(), half, atol=1e-5)
    assert np.allclose(left[t >= 2.0], p[t >= 2.0, 1], atol=1e-5)
    assert torch.isfinite(tracking.rotations).all() and torch.isfinite(tracking.positions).all()


def test_missing_rows_and_lost_start_are_reported_and_held():
    t = np.arange(0, 2.0, 1 / 60)
    keep = (t < 0.8) | (t > 1.3)  # a hole in the file: 0.5 s without any row
    log = _log(t[keep])
    log.positions[:30, 2] = np.nan  # right hand only appears at t = 0.5
    with pytest.warns(UserWarning):
        tracking, gaps = to_tracking(log)
    devices = sorted(g.device for g in gaps if g.start is not None)
    assert devices == ["head", "left", "right"]
    start_gap = [g for g in gaps if g.start is None]
    assert start_gap == [Gap("right", None, pytest.approx(0.5))]
    assert "held its first valid pose" in start_gap[0].describe(0.25)
    _, p = _truth(t)
    assert np.allclose(tracking.positions[:30, 2].double().numpy(), p[30, 2], atol=1e-5)


@pytest.mark.parametrize("suffix", [".csv", ".json"])
def test_write_read_round_trip_keeps_lost_devices(tmp_path, suffix):
    log = _log(np.arange(10) / 30)
    log.positions[3, 1] = np.nan
    log.quaternions[3, 1] = np.nan
    path = tmp_path / f"log{suffix}"
    write_tracking_log(path, log)
    back = read_tracking_log(path)
    assert np.array_equal(back.timestamps, log.timestamps)
    assert np.allclose(back.positions, log.positions, equal_nan=True)
    assert np.allclose(back.quaternions, log.quaternions, equal_nan=True)
    assert np.isnan(back.positions[3, 1]).all()


def test_csv_columns_exactly_as_documented(tmp_path):
    assert CSV_COLUMNS[:9] == ("timestamp", "head_px", "head_py", "head_pz", "head_qx", "head_qy",
                               "head_qz", "head_qw", "left_px")
    assert len(CSV_COLUMNS) == 22 and CSV_COLUMNS[-1] == "right_qw"
    # Columns in another order, with an extra column, still read.
    order = list(reversed(CSV_COLUMNS)) + ["button"]
    row = {c: "0" for c in CSV_COLUMNS} | {"timestamp": "0", "head_qw": "1", "left_qw": "1", "right_qw": "1"}
    lines = [",".join(order)]
    for k in range(3):
        r = dict(row, timestamp=str(k / 60), head_pz="1.5")
        lines.append(",".join(r.get(c, "x") for c in order))
    path = tmp_path / "reordered.csv"
    path.write_text("\n".join(lines) + "\n")
    log = read_tracking_log(path)
    assert np.allclose(log.positions[:, 0], [0, 0, 1.5]) and np.allclose(log.timestamps, [0, 1 / 60, 2 / 60])


def test_openxr_log_is_converted(tmp_path):
    t = np.arange(20) / 60
    R, p = _truth(t)
    cfg = DeviceConfig("openxr")
    P_dev, Q_dev = cfg.to_devices(R, torch.as_tensor(p))
    path = tmp_path / "xr.json"
    write_tracking_log(path, TrackingLog(t, P_dev.numpy(), Q_dev.numpy()))
    tracking, _ = to_tracking(read_tracking_log(path), cfg)
    assert np.allclose(tracking.positions.double().numpy(), p, atol=1e-5)
    assert torch.allclose(tracking.rotations.double(), R, atol=1e-5)


def test_frame_from_dict_validation():
    f = TrackingFrame.from_dict({"timestamp": 1.5, "head": {"position": [0, 0, 1], "quaternion": [0, 0, 0, 1]},
                                 "left": None})
    assert f.valid.tolist() == [True, False, False] and f.timestamp == 1.5
    assert TrackingFrame.from_dict(f.to_dict()).valid.tolist() == [True, False, False]
    for bad, msg in [
        ([1, 2], "JSON object"),
        ({"head": {"position": [0, 0], "quaternion": [0, 0, 0, 1]}}, r"head\.position: expected a list of 3"),
        ({"left": {"position": [0, 0, 0], "quaternion": [0, 0, 0, "a"]}}, r"left\.quaternion"),
        ({"right": [0, 0, 0]}, "right: expected null or an object"),
        ({"timestamp": "now"}, "timestamp"),
        ({"timestamp": int("1" + "0" * 400)}, "timestamp: expected a finite number"),
    ]:
        with pytest.raises(ValueError, match=msg):
            TrackingFrame.from_dict(bad)


def test_file_errors_name_file_and_place(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_tracking_log(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,head_px\n0,1\n")
    with pytest.raises(ValueError, match=r"bad.csv: missing CSV column\(s\) head_py"):
        read_tracking_log(bad)
    log = _log(np.arange(4) / 60)
    write_tracking_log(bad, log)
    lines = bad.read_text().splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[3], "abc", 1)
    bad.write_text("\n".join(lines))
    with pytest.raises(ValueError, match="line 3, column head_pz: not a number"):
        read_tracking_log(bad)
    with pytest.raises(ValueError, match=r"timestamps must increase strictly: sample 2"):
        TrackingLog(np.array([0.0, 0.1, 0.1]), np.zeros((3, 3, 3)), np.zeros((3, 3, 4)), "x.csv")
    j = tmp_path / "bad.json"
    j.write_text(json.dumps({"frames": [{"timestamp": 0}, {"timestamp": 1, "left": 5}]}))
    with pytest.raises(ValueError, match="bad.json: frame 1: left"):
        read_tracking_log(j)
    lost = _log(np.arange(4) / 60)
    lost.positions[:, 2] = math.nan
    with pytest.raises(ValueError, match="device 'right' has no valid sample"):
        to_tracking(lost)
