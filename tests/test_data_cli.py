"""``mage data`` commands and the format dispatch of ``mage.data.io``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_amass import write_amass_npz

from mage.cli.main import main
from mage.core.motion import Motion
from mage.core.skeleton import Skeleton
from mage.data.amass import NotAMotionFile
from mage.data.io import detect_format, load_motion, save_motion


def test_load_motion_dispatches_npz_by_content(tmp_path, smplh_model_file):
    m = Motion.rest(5, fps=30.0)
    m.save(tmp_path / "mine.npz")
    write_amass_npz(tmp_path / "am.npz", T=8, fps=120)
    np.savez(tmp_path / "shape.npz", betas=np.zeros(16), gender=np.array("male"))
    assert detect_format(tmp_path / "mine.npz") == "mage"
    assert detect_format(tmp_path / "am.npz") == "amass"
    assert load_motion(tmp_path / "mine.npz").fps == 30.0
    am = load_motion(tmp_path / "am.npz", body_model=smplh_model_file)
    assert am.num_frames == 8 and am.fps == 120.0  # the file's own rate: no stride here
    with pytest.raises(NotAMotionFile):
        load_motion(tmp_path / "shape.npz", body_model=smplh_model_file)
    (tmp_path / "m.fbx").write_text("")
    with pytest.raises(ValueError, match=r"supported: \.bvh, \.amc, \.npz"):
        load_motion(tmp_path / "m.fbx")
    with pytest.raises(ValueError, match="format 'amass' writes .npz"):
        save_motion(m, tmp_path / "x.bvh", format="amass")


def test_import_and_info(tmp_path, smplh_model_file, capsys):
    write_amass_npz(tmp_path / "am.npz", T=8, fps=120)
    assert main(["data", "import", str(tmp_path / "am.npz"), "-o", str(tmp_path / "out"),
                 "--body-model", str(smplh_model_file)]) == 0
    m = Motion.load(tmp_path / "out" / "am.npz")
    ref = load_motion(tmp_path / "am.npz", body_model=smplh_model_file)
    assert m.num_frames == 8 and torch.allclose(m.joint_positions(), ref.joint_positions(), atol=1e-5)

    # info: height = head z - lowest foot z of frame 0; for the upright rest pose of the
    # default skeleton that is the y extent between those joints in the body frame
    Motion.rest(90, fps=30.0).save(tmp_path / "rest.npz")
    capsys.readouterr()
    assert main(["data", "info", str(tmp_path / "rest.npz")]) == 0
    text = capsys.readouterr().out
    rest = Skeleton.smpl22().rest_positions()
    height = rest[15, 1] - min(rest[10, 1], rest[11, 1])
    assert f"height: {height:.3f} m" in text
    assert "frames: 90" in text and "fps: 30" in text and "duration: 3.00 s" in text
    assert "rig: smpl22" in text


def test_export_amass_then_back(tmp_path, smplh_model_file, capsys):
    sk = Skeleton.from_smpl_model(smplh_model_file)
    g = torch.Generator().manual_seed(3)
    m = Motion.from_axis_angle(torch.randn(6, 22, 3, generator=g) * 0.3, torch.randn(6, 3, generator=g),
                               60.0, sk)
    m.save(tmp_path / "m.npz")
    assert main(["data", "export", str(tmp_path / "m.npz"), "-o", str(tmp_path / "a.npz"),
                 "--format", "amass"]) == 0
    with np.load(tmp_path / "a.npz") as f:
        assert f["poses"].shape == (6, 156)
    back = load_motion(tmp_path / "a.npz", body_model=smplh_model_file)
    assert torch.allclose(back.joint_positions(), m.joint_positions(), atol=1e-5)


def test_user_errors_exit_2_with_one_line(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("")
    assert main(["data", "info", str(tmp_path / "x.txt")]) == 2
    assert "unsupported file type '.txt'" in capsys.readouterr().err
    assert main(["data", "build", str(tmp_path), "-o", str(tmp_path / "o"), "--recipe", "nope"]) == 2
    assert "recipes: cmu-mini" in capsys.readouterr().err
    assert main(["data", "import", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"),
                 "-o", str(tmp_path / "one.npz")]) == 2


def test_build_command(tmp_path, capsys):
    src = tmp_path / "src"
    for subject, seed in (("s1", 1), ("s2", 2), ("s3", 3)):
        (src / subject).mkdir(parents=True)
        g = torch.Generator().manual_seed(seed)
        Motion.from_axis_angle(torch.randn(130, 22, 3, generator=g) * 0.2, torch.zeros(130, 3),
                               60.0).save(src / subject / "t.npz")
    out = tmp_path / "ds"
    rc = main(["data", "build", str(src), "-o", str(out), "--split-test", "s2,s3",
               "--workers", "1", "--no-progress"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["splits"] == {"train": ["s1__t"], "test": ["s2__t", "s3__t"]}
    printed = capsys.readouterr().out
    assert "test :    2 sequences,     258 frames" in printed
    assert main(["data", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "train: 1 clips, 129 frames, 0.00 h" in info
    assert "licence unknown: train 0.00 h, test 0.00 h" in info  # no recipe: no licence known


def test_recipe_source_resolves_from_cwd_or_repository(tmp_path, monkeypatch):
    from pathlib import Path

    from mage.data.recipes import Recipe, get_recipe

    monkeypatch.chdir(tmp_path)
    (tmp_path / "here").mkdir()
    assert Recipe("r", "d", default_source="here").resolve_source() == Path("here")
    repo = Path(__file__).resolve().parents[1]
    assert Recipe("r", "d", default_source="tests").resolve_source() == repo / "tests"
    with pytest.raises(FileNotFoundError, match="--source"):
        Recipe("r", "d", default_source="no/such/folder").resolve_source()
    assert get_recipe("cmu-mini").test_subjects == ("03", "06", "07")


def test_recipe_without_its_source_says_what_to_get_in_one_line(tmp_path, monkeypatch, capsys):
    """Issue #28: `mage data build --recipe` on a fresh install (no ../shared) named only a
    machine path, twice. Now: one line, each place looked in once, the data the recipe
    needs, where to get it, the layout, and how to point at it."""
    import dataclasses
    from pathlib import Path

    from mage.data import recipes

    repo = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(repo)  # "../x" from here and from the repository are one place
    monkeypatch.setenv(recipes.DATA_CACHE_ENV, str(tmp_path / "cache"))
    missing = dataclasses.replace(recipes.RECIPES["cmu-mini"], default_source="../no-such-shared/data/mocap")
    monkeypatch.setitem(recipes.RECIPES, "cmu-mini", missing)
    assert main(["data", "build", "--recipe", "cmu-mini", "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mage: error: recipe 'cmu-mini': source folder mocap not found")
    assert err.count("no-such-shared") == 1 and str(tmp_path / "cache" / "mocap") in err
    for text in ("mocap.cs.cmu.edu", "cmu_asfamc/NN/NN.asf + NN_TT.amc", "$MAGE_DATA_CACHE/mocap", "--source DIR"):
        assert text in err, text

    # a data-cache source of a multi-source recipe: the archive's layout, no --source
    rec = recipes.Recipe("t", "", sources=(recipes.PERMISSIVE_SOURCES[1],))
    with pytest.raises(FileNotFoundError) as exc:
        rec.resolve_sources()
    message = str(exc.value)
    assert "hdm05_cut_asfamc/" in message and "$MAGE_DATA_CACHE/cmu_hdm05" in message
    assert "--source" not in message and "\n" not in message


def test_build_amass_protocol1_follows_the_published_lists(tmp_path, smplh_model_file, capsys):
    # An AMASS root with the real folder layout; the lists split subject 01 across train and
    # test, so a subject-based split could not produce this manifest.
    root = tmp_path / "AMASS"
    for rel, seed in (("CMU/01/01_01_poses.npz", 1), ("CMU/01/01_02_poses.npz", 2),
                      ("BioMotionLab_NTroje/rub001/0001_walk_poses.npz", 3)):
        write_amass_npz(root / rel, T=300, fps=120.0, seed=seed)
    np.savez(root / "CMU" / "01" / "shape.npz", betas=np.zeros(16), gender=np.array("male"))
    lists = tmp_path / "data_split"
    lists.mkdir()
    (lists / "train.txt").write_text("CMU/01/01_01_poses.npz\r\nBMLrub/rub001/0001_walk_poses.npz\r\n")
    (lists / "test.txt").write_text("# test\nCMU/01/01_02_poses.npz\n")
    out = tmp_path / "ds"
    rc = main(["data", "build", str(root), "-o", str(out), "--body-model", str(smplh_model_file),
               "--amass-protocol", "1", "--train-list", str(lists / "train.txt"),
               "--test-list", str(lists / "test.txt"), "--workers", "1", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    sources = {split: sorted(manifest["sequences"][i]["source"].split("AMASS/")[1] for i in ids)
               for split, ids in manifest["splits"].items()}
    assert sources == {"train": ["BioMotionLab_NTroje/rub001/0001_walk_poses.npz", "CMU/01/01_01_poses.npz"],
                       "test": ["CMU/01/01_02_poses.npz"]}
    # 120 Hz -> 60 Hz by stride, minus frame 0: 149 rows
    assert all(s["frames"] == 149 for s in manifest["sequences"].values())


def test_build_amass_protocol_errors(tmp_path, smplh_model_file, capsys):
    root = tmp_path / "AMASS"
    write_amass_npz(root / "CMU/01/01_01_poses.npz", T=200, fps=60.0)
    (tmp_path / "l.txt").write_text("CMU/01/01_09_poses.npz\n")
    base = ["data", "build", str(root), "-o", str(tmp_path / "ds"), "--body-model", str(smplh_model_file)]
    assert main(base + ["--amass-protocol", "1"]) == 2
    assert "--train-list" in capsys.readouterr().err
    assert main(base + ["--amass-protocol", "1", "--train-list", str(tmp_path / "l.txt"),
                        "--test-list", str(tmp_path / "l.txt")]) == 2
    assert "01_09_poses.npz" in capsys.readouterr().err  # the missing file is named
    assert main(base + ["--amass-protocol", "2"]) == 2
    assert "HumanEva" in capsys.readouterr().err  # missing protocol-2 subsets are named
