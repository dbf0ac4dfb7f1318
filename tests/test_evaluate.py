"""The evaluation runner, placement, baselines, reports and the ``mage eval`` command,
on tiny made-up data sets (duck-typed in memory, or written to disk)."""

import csv
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import random_rotations

from mage.core.kinematics import forward_kinematics
from mage.core.rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix, rotation_about_axis
from mage.core.skeleton import SMPL22_JOINT_NAMES, SMPL22_PARENTS, Skeleton
from mage.core.tracking import TRACKED_JOINTS, sparse_condition
from mage.evaluate import baselines, metrics, protocol, report


# --- a tiny data set -----------------------------------------------------------------
def make_record(sid, local_rotations, trans, skeleton, fps=60.0, skeleton_as_json=False):
    """A record as ProcessedDataset.load returns it, from T+1 frames of motion (frame 0
    only provides the velocities of the condition)."""
    fk = forward_kinematics(local_rotations, trans, skeleton)
    idx = list(TRACKED_JOINTS)
    cond = sparse_condition(fk.global_rotations[:, idx], fk.positions[:, idx])  # (T, 54)
    head = torch.eye(4, dtype=trans.dtype).repeat(cond.shape[0], 1, 1)
    head[:, :3, :3] = fk.global_rotations[1:, 15]
    head[:, :3, 3] = fk.positions[1:, 15]
    return SimpleNamespace(
        id=sid, source="fake", subject="s1", fps=fps,
        rot6d=matrix_to_rot6d(local_rotations[1:]).float(),
        condition=cond.float(), positions=fk.positions[1:].float(), head_transform=head.float(),
        trans=trans[1:].float(),
        skeleton=json.dumps(skeleton.to_dict()) if skeleton_as_json else skeleton,
    )


def random_record(sid, T, seed, skeleton=None):
    g = torch.Generator().manual_seed(seed)
    skeleton = skeleton or Skeleton.smpl22()
    # small random local rotations around an upright rest pose
    aa = 0.3 * torch.randn(T + 1, 22, 3, generator=g, dtype=torch.float64)
    R = axis_angle_to_matrix(aa)
    R[:, 0] = rotation_about_axis(math.pi / 2, "x").double() @ R[:, 0]
    trans = torch.cumsum(0.01 * torch.randn(T + 1, 3, generator=g, dtype=torch.float64), 0)
    return make_record(sid, R, trans, skeleton, skeleton_as_json=seed % 2 == 0)


class FakeDataset:
    def __init__(self, splits: dict, records: dict, fps=60.0, root="/fake/root"):
        self.splits, self.records, self.fps, self.root = splits, records, fps, root

    def ids(self, split):
        if split not in self.splits:
            raise ValueError(f"unknown split {split!r}")
        return list(self.splits[split])

    def load(self, sid):
        return self.records[sid]


def random_dataset():
    recs = {"a": random_record("a", 6, 0), "b": random_record("b", 11, 1), "c": random_record("c", 8, 2)}
    return FakeDataset({"train": ["c"], "test": ["a", "b"]}, recs)


def gt_predictor(dataset):
    """Predicts the ground truth of whichever record has this condition."""
    def predict(cond, head):
        for rec in dataset.records.values():
            if rec.condition.shape == cond.shape and torch.equal(rec.condition, cond):
                return rot6d_to_matrix(rec.rot6d.double())
        raise AssertionError("unknown condition")
    return predict


# --- placement and the runner ---------------------------------------------------------
def test_head_error_after_placement_is_zero():
    rec = random_record("a", 7, 3)
    pred = random_rotations(7, 22, generator=torch.Generator().manual_seed(1))
    head = protocol.record_head_positions(rec)
    placed = protocol.place_prediction(pred, head, protocol.record_skeleton(rec))
    assert placed.shape == (7, 22, 3)
    assert torch.allclose(placed[:, 15], head.double(), atol=1e-12, rtol=0)
    gt = rec.positions.double()
    assert metrics.position_error(placed, gt, (15,)) < 1e-5  # float32 records


def test_placement_hand_computed_through_the_runner():
    # Skeleton whose joints all sit at the origin except the head, 1 m up (+y), and the
    # left wrist, 1 m along +x. GT: identity everywhere, standing still.
    offsets = np.zeros((22, 3))
    offsets[15] = [0.0, 1.0, 0.0]
    offsets[20] = [1.0, 0.0, 0.0]
    sk = Skeleton(SMPL22_JOINT_NAMES, SMPL22_PARENTS, offsets)
    T = 4
    rec = make_record("r", torch.eye(3, dtype=torch.float64).repeat(T + 1, 22, 1, 1),
                      torch.zeros(T + 1, 3, dtype=torch.float64), sk)
    ds = FakeDataset({"test": ["r"]}, {"r": rec})

    # Prediction: root turned 180 deg about x. FK: head at (0, -1, 0), left wrist at
    # (1, 0, 0), every other joint at 0. Placement adds (0, 2, 0) (head -> (0, 1, 0)):
    # every joint but the head is 2 m = 200 cm off (the wrist at (1, 2, 0) vs (1, 0, 0)).
    def predict(cond, head):
        R = torch.eye(3, dtype=torch.float64).repeat(cond.shape[0], 22, 1, 1)
        R[:, 0] = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))
        return R

    res = protocol.evaluate(predict, ds, "test", method="flip", progress=False)
    m = res.metrics
    assert m["mpjpe"] == pytest.approx(21 * 200 / 22)  # 190.9 cm: all but the head
    assert m["h_pe"] == pytest.approx(200.0)
    assert m["u_pe"] == pytest.approx(12 * 200 / 13)  # the head is one of 13 upper joints
    assert m["l_pe"] == pytest.approx(200.0) and m["root_pe"] == pytest.approx(200.0)
    assert m["mpjre"] == 0.0 and m["mpjve"] == 0.0 and m["jitter"] == 0.0  # root excluded, still
    assert res.num_sequences == 1 and res.num_frames == T


def test_evaluate_perfect_predictor_and_aggregation():
    ds = random_dataset()
    res = protocol.evaluate(gt_predictor(ds), ds, "test", method="oracle", progress=False)
    assert [s.id for s in res.sequences] == ["a", "b"]
    assert [s.frames for s in res.sequences] == [6, 11]
    assert res.num_frames == 17 and res.dataset_root == "/fake/root"
    for key in ("mpjre", "mpjre_geodesic", "mpjpe", "mpjve", "h_pe", "root_pe"):
        assert res.metrics[key] < 1e-2, key  # float32 records: tiny, not 0
    for s in res.sequences:
        assert s.metrics["jitter"] == pytest.approx(s.metrics["gt_jitter"], rel=1e-3)
    # the mean is over sequences, unweighted (a has 6 frames, b 11)
    a, b = (s.metrics["gt_jitter"] for s in res.sequences)
    assert res.metrics["gt_jitter"] == pytest.approx((a + b) / 2)
    assert res.machine["cpu"] and res.machine["device"] == "cpu"


def test_evaluate_rejects_bad_predictions_and_empty_splits():
    ds = random_dataset()
    with pytest.raises(ValueError, match=r"expected local rotation matrices \(6, 22, 3, 3\)"):
        protocol.evaluate(lambda c, h: torch.zeros(c.shape[0], 22, 6), ds, progress=False)
    ds.splits["empty"] = []
    with pytest.raises(ValueError, match="no sequences"):
        protocol.evaluate(gt_predictor(ds), ds, "empty", progress=False)


def test_combine_seeds_mean_and_sample_std():
    ds = random_dataset()
    runs = []
    for seed, offset in ((0, 0.01), (1, 0.03)):  # MPJPE about 1 cm and 3 cm more than exact
        base = gt_predictor(ds)

        def predict(c, h, base=base, offset=offset):
            R = base(c, h).clone()
            R[:, 0] = rotation_about_axis(offset, "z").double() @ R[:, 0]
            return R
        runs.append(protocol.evaluate(predict, ds, method="m", seed=seed, progress=False))
    res = protocol.combine_seeds(runs)
    x, y = runs[0].metrics["mpjpe"], runs[1].metrics["mpjpe"]
    assert res.metrics["mpjpe"] == pytest.approx((x + y) / 2)
    # sample std of two values: |x - y| / sqrt(2)
    assert res.spread["mpjpe"] == pytest.approx(abs(x - y) / math.sqrt(2))
    assert res.seeds == [0, 1] and len(res.sequences) == 4 and res.num_sequences == 2


# --- baselines -----------------------------------------------------------------------
def test_copy_tracked_faces_the_head_heading():
    # head = upright rest orientation turned 30 deg about the world z axis
    up = rotation_about_axis(math.pi / 2, "x").double()
    head_R = rotation_about_axis(math.radians(30), "z").double() @ up
    cond = torch.zeros(3, 54, dtype=torch.float64)
    cond[:, 0:6] = matrix_to_rot6d(head_R)
    R = baselines.copy_tracked()(cond, torch.zeros(3, 3))
    assert R.shape == (3, 22, 3, 3)
    assert torch.allclose(R[:, 0], head_R.expand(3, 3, 3), atol=1e-6)  # root = Rz(30) Rx(90)
    assert torch.allclose(R[:, 1:], torch.eye(3, dtype=torch.float64).expand(3, 21, 3, 3))


def test_mean_pose_is_the_chordal_mean():
    # Two training sequences: the left hip (1) turned +0.2 rad about z in one, -0.2 in the
    # other (mean: identity); the right hip (2) always 0.5 about x (mean: itself). The root
    # is upright facing a varying heading with a straight spine, so the head has the root's
    # orientation and the root in the head's heading frame is the canonical upright root.
    sk = Skeleton.smpl22()
    recs = {}
    for sid, angle in (("p", 0.2), ("q", -0.2)):
        R = torch.eye(3, dtype=torch.float64).repeat(6, 22, 1, 1)
        R[:, 0] = rotation_about_axis(torch.linspace(0, 2, 6), "z").double() @ rotation_about_axis(math.pi / 2, "x").double()
        R[:, 1] = rotation_about_axis(angle, "z").double()
        R[:, 2] = rotation_about_axis(0.5, "x").double()
        recs[sid] = make_record(sid, R, torch.zeros(6, 3, dtype=torch.float64), sk)
    ds = FakeDataset({"train": ["p", "q"], "test": []}, recs)
    mean = baselines.fit_mean_pose(ds, "train", progress=False)
    assert torch.allclose(mean[1], torch.eye(3, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(mean[2], rotation_about_axis(0.5, "x").double(), atol=1e-5)
    assert torch.allclose(mean[0], baselines.upright_canonical_root(), atol=1e-5)
    with pytest.raises(ValueError, match="no sequences"):
        baselines.fit_mean_pose(ds, "test", progress=False)
    # several splits joined by "+": the frames of both (p alone gives its own hip angle)
    split = FakeDataset({"train": ["p"], "val": ["q"], "test": []}, recs)
    assert torch.allclose(baselines.fit_mean_pose(split, "train", progress=False)[1],
                          rotation_about_axis(0.2, "z").double(), atol=1e-5)
    assert torch.allclose(baselines.fit_mean_pose(split, "train+val", progress=False), mean, atol=1e-9)
    with pytest.raises(ValueError, match="mean-pose, copy-tracked"):
        baselines.make_baseline("nope", ds)


def test_baselines_run_through_the_runner():
    ds = random_dataset()
    for name in baselines.BASELINES:
        res = protocol.evaluate(baselines.make_baseline(name, ds, progress=False), ds,
                                method=name, progress=False)
        assert all(math.isfinite(v) for v in res.metrics.values())
        assert res.metrics["mpjpe"] > 1.0  # a fixed pose is far from random motion


# --- reports -------------------------------------------------------------------------
def test_report_files_and_columns(tmp_path):
    ds = random_dataset()
    runs = [protocol.evaluate(baselines.copy_tracked(), ds, method="copy", seed=s,
                              settings={"checkpoint": "x", "steps": 5}, progress=False) for s in (0, 1)]
    res = protocol.combine_seeds(runs)
    paths = report.write_report(res, tmp_path / "rep")
    assert {p.name for p in (tmp_path / "rep").iterdir()} == {"metrics.json", "report.md", "per_sequence.csv"}

    with open(paths["csv"], newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["seed", "id", "source", "subject", "frames",
                       "mpjre_deg", "mpjre_geodesic_deg", "mpjpe_cm", "mpjve_cm_per_s",
                       "jitter_1e2_m_per_s3", "gt_jitter_1e2_m_per_s3",
                       "h_pe_cm", "u_pe_cm", "l_pe_cm", "root_pe_cm",
                       "stride_cm", "gt_stride_cm", "stride_ratio", "foot_sliding_cm_per_s",
                       "gt_foot_sliding_cm_per_s", "floating_cm", "penetration_cm"]
    assert [r[:2] for r in rows[1:]] == [["0", "a"], ["0", "b"], ["1", "a"], ["1", "b"]]
    assert float(rows[1][7]) == pytest.approx(res.sequences[0].metrics["mpjpe"])

    data = json.loads(paths["json"].read_text())
    assert data["format"] == "mage-eval-v1"
    assert data["num_sequences"] == 2 and data["num_frames"] == 17 and data["seeds"] == [0, 1]
    assert data["split"] == "test" and data["dataset_root"] == "/fake/root"
    assert data["units"]["mpjve"] == "cm/s" and data["units"]["jitter"] == "10^2 m/s^3"
    assert data["settings"]["steps"] == 5 and "cpu" in data["machine"]
    assert set(data["metrics"]) == set(metrics.METRIC_KEYS) == set(data["spread"])

    md = paths["markdown"].read_text()
    for head in ("MPJRE (deg)", "MPJPE (cm)", "MPJVE (cm/s)", "Jitter (10^2 m/s^3)", "H-PE (cm)"):
        assert head in md
    assert " ± " in md and "| sequences | 2 |" in md


def test_comparison_table():
    ds = random_dataset()
    results = [protocol.evaluate(baselines.make_baseline(n, ds, progress=False), ds, method=n,
                                 progress=False) for n in baselines.BASELINES]
    table = report.comparison_table(results, metrics=["mpjpe", "jitter"])
    lines = table.strip().splitlines()
    assert lines[0] == "| Method | MPJPE (cm) | Jitter (10^2 m/s^3) |"
    assert lines[2].startswith("| mean-pose | ") and lines[3].startswith("| copy-tracked | ")
    assert f"{results[0].metrics['mpjpe']:.2f}" in lines[2]
    with pytest.raises(ValueError, match="unknown metric"):
        report.comparison_table(results, metrics=["mpjpee"])


# --- the command -----------------------------------------------------------------------
def write_disk_dataset(root, records, splits, fps=60):
    """The processed data set layout: manifest.json + sequences/<id>.npz."""
    (root / "sequences").mkdir(parents=True)
    seqs = {}
    for rec in records:
        np.savez(root / "sequences" / f"{rec.id}.npz",
                 rot6d=rec.rot6d.numpy(), condition=rec.condition.numpy(),
                 positions=rec.positions.numpy(), head_transform=rec.head_transform.numpy(),
                 trans=rec.trans.numpy(), fps=np.array(float(fps)),
                 skeleton=np.array(json.dumps(Skeleton.smpl22().to_dict())),
                 id=np.array(rec.id), source=np.array(rec.source), subject=np.array(rec.subject))
        seqs[rec.id] = {"file": f"sequences/{rec.id}.npz", "frames": int(rec.rot6d.shape[0]),
                        "source": rec.source, "subject": rec.subject}
    manifest = {"format": "mage-dataset-v1", "fps": fps, "splits": splits, "sequences": seqs}
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_cli_eval_baseline_end_to_end(tmp_path, capsys):
    pytest.importorskip("mage.data.dataset", reason="mage.data.dataset (ProcessedDataset) not written yet")
    from mage.cli.main import main

    recs = [random_record(i, 6 + k, k) for k, i in enumerate(("s0", "s1", "s2"))]
    write_disk_dataset(tmp_path / "ds", recs, {"train": ["s0"], "test": ["s1", "s2"]})
    out = tmp_path / "report"
    rc = main(["eval", "--baseline", "mean-pose", "--data", str(tmp_path / "ds"), "--split", "test",
               "--out", str(out)])
    assert rc == 0
    assert "| baseline:mean-pose |" in capsys.readouterr().out
    data = json.loads((out / "metrics.json").read_text())
    assert data["num_sequences"] == 2 and data["num_frames"] == 7 + 8
    assert data["method"] == "baseline:mean-pose"


def test_cli_eval_user_errors(tmp_path, capsys):
    from mage.cli.main import main

    assert main(["eval", "--baseline", "copy-tracked", "--data", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "r")]) == 2
    assert "no such folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # --ckpt and --baseline exclude each other
        main(["eval", "--ckpt", "x", "--baseline", "mean-pose", "--data", ".", "--out", "r"])
    assert exc.value.code == 2
    assert main(["eval", "--ckpt", "x", "--data", str(tmp_path), "--out", "r", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err


def test_cli_eval_checkpoint_with_seeds(tmp_path, monkeypatch, capsys):
    # A real (tiny, untrained) checkpoint saved as a finished training run (RUN/final); the
    # sequence predictor is replaced by one that predicts the rest pose plus seed-dependent
    # noise on the left hip, so that the seed plumbing and the spread can be checked.
    import mage.inference.sequence as sequence
    from mage.cli.main import main
    from mage.model import MageConfig, MageModel
    from mage.model.checkpoint import save_checkpoint

    calls = []

    def predict_sequence(model, cond, options):
        calls.append((options.mode, options.steps, options.seed, options.consistency))
        R = torch.eye(3).repeat(cond.shape[0], 22, 1, 1)
        R[:, 1] = rotation_about_axis(0.1 * (options.seed + 1), "z")
        return matrix_to_rot6d(R)  # (T, 22, 6)

    monkeypatch.setattr(sequence, "predict_sequence", predict_sequence)
    tiny = MageConfig.preset("mage-small").with_overrides(width=16, window=8)
    save_checkpoint(MageModel(tiny), tmp_path / "runs" / "x" / "final")
    monkeypatch.chdir(tmp_path)

    recs = [random_record(i, 6, k) for k, i in enumerate(("s0", "s1"))]
    write_disk_dataset(tmp_path / "ds", recs, {"train": ["s0"], "test": ["s1"]})
    rc = main(["eval", "--ckpt", "runs/x", "--data", str(tmp_path / "ds"), "--out", str(tmp_path / "r"),
               "--mode", "online", "--steps", "3", "--seeds", "0", "1", "--consistency", "0.4"])
    assert rc == 0, capsys.readouterr().err
    assert calls == [("online", 3, 0, 0.4), ("online", 3, 1, 0.4)]
    data = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert data["settings"]["consistency"] == 0.4  # the report says which lambda
    assert data["seeds"] == [0, 1] and data["settings"]["checkpoint"] == "runs/x"
    assert data["settings"]["mode"] == "online" and data["settings"]["steps"] == 3
    a, b = (m["mpjre"] for m in data["per_seed"])
    assert a != b and data["spread"]["mpjre"] == pytest.approx(abs(a - b) / math.sqrt(2))
    assert " ± " in (tmp_path / "r" / "report.md").read_text()
