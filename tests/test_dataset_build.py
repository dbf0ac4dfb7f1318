"""The processed dataset: build from mixed synthetic files, records, reader, reruns."""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA
from test_amass import write_amass_npz

from mage.core.motion import Motion
from mage.core.tracking import Tracking
from mage.data.amass import load_amass
from mage.data.build import build_dataset, choose_test_subjects
from mage.data.dataset import ProcessedDataset, record_to_motion
from mage.data.discover import discover
from mage.data.recipes import compare_trajectories
from mage.data.sequence_ids import normalise_subject, subject_of

QUIET = {"progress": False, "log": lambda s: None}


def random_motion(T: int, fps: float, seed: int) -> Motion:
    g = torch.Generator().manual_seed(seed)
    return Motion.from_axis_angle(torch.randn(T, 22, 3, generator=g) * 0.3,
                                  torch.randn(T, 3, generator=g), fps, name=f"m{seed}")


@pytest.fixture
def source_tree(tmp_path, smplh_model_file) -> Path:
    """Project npz motions of subjects subjA/subjB/subjC, an AMASS file of CMU subject 05,
    its shape.npz, and a corrupt npz."""
    src = tmp_path / "src"
    for rel, T, fps, seed in (("subjA/walk.npz", 150, 60, 1), ("subjA/run.npz", 300, 120, 2),
                              ("subjB/jump.npz", 130, 60, 3), ("subjC/short.npz", 60, 60, 4)):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        random_motion(T, fps, seed).save(src / rel)
    write_amass_npz(src / "CMU/05/05_01_poses.npz", T=280, fps=120, seed=5)
    np.savez(src / "CMU/05/shape.npz", betas=np.zeros(16), gender=np.array("male"))
    (src / "subjB/broken.npz").write_bytes(b"PK\x03\x04 this is not a zip archive")
    return src


def test_build_mixed_sources(tmp_path, source_tree, smplh_model_file):
    out = tmp_path / "ds"
    report = build_dataset([source_tree], out, test_subjects=["subjB"], workers=1,
                           body_model=smplh_model_file, **QUIET)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "mage-dataset-v1" and manifest["fps"] == 60
    assert manifest["splits"] == {"train": ["CMU__05__05_01_poses", "subjA__run", "subjA__walk"],
                                  "test": ["subjB__jump"]}
    seqs = manifest["sequences"]
    assert seqs["subjA__run"] == {"source": str(source_tree / "subjA/run.npz"), "subject": "subjA",
                                  "frames": 149, "file": "sequences/subjA__run.npz", "rig": "smpl22", "licence": ""}
    assert seqs["CMU__05__05_01_poses"]["subject"] == "05"
    assert seqs["CMU__05__05_01_poses"]["frames"] == 139 and seqs["CMU__05__05_01_poses"]["rig"] == "smplh"
    # the corrupt file is a reported failure, the short one dropped, shape.npz skipped
    assert [f["source"] for f in manifest["failures"]] == [str(source_tree / "subjB/broken.npz")]
    assert "broken.npz" in manifest["failures"][0]["reason"]
    assert [d["source"] for d in report["dropped"]] == [str(source_tree / "subjC/short.npz")]
    assert "too short" in report["dropped"][0]["reason"]
    assert [s["source"] for s in report["skipped"]] == [str(source_tree / "CMU/05/shape.npz")]
    assert report["splits"]["test"] == {"sequences": 1, "frames": 129, "minutes": round(129 / 3600, 2),
                                        "subjects": ["subjB"]}
    # no partial or stray files: exactly one record per sequence
    assert sorted(p.name for p in (out / "sequences").iterdir()) == sorted(f"{i}.npz" for i in seqs)
    for name in ("build_report.json", "build_report.md"):
        assert (out / name).is_file()
    assert "| test | 1 | 129 |" in (out / "build_report.md").read_text()

    # record layout, and content against independently reloaded sources
    with np.load(out / "sequences/subjA__run.npz") as f:
        assert str(f["source"]) == str(source_tree / "subjA/run.npz")
        assert json.loads(str(f["skeleton"]))["joint_names"][15] == "head"
    ds = ProcessedDataset(out)
    for id, source_motion in (
        ("subjA__run", Motion.load(source_tree / "subjA/run.npz").resample(60)),
        ("CMU__05__05_01_poses", load_amass(source_tree / "CMU/05/05_01_poses.npz", smplh_model_file)),
    ):
        rec = ds.load(id)
        assert rec.subject == seqs[id]["subject"] and rec.fps == 60.0
        assert torch.allclose(rec.condition, Tracking.from_motion(source_motion).condition(), atol=1e-5)
        assert torch.allclose(rec.positions, source_motion.joint_positions()[1:], atol=1e-5)
        assert torch.allclose(rec.head_transform[:, :3, 3], rec.positions[:, 15], atol=1e-6)
        assert torch.allclose(rec.trans, source_motion.trans[1:])
        back = record_to_motion(rec)
        assert back.skeleton.allclose(source_motion.skeleton)
        assert torch.allclose(back.joint_positions(), rec.positions, atol=1e-5)


def test_shapes_and_dtypes_of_a_record(tmp_path, source_tree, smplh_model_file):
    out = tmp_path / "ds"
    build_dataset([source_tree / "subjB/jump.npz"], out, workers=1, **QUIET)
    with np.load(out / "sequences/jump.npz") as f:
        got = {k: (f[k].dtype.kind, f[k].dtype.itemsize if f[k].dtype.kind == "f" else 0, f[k].shape)
               for k in f.files}
    assert got == {"rot6d": ("f", 4, (129, 22, 6)), "condition": ("f", 4, (129, 54)),
                   "positions": ("f", 4, (129, 22, 3)), "head_transform": ("f", 4, (129, 4, 4)),
                   "trans": ("f", 4, (129, 3)), "fps": ("f", 8, ()), "skeleton": ("U", 0, ()),
                   "source": ("U", 0, ())}


def test_rerun_reuses_records_and_redoes_changed_sources(tmp_path, source_tree, smplh_model_file):
    out = tmp_path / "ds"
    kw = dict(test_subjects=["subjB"], workers=1, body_model=smplh_model_file, **QUIET)
    build_dataset([source_tree], out, **kw)
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "sequences").iterdir()}
    manifest1 = json.loads((out / "manifest.json").read_text())
    report = build_dataset([source_tree], out, **kw)
    assert report["counts"] == {"ok": 0, "reused": 4, "dropped": 1, "skipped": 1, "failed": 1}
    assert {p.name: p.stat().st_mtime_ns for p in (out / "sequences").iterdir()} == stamps
    manifest2 = json.loads((out / "manifest.json").read_text())
    assert manifest2["sequences"] == manifest1["sequences"] and manifest2["splits"] == manifest1["splits"]
    # a changed source is imported again, the others are not
    random_motion(200, 60, 9).save(source_tree / "subjA/walk.npz")
    report = build_dataset([source_tree], out, **kw)
    assert report["counts"]["ok"] == 1 and report["counts"]["reused"] == 3
    assert json.loads((out / "manifest.json").read_text())["sequences"]["subjA__walk"]["frames"] == 199
    # a damaged record is rebuilt
    (out / "sequences/subjB__jump.npz").write_bytes(b"truncated")
    report = build_dataset([source_tree], out, **kw)
    assert report["counts"]["ok"] == 1 and ProcessedDataset(out).load("subjB__jump").num_frames == 129


def test_parallel_build_matches_serial(tmp_path, source_tree, smplh_model_file):
    kw = dict(test_subjects=["subjB"], body_model=smplh_model_file, **QUIET)
    build_dataset([source_tree], tmp_path / "one", workers=1, **kw)
    build_dataset([source_tree], tmp_path / "two", workers=2, **kw)
    m1 = json.loads((tmp_path / "one/manifest.json").read_text())
    m2 = json.loads((tmp_path / "two/manifest.json").read_text())
    assert m1["sequences"] == m2["sequences"] and m1["splits"] == m2["splits"]
    assert m1["failures"] == m2["failures"]
    a = ProcessedDataset(tmp_path / "one").load("CMU__05__05_01_poses")
    b = ProcessedDataset(tmp_path / "two").load("CMU__05__05_01_poses")
    assert torch.equal(a.condition, b.condition) and torch.equal(a.rot6d, b.rot6d)


def test_a_failure_leaves_no_partial_record(tmp_path, source_tree, monkeypatch):
    """A write that dies half-way (here: the disk "fills" inside np.savez) leaves no file."""
    real_savez = np.savez

    def failing_savez(fh, **arrays):
        real_savez(fh, **arrays)
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", failing_savez)
    out = tmp_path / "ds"
    report = build_dataset([source_tree / "subjA"], out, workers=1, **QUIET)
    assert report["counts"]["failed"] == 2
    assert all("No space left" in f["reason"] for f in report["failures"])
    assert list((out / "sequences").iterdir()) == []


def test_dispatch_by_extension_and_subjects_across_formats(tmp_path, monkeypatch):
    """BVH and ASF/AMC go to their importers (stand-ins here); CMU subject 02 in both
    formats lands on the same side."""
    calls = []

    def fake(kind):
        def load(path, *args, rig="auto", **kw):
            calls.append((kind, Path(path).name, rig))
            m = random_motion(240 if kind == "amc" else 130, 120 if kind == "amc" else 60, len(calls))
            m.meta["rig"] = f"fake-{kind}"
            return m
        return load

    monkeypatch.setattr("mage.data.io.load_bvh", fake("bvh"))
    monkeypatch.setattr("mage.data.io.load_asfamc", fake("amc"))
    src = tmp_path / "mocap"
    for rel in ("cmu_asfamc/02/02_01.amc", "cmu_asfamc/02/02.asf", "cmu_cc3_bvh/002/002_01.bvh",
                "cmu_cc3_bvh/007/007_01.bvh", "cmu_asfamc/01/01_01.amc"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text("stand-in")
    out = tmp_path / "ds"
    build_dataset([src], out, test_subjects=["2"], workers=1, rig="cc3", **QUIET)
    assert sorted(calls) == [("amc", "01_01.amc", "cc3"), ("amc", "02_01.amc", "cc3"),
                             ("bvh", "002_01.bvh", "cc3"), ("bvh", "007_01.bvh", "cc3")]
    ds = ProcessedDataset(out)
    assert ds.ids("test") == ["cmu_asfamc__02__02_01", "cmu_cc3_bvh__002__002_01"]
    assert ds.ids("train") == ["cmu_asfamc__01__01_01", "cmu_cc3_bvh__007__007_01"]
    assert ds.info("cmu_asfamc__02__02_01")["rig"] == "fake-amc"
    assert ds.info("cmu_asfamc__02__02_01")["frames"] == 119  # 240 @ 120 -> 120 @ 60, minus 1


def test_subjects_ids_and_default_split():
    assert normalise_subject("002") == "02" and normalise_subject("3") == "03"
    assert normalise_subject("rub001") == "rub001"
    p = Path("x")
    assert subject_of(p, PurePosixPath("cmu_asfamc/02/02_01.amc")) == "02"
    assert subject_of(p, PurePosixPath("cmu_cc3_bvh/002/002_01.bvh")) == "02"
    assert subject_of(p, PurePosixPath("CMU/01/01_01_poses.npz")) == "01"
    assert subject_of(p, PurePosixPath("BMLmovi/Subject_1_F_MoSh/Subject_1_F_1_poses.npz")) \
        == "BMLmovi/Subject_1_F_MoSh"
    subjects = [f"s{i}" for i in range(20)]
    test = choose_test_subjects(subjects)
    assert len(test) == 3 and test == choose_test_subjects(list(reversed(subjects)))
    assert choose_test_subjects(["only"]) == [] and len(choose_test_subjects(["a", "b"])) == 1


def test_discover_disambiguates_ids_and_rejects_bad_sources(tmp_path):
    (tmp_path / "a").mkdir()
    for name in ("x.bvh", "x.npz", "y.amc", "notes.txt", ".hidden.bvh"):
        (tmp_path / "a" / name).write_text("")
    assert [f.id for f in discover([tmp_path / "a"])] == ["x_bvh", "x_npz", "y"]
    with pytest.raises(FileNotFoundError, match="source not found"):
        discover([tmp_path / "missing"])
    with pytest.raises(ValueError, match="supported: .bvh, .amc, .npz"):
        discover([tmp_path / "a" / "notes.txt"])


def test_unknown_test_subject_and_empty_sources_are_errors(tmp_path, source_tree):
    with pytest.raises(ValueError, match="subjA, subjB, subjC"):
        build_dataset([source_tree / "subjA", source_tree / "subjB", source_tree / "subjC"],
                      tmp_path / "o", test_subjects=["subjZ"], workers=1, **QUIET)
    with pytest.raises(ValueError, match="no SOURCE"):
        build_dataset([], tmp_path / "o", workers=1, **QUIET)


def test_reader_errors(tmp_path, source_tree):
    with pytest.raises(FileNotFoundError, match="mage data build"):
        ProcessedDataset(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="mage-dataset-v1"):
        ProcessedDataset(tmp_path)
    out = tmp_path / "ds"
    build_dataset([source_tree / "subjA"], out, workers=1, **QUIET)
    ds = ProcessedDataset(out)
    assert len(ds) == 2 and ds.fps == 60.0
    with pytest.raises(ValueError, match="splits: train, test, all"):
        ds.ids("validation")
    with pytest.raises(ValueError, match="no sequence with id 'nope'"):
        ds.load("nope")


def test_compare_trajectories_undoes_start_pose_and_lag():
    rng = np.random.default_rng(0)
    a = np.cumsum(rng.normal(0, 0.01, (80, 22, 3)), axis=0) + rng.normal(0, 0.3, (1, 22, 3))
    angle = 0.7
    Rz = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    b = a[3:] @ Rz.T + np.array([2.0, -1.0, 0.0])  # b's frame k is a's frame k + 3
    r = compare_trajectories(a, b)
    assert r["lag"] == 3 and r["frames"] == 77
    assert r["head_max_cm"] < 1e-9 and r["wrists_max_cm"] < 1e-9 and r["local_head_mean_cm"] < 1e-9
    assert r["path_ratio"] == pytest.approx(1.0)
    b[:, 15, 2] += 0.03  # the head 3 cm higher everywhere (heights are not aligned)
    r = compare_trajectories(a, b)
    assert r["head_mean_cm"] == pytest.approx(3.0) and r["wrists_mean_cm"] < 1e-9
    assert r["local_head_mean_cm"] == pytest.approx(3.0)
    # the root trajectory 1.5x longer: body-relative distances unaffected
    c = b.copy()
    c[:, :, :2] += (c[:, :1, :2] - c[:1, :1, :2]) * 0.5
    r = compare_trajectories(a, c)
    assert r["path_ratio"] == pytest.approx(1.5) and r["local_wrists_mean_cm"] < 1e-9


@pytest.mark.shared_data
@pytest.mark.slow
def test_cmu_mini_pairs_on_real_data(tmp_path):
    """Part of cmu-mini (ASF/AMC 02_01, 02_03 and their BVH twins): same side of the split,
    the short trial dropped, and the two importers agree on the tracked joints."""
    pytest.importorskip("mage.data.bvh")
    pytest.importorskip("mage.data.asfamc")
    mocap = SHARED_DATA / "mocap"
    src = tmp_path / "mocap"
    for rel in ("cmu_asfamc/02/02.asf", "cmu_asfamc/02/02_01.amc", "cmu_asfamc/02/02_03.amc",
                "cmu_cc3_bvh/002/002_01.bvh", "cmu_cc3_bvh/002/002_03.bvh"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).symlink_to(mocap / rel)
    out = tmp_path / "ds"
    report = build_dataset([src], out, recipe="cmu-mini", workers=1, **QUIET)
    assert report["failures"] == []
    ds = ProcessedDataset(out)
    assert ds.ids("train") == ["cmu_asfamc__02__02_01", "cmu_cc3_bvh__002__002_01"]
    assert len(report["dropped"]) == 2  # 02_03 / 002_03: 1.4 s
    a, b = (ds.info(i)["frames"] for i in ds.ids("train"))
    assert abs(a - b) <= 2  # 343 frames @ 120 vs 171 @ 60
    cf = report["cross_format"]
    assert cf["num_pairs"] == 2 and all(abs(p["lag"]) <= 2 for p in cf["pairs"])
    # measured: head 2.8 cm, wrists 4.8 cm (start-aligned), 3.3 / 4.9 cm body-relative;
    # a wrong axis, unit or rest alignment in either importer gives tens of cm
    assert cf["head_mean_cm"] < 8.0 and cf["wrists_mean_cm"] < 10.0
    assert cf["local_head_mean_cm"] < 8.0 and cf["local_wrists_mean_cm"] < 10.0


def test_amass_without_body_model_fails_before_importing(tmp_path, source_tree):
    with pytest.raises(ValueError, match="05_01_poses.npz: AMASS files need the SMPL-H body model"):
        build_dataset([source_tree], tmp_path / "ds", workers=1, **QUIET)
    assert not (tmp_path / "ds" / "sequences").exists() or not any((tmp_path / "ds" / "sequences").iterdir())


def test_recipe_val_groups_make_a_third_split_that_train_never_sees(tmp_path, source_tree, smplh_model_file):
    from mage.data.recipes import Recipe

    rec = Recipe(name="t", description="", test_subjects=("subjB",), val_subjects=("05",))
    out = tmp_path / "ds"
    report = build_dataset([source_tree], out, recipe=rec, workers=1, body_model=smplh_model_file, **QUIET)
    splits = json.loads((out / "manifest.json").read_text())["splits"]
    assert splits == {"train": ["subjA__run", "subjA__walk"], "val": ["CMU__05__05_01_poses"],
                      "test": ["subjB__jump"]}
    assert report["val_subjects"] == ["05"] and report["splits"]["val"]["sequences"] == 1
    assert "validation subjects: 05" in (out / "build_report.md").read_text()
    assert ProcessedDataset(out).ids("val") == ["CMU__05__05_01_poses"]
    # a group named both test and val (e.g. --split-test overriding the recipe) stays in test
    build_dataset([source_tree], out, recipe=rec, test_subjects=["05"], workers=1,
                  body_model=smplh_model_file, **QUIET)
    splits = json.loads((out / "manifest.json").read_text())["splits"]
    assert splits["val"] == [] and splits["test"] == ["CMU__05__05_01_poses"]
    assert "subjB__jump" in splits["train"]
