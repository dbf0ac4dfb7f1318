"""Hostile and unusual input (issue 12): each fault KIND, with its input generated here.

Tracking logs (units, gaps, BOM, parser failures of untrusted text, the lost-device
rule), plausibility bounds (mage.core.limits), npz members that are not arrays, body
model pickles, tampered training checkpoints and the CLI's one-line errors. The server's
kinds are in test_server.py; the fuzz harness in test_fuzz.py.
"""

import csv
import io
import json
import pickle
import sys
import time
import types
import warnings
import zipfile

import numpy as np
import pytest
import torch

from mage.core import limits
from mage.core import rotations as rot
from mage.core.skeleton import Skeleton
from mage.inference.tracking_log import (
    CSV_COLUMNS,
    TrackingLog,
    load_tracking,
    read_tracking_log,
    to_tracking,
    write_tracking_log,
)


def _log(T=120, t0=0.0, fps=60.0, seed=0):
    rng = np.random.default_rng(seed)
    t = t0 + np.arange(T) / fps
    P = np.array([[0.0, 0.0, 1.6], [0.3, 0.2, 1.0], [-0.3, 0.2, 1.0]]) + 0.1 * np.sin(t)[:, None, None]
    angles = torch.as_tensor(0.5 * np.sin(t)[:, None] + np.array([0.0, 0.4, -0.4]))
    Q = rot.matrix_to_quaternion(rot.rotation_about_axis(angles, "z").double()).numpy()
    return TrackingLog(t, P + rng.normal(0, 1e-4, P.shape), Q, "x.csv")


def _csv_text(timestamps, log) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    flat = np.concatenate([log.positions, log.quaternions], -1).reshape(len(timestamps), 21)
    for t, row in zip(timestamps, flat):
        w.writerow([t] + ["" if not np.isfinite(v) else repr(float(v)) for v in row])
    return out.getvalue()


# --- 1. timestamp units ------------------------------------------------------------------
@pytest.mark.parametrize("unit, factor", [("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9)])
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_timestamps_in_ms_us_ns_are_recognised_and_converted(tmp_path, unit, factor, fmt):
    log = _log(T=100, fps=50.0)  # 20 ms steps: exact in every unit
    ref, _ = to_tracking(log)
    # OpenXR XrTime style: large integers (the epoch offset is kept as is)
    stamps = [int(1_700_000_000 * factor) + round(k * factor / 50) for k in range(len(log.timestamps))]
    path = tmp_path / f"log.{fmt}"
    if fmt == "csv":
        path.write_text(_csv_text(stamps, log))
    else:
        write_tracking_log(path, log)
        data = json.loads(path.read_text())
        for f, s in zip(data["frames"], stamps):
            f["timestamp"] = s
        path.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=f"timestamps read as {unit}"):
        tracking, gaps = load_tracking(path)
    assert tracking.num_frames == ref.num_frames == 119 and not gaps
    assert torch.allclose(tracking.positions, ref.positions, atol=1e-5)


@pytest.mark.parametrize("last", [1e5, 1e7, 1e10, 1.7e18])
def test_a_huge_gap_in_a_short_log_is_refused_before_allocating(tmp_path, last):
    path = tmp_path / "gap.csv"
    log = _log(T=2)
    path.write_text(_csv_text([0.0, last], log))
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match=r"gap\.csv: timestamps: .*must be seconds"):
        load_tracking(path)
    assert time.perf_counter() - t0 < 2


def test_work_is_bounded_by_the_data_not_the_timestamps(tmp_path):
    log = _log(T=100)
    t = log.timestamps.copy()
    t[50:] += 1e5  # one jump of a day in a 60 Hz log
    with pytest.raises(ValueError, match=r"x\.csv: timestamps jump by 100000 s between samples 49 and 50"):
        to_tracking(TrackingLog(t, log.positions, log.quaternions, "x.csv"))
    with pytest.raises(ValueError, match="the log spans"):
        limits.check_log_span(np.arange(0, 7 * 3600, 30.0), "long.csv")
    with pytest.raises(ValueError, match="look like nanoseconds; they must be seconds"):
        to_tracking(TrackingLog(t * 0 + np.arange(100) * 16_666_667, log.positions, log.quaternions, "x.csv"))


# --- 3. byte-order mark ------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_utf8_byte_order_mark_is_ignored(tmp_path, fmt):
    log = _log()
    plain = tmp_path / f"plain.{fmt}"
    write_tracking_log(plain, log)
    bom = tmp_path / f"bom.{fmt}"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a, b = read_tracking_log(plain), read_tracking_log(bom)
    assert np.array_equal(a.timestamps, b.timestamps) and np.allclose(a.positions, b.positions)


# --- 4. parser failures of untrusted text are one-line errors naming the file ---------------
HEADER = ",".join(CSV_COLUMNS)
ROW = "0,0,0,1.6,0,0,0,1,0.3,0,1,0,0,0,1,-0.3,0,1,0,0,0,1"
ROW2 = ROW.replace("0,0,0,1.6", "0.0166,0,0,1.6", 1)


@pytest.mark.parametrize("name, content, match", [
    ("long_field.csv", "1" * 131073 + "\n", r"line 1: not valid CSV \('field larger than field limit"),
    ("latin1.csv", (HEADER + "\n" + ROW + "\n" + ROW2 + ",caf\xe9\n").encode("latin-1"), r"line 3: not UTF-8 text \(byte 0xe9\)"),
    ("nul.csv", HEADER + "\n" + ROW + "\n" + ROW2.replace("1.6", "1.\x006") + "\n", "line 3, column head_pz: not a number"),
    ("quote.csv", HEADER + "\n" + ROW + "\n\"" + (ROW2 + "\n") * 500, r"line 3, column timestamp: not a number: .*\.\.\. \("),
    ("bigint.json", '[{"timestamp": 1' + "0" * 400 + "}]", "frame 0: timestamp: expected a finite number"),
    ("digits5000.json", '[{"timestamp": ' + "7" * 5000 + "}]", "frame 0: timestamp: expected a finite number"),
    ("deep.json", "[" * 1000 + "]" * 1000, r"not valid JSON \(nested too deeply\)"),
    ("deep_obj.json", '{"a":' * 5000 + "1" + "}" * 5000, r"not valid JSON \(nested too deeply\)"),
    ("empty_frames.json", '{"frames": []}', "no frames"),
    ("garbage.json", "{not json", "not valid JSON"),
])
def test_untrusted_text_gives_one_line_errors_naming_the_file(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    with pytest.raises(ValueError, match=match) as exc:
        load_tracking(path)
    msg = str(exc.value)
    assert msg.startswith(str(path)) and "\n" not in msg and len(msg) < 400


def test_huge_integers_in_a_json_position_make_that_device_lost(tmp_path):
    log = _log(T=20)
    path = tmp_path / "big.json"
    write_tracking_log(path, log)
    text = path.read_text()
    data = json.loads(text)
    data["frames"][5]["left"]["position"][2] = "BIG"
    path.write_text(json.dumps(data).replace('"BIG"', "1" + "0" * 400))
    assert np.isinf(read_tracking_log(path).positions[5, 1, 2])  # beyond the float range
    tracking, _ = load_tracking(path)
    assert torch.isfinite(tracking.positions).all()


# --- 5. one rule for lost devices --------------------------------------------------------
def test_an_all_zero_pose_is_lost_in_json_and_csv_alike(tmp_path):
    log = _log()
    lost = TrackingLog(log.timestamps, log.positions.copy(), log.quaternions.copy(), "x")
    zero = TrackingLog(log.timestamps, log.positions.copy(), log.quaternions.copy(), "x")
    lost.positions[50:56, 1] = np.nan
    zero.positions[50:56, 1] = 0.0
    zero.quaternions[50:56, 1] = 0.0
    ref, _ = to_tracking(lost)
    for fmt in ("csv", "json"):
        path = tmp_path / f"zero.{fmt}"
        write_tracking_log(path, zero)
        text = path.read_text()
        if fmt == "json":  # written as the runtime does: an all-zero pose, not null
            data = json.loads(text)
            for f in data["frames"][50:56]:
                f["left"] = {"position": [0, 0, 0], "quaternion": [0, 0, 0, 0]}
            path.write_text(json.dumps(data))
        else:
            assert ",0.0,0.0,0.0,0.0,0.0,0.0,0.0," in text
        got, _ = load_tracking(path)
        assert torch.allclose(got.positions, ref.positions) and torch.allclose(got.rotations, ref.rotations)


def test_absurd_positions_and_quaternions_count_as_lost():
    log = _log()
    bad = TrackingLog(log.timestamps, log.positions.copy(), log.quaternions.copy(), "x.csv")
    bad.positions[10:13, 0, 2] = 1e30
    bad.quaternions[20:22, 2] = 1e300
    ref_log = TrackingLog(log.timestamps, log.positions.copy(), log.quaternions.copy(), "x.csv")
    ref_log.positions[10:13, 0] = np.nan
    ref_log.positions[20:22, 2] = np.nan
    got, ref = to_tracking(bad)[0], to_tracking(ref_log)[0]
    assert torch.allclose(got.positions, ref.positions) and torch.isfinite(got.rotations).all()
    bad.positions[:, 0, 2] = 1e30
    with pytest.raises(ValueError, match=r"x\.csv: device 'head' has no valid sample \(120 sample\(s\) with .*beyond 10000 m"):
        to_tracking(bad)


# --- 9. plausibility bounds, one place ------------------------------------------------------
def test_limits_are_named_in_one_place_and_give_one_line_errors():
    assert limits.check_fps(120, "f") == 120.0
    for bad in (1e300, 1e-300, 0, -5, float("nan"), "x", 10**400):
        with pytest.raises(ValueError, match="f.* (must be a plausible frame rate|expected a positive)"):
            limits.check_fps(bad, "f")
    assert limits.check_frame_time(1 / 120, "w.bvh: Frame Time") == pytest.approx(120)
    with pytest.raises(ValueError, match=r"w\.bvh: Frame Time must be a plausible frame time"):
        limits.check_frame_time(1e-12, "w.bvh: Frame Time")
    with pytest.raises(ValueError, match="positions up to 1e\\+12 m"):
        limits.check_positions(np.array([[0, 0, 1e12]]), "p")
    with pytest.raises(ValueError, match="body height 95 m"):
        limits.check_body_height(95.0, "s.bvh")
    with pytest.raises(ValueError, match="rotation angles up to"):
        limits.check_angles(np.array([1e300]), "a")
    assert len(limits.quote("x" * 10_000)) < 100 and len(limits.shorten("a " + "y" * 5000)) < 100
    from mage.core import Motion

    with pytest.raises(ValueError, match="fps: must be a plausible frame rate"):
        Motion.from_axis_angle(torch.zeros(2, 22, 3), torch.zeros(2, 3), 1e300, Skeleton.smpl22())


def test_absurd_motion_is_never_written(tmp_path):
    from mage.core import Motion
    from mage.data.io import save_motion

    far = Motion.from_axis_angle(torch.zeros(3, 22, 3), torch.full((3, 3), 1e12), 30.0, Skeleton.smpl22())
    for name in ("far.npz", "far.bvh"):
        with pytest.raises(ValueError, match="root translation: positions up to 1e\\+12 m"):
            save_motion(far, tmp_path / name)
    fast = Motion.from_axis_angle(torch.zeros(3, 22, 3), torch.tensor([[0.0, 0, 1], [50, 0, 1], [0, 0, 1]]),
                                  30.0, Skeleton.smpl22())
    with pytest.raises(ValueError, match="the root moves 1.5e\\+03 m/s between frames 0 and 1"):
        save_motion(fast, tmp_path / "fast.npz", format="amass")
    assert not list(tmp_path.iterdir())


# --- 10. npz members that are not arrays ------------------------------------------------------
def _npz_with_raw_member(path, arrays: dict, raw: dict):
    np.savez(path, **arrays)
    with zipfile.ZipFile(path, "a") as z:
        for k, v in raw.items():
            z.writestr(f"{k}.npy", v)


def test_an_npz_member_that_is_not_an_array_is_a_clean_error(tmp_path, smplh_model_file):
    from mage.data.amass import load_amass
    from mage.data.io import load_motion

    amass = tmp_path / "bad_poses.npz"
    _npz_with_raw_member(amass, {"poses": np.zeros((2, 156)), "trans": np.zeros((2, 3))}, {"mocap_framerate": b"60"})
    for call in (lambda: load_amass(amass, smplh_model_file), lambda: load_motion(amass, body_model=smplh_model_file)):
        with pytest.raises(ValueError, match=r"bad_poses\.npz: field 'mocap_framerate' is not an \.npy array"):
            call()
    own = tmp_path / "motion.npz"
    _npz_with_raw_member(own, {"format": np.array("mage-motion-v1")}, {"poses": b"\x00" * 10})
    with pytest.raises(ValueError, match=r"motion\.npz: field 'poses' is not an \.npy array"):
        load_motion(own)


def test_cli_reports_bad_npz_in_one_line_with_exit_2(tmp_path, capsys):
    from mage.cli.main import main

    amass = tmp_path / "bad_poses.npz"
    _npz_with_raw_member(amass, {"poses": np.zeros((2, 156))}, {"mocap_framerate": b"60"})
    assert main(["data", "info", str(amass)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "bad_poses.npz: field 'mocap_framerate' is not an .npy array" in err


# --- 11. body-model pickles ---------------------------------------------------------------
class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # what a malicious model file does: call a function on load
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def test_a_malicious_body_model_pickle_is_refused_without_running(tmp_path, capsys):
    marker = tmp_path / "PAYLOAD_RAN"
    for i, payload in enumerate([_Payload(marker), {"v_template": _Payload(marker)}]):
        pkl = tmp_path / f"model{i}.pkl"
        pkl.write_bytes(pickle.dumps(payload, protocol=2))
        with pytest.raises(ValueError, match=r"model\d\.pkl: not a plain body-model pickle \(refusing to load "
                                             r"'(__builtin__|builtins)\.exec'\); .*convert the \.pkl to \.npz"):
            Skeleton.from_smpl_model(pkl)
    assert not marker.exists()
    pkl = tmp_path / "list.pkl"
    pkl.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="a pickled list, expected a dict"):
        Skeleton.from_smpl_model(pkl)


def test_an_official_style_pkl_with_chumpy_and_sparse_arrays_loads(tmp_path, smplh_model_file, monkeypatch):
    from scipy import sparse

    with np.load(smplh_model_file) as f:
        arrays = {k: f[k] for k in ("v_template", "shapedirs", "J_regressor", "kintree_table")}
    # A stand-in chumpy module, present only while pickling (as on the machine that made
    # the official files); loading must not need it.
    chumpy = types.ModuleType("chumpy")
    ch = types.ModuleType("chumpy.ch")

    class Ch:
        def __init__(self, x):
            self.x = x
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    ch.Ch = Ch
    monkeypatch.setitem(sys.modules, "chumpy", chumpy)
    monkeypatch.setitem(sys.modules, "chumpy.ch", ch)
    model = {"v_template": arrays["v_template"], "shapedirs": Ch(arrays["shapedirs"]),
             "J_regressor": sparse.csc_matrix(arrays["J_regressor"]), "kintree_table": arrays["kintree_table"],
             "bs_style": "lbs"}
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(pickle.dumps(model, protocol=2))
    monkeypatch.delitem(sys.modules, "chumpy.ch")
    monkeypatch.delitem(sys.modules, "chumpy")
    a, b = Skeleton.from_smpl_model(pkl), Skeleton.from_smpl_model(smplh_model_file)
    assert np.allclose(a.offsets, b.offsets)


# --- 12. tampered training checkpoints ------------------------------------------------------
def test_a_tampered_trainer_ckpt_is_a_one_line_error(tmp_path):
    from mage.model.checkpoint_paths import TRAINER_CKPT, step_dir
    from mage.train.run import _check_run_folder, check_trainer_ckpt

    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "global_step": 3}, good)
    check_trainer_ckpt(good)
    data = good.read_bytes()
    cases = {
        "garbage": b"not a checkpoint at all",
        "truncated": data[: len(data) // 2],
        "flipped": data[:200] + bytes([data[200] ^ 0xFF]) + data[201:],
        "malicious": None,
        "not_a_dict": None,
    }
    for name, content in cases.items():
        path = tmp_path / f"{name}.ckpt"
        if name == "malicious":
            torch.save({"state_dict": _Payload(tmp_path / "RAN")}, path)
        elif name == "not_a_dict":
            torch.save([1, 2, 3], path)
        else:
            path.write_bytes(content)
        with pytest.raises(ValueError, match=rf"{name}\.ckpt: not a (readable training|Lightning training) "
                                             "checkpoint") as exc:
            check_trainer_ckpt(path)
        assert "\n" not in str(exc.value) and len(str(exc.value)) < 500
    assert not (tmp_path / "RAN").exists()
    run = tmp_path / "run"
    step_dir(run, 5).mkdir(parents=True)
    (step_dir(run, 5) / TRAINER_CKPT).write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="step_000005/trainer.ckpt: not a readable training checkpoint"):
        _check_run_folder(None, run, resume=True)


def test_a_log_in_seconds_converts_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_tracking(_log())
