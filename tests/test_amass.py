"""AMASS npz loading/saving against smplx, the protocol stride, split lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_fake_smplh

from mage.core.motion import Motion
from mage.core.skeleton import Skeleton
from mage.data.amass import (
    NotAMotionFile,
    load_amass,
    read_split_list,
    resolve_body_model,
    resolve_protocol2,
    resolve_split_list,
    save_amass,
)


def write_amass_npz(path: Path, T: int, fps: float, seed: int = 0, gender: str = "male",
                    betas=None) -> dict:
    """An AMASS SMPL-H motion file with the real keys, shapes and dtypes; returns arrays."""
    rng = np.random.default_rng(seed)
    arrays = {
        "trans": np.cumsum(rng.normal(0, 0.01, (T, 3)), 0) + np.array([0.0, 0.0, 1.0]),  # a walk
        "gender": np.array(gender),
        "mocap_framerate": np.array(float(fps)),
        "betas": rng.normal(0, 1, 16) if betas is None else np.asarray(betas, dtype=np.float64),
        "dmpls": rng.normal(0, 1, (T, 8)),
        "poses": rng.normal(0, 0.4, (T, 156)),  # hands non-zero: must not move the body
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return arrays


def smplx_joints(model_file: Path, poses: np.ndarray, trans: np.ndarray, betas=None) -> torch.Tensor:
    """Reference: the first 22 joints smplx computes for AMASS poses."""
    import smplx

    num_betas = 10 if betas is None else len(betas)
    model = smplx.SMPLH(model_path=str(model_file), ext="npz", use_pca=False,
                        flat_hand_mean=True, num_betas=num_betas)
    p = torch.as_tensor(poses, dtype=torch.float32)
    T = p.shape[0]
    b = torch.zeros(T, num_betas) if betas is None else torch.as_tensor(
        np.asarray(betas), dtype=torch.float32).expand(T, -1)
    with torch.no_grad():
        out = model(global_orient=p[:, :3], body_pose=p[:, 3:66], left_hand_pose=p[:, 66:111],
                    right_hand_pose=p[:, 111:156], transl=torch.as_tensor(trans, dtype=torch.float32),
                    betas=b)
    return out.joints[:, :22]


def test_load_amass_matches_smplx_and_strides_120_to_60(tmp_path, smplh_model_file):
    src = write_amass_npz(tmp_path / "CMU" / "01" / "01_01_poses.npz", T=11, fps=120)
    m = load_amass(tmp_path / "CMU" / "01" / "01_01_poses.npz", smplh_model_file)
    assert m.fps == 60.0 and m.num_frames == 6  # frames 0, 2, ..., 10
    ref = smplx_joints(smplh_model_file, src["poses"][::2], src["trans"][::2])
    assert (m.joint_positions() - ref).abs().max() < 1e-5
    assert torch.allclose(m.trans, torch.as_tensor(src["trans"][::2], dtype=torch.float32))
    assert m.meta["rig"] == "smplh" and m.meta["stride"] == 2 and m.meta["gender"] == "male"
    # the body model may also be given as the folder holding {male,...}/model.npz
    m2 = load_amass(tmp_path / "CMU" / "01" / "01_01_poses.npz", smplh_model_file.parents[1])
    assert torch.equal(m2.joint_positions(), m.joint_positions())


def test_load_amass_protocol_default_ignores_gender_and_betas(tmp_path, smplh_model_file):
    write_amass_npz(tmp_path / "f.npz", T=3, fps=60, gender="female")
    m = load_amass(tmp_path / "f.npz", smplh_model_file)
    assert m.skeleton.allclose(Skeleton.from_smpl_model(smplh_model_file))  # male, zero betas
    assert m.num_frames == 3 and m.meta["stride"] == 1


def test_load_amass_real_shape_uses_gender_model_and_betas(tmp_path, smplh_model_file):
    root = tmp_path / "smplh"
    (root / "female").mkdir(parents=True)
    female = write_fake_smplh(root / "female" / "model.npz", seed=7)
    (root / "male").mkdir()
    write_fake_smplh(root / "male" / "model.npz", seed=0)
    # smplx's SMPLH uses at most 10 shape coefficients: the last 6 of AMASS's 16 are zero here
    betas = np.r_[np.linspace(-2, 2, 10), np.zeros(6)]
    src = write_amass_npz(tmp_path / "s.npz", T=4, fps=60, gender="female", betas=betas)
    m = load_amass(tmp_path / "s.npz", root, use_real_shape=True)
    assert m.meta["gender"] == "female"
    ref = smplx_joints(female, src["poses"], src["trans"], betas=betas[:10])
    assert (m.joint_positions() - ref).abs().max() < 1e-5


def test_load_amass_100hz_protocol_stride_and_exact_option(tmp_path, smplh_model_file):
    write_amass_npz(tmp_path / "k.npz", T=11, fps=100)
    m = load_amass(tmp_path / "k.npz", smplh_model_file)
    # protocol: stride round(100 / 60) = 2, labelled 60 Hz; the true rate is kept in meta
    assert m.num_frames == 6 and m.fps == 60.0 and m.meta["true_fps"] == 50.0
    exact = load_amass(tmp_path / "k.npz", smplh_model_file, protocol_stride=False)
    assert exact.fps == 60.0 and exact.num_frames == 7  # 0.1 s at 60 Hz -> 7 samples


def test_shape_npz_is_not_a_motion(tmp_path, smplh_model_file):
    np.savez(tmp_path / "shape.npz", betas=np.zeros(16), gender=np.array("male"))
    with pytest.raises(NotAMotionFile, match="mocap_framerate"):
        load_amass(tmp_path / "shape.npz", smplh_model_file)


@pytest.mark.parametrize("field, value, match", [
    ("poses", np.zeros((5, 72)), r"'poses' has shape \(5, 72\)"),
    ("trans", np.full((5, 3), np.nan), "'trans' contains NaN"),
    ("trans", np.zeros((4, 3)), r"'trans' has shape \(4, 3\), expected \(5, 3\)"),
    ("mocap_framerate", np.array(-1.0), "'mocap_framerate' must be a plausible frame rate"),
    ("mocap_framerate", np.array(1e300), "'mocap_framerate' must be a plausible frame rate"),
    ("mocap_framerate", np.array(1e-300), "'mocap_framerate' must be a plausible frame rate"),
    ("trans", np.full((5, 3), 1e12), r"'trans': positions up to 1e\+12 m"),
    ("trans", np.arange(15.0).reshape(5, 3) * 10, "'trans': the root moves"),
])
def test_malformed_amass_names_file_and_field(tmp_path, smplh_model_file, field, value, match):
    arrays = write_amass_npz(tmp_path / "bad.npz", T=5, fps=60)
    arrays[field] = value
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=match) as exc:
        load_amass(tmp_path / "bad.npz", smplh_model_file)
    assert "bad.npz" in str(exc.value)


def test_missing_body_model_is_a_clear_error(tmp_path):
    write_amass_npz(tmp_path / "a.npz", T=3, fps=60)
    with pytest.raises(ValueError, match="--body-model"):
        load_amass(tmp_path / "a.npz", None)
    with pytest.raises(FileNotFoundError, match="female"):
        resolve_body_model(tmp_path, "female")


def test_save_amass_round_trip_and_smplx_consumes_it(tmp_path, smplh_model_file, rng):
    sk = Skeleton.from_smpl_model(smplh_model_file)
    poses = torch.randn(7, 22, 3, generator=rng) * 0.4
    trans = torch.randn(7, 3, generator=rng) * 0.02
    motion = Motion.from_axis_angle(poses, trans, 60.0, sk)
    save_amass(motion, tmp_path / "out.npz")
    with np.load(tmp_path / "out.npz") as f:
        assert f["poses"].shape == (7, 156) and f["poses"].dtype == np.float64
        assert not f["poses"][:, 66:].any()
        assert f["betas"].shape == (16,) and float(f["mocap_framerate"]) == 60.0
        assert str(f["gender"]) == "male" and f["dmpls"].shape == (7, 8)
        ref = smplx_joints(smplh_model_file, f["poses"], f["trans"])
    assert (motion.joint_positions() - ref).abs().max() < 1e-5
    back = load_amass(tmp_path / "out.npz", smplh_model_file, target_fps=None)
    assert (back.rotations - motion.rotations).abs().max() < 1e-5
    assert torch.allclose(back.trans, motion.trans, atol=1e-6)


def test_save_amass_with_body_model_keeps_the_pelvis_in_place(tmp_path, smplh_model_file, rng):
    motion = Motion.from_axis_angle(torch.randn(3, 22, 3, generator=rng) * 0.3,
                                    torch.randn(3, 3, generator=rng), 30.0)  # offsets[0] = 0
    save_amass(motion, tmp_path / "o.npz", body_model=smplh_model_file)
    back = load_amass(tmp_path / "o.npz", smplh_model_file, target_fps=None)
    assert torch.allclose(back.joint_positions()[:, 0], motion.joint_positions()[:, 0], atol=1e-5)


def test_save_amass_refuses_other_skeletons(tmp_path):
    sk = Skeleton(("a", "b"), (-1, 0), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="SMPL 22-joint"):
        save_amass(Motion.rest(2, skeleton=sk), tmp_path / "x.npz")


def test_read_split_list_tolerates_comments_blank_lines_and_crlf(tmp_path):
    p = tmp_path / "test_split.txt"
    p.write_bytes(b"# AvatarPoser test split\r\nCMU/01/01_01_poses.npz\r\n\r\n"
                  b"./BioMotionLab_NTroje\\rub001\\0000_treadmill_norm_poses.npz  # comment\r\n")
    assert read_split_list(p) == ["CMU/01/01_01_poses.npz",
                                  "BioMotionLab_NTroje/rub001/0000_treadmill_norm_poses.npz"]
    p.write_text("CMU/01/01_01_poses.npz\nCMU/01/readme.txt\n")
    with pytest.raises(ValueError, match="line 2"):
        read_split_list(p)


def test_split_list_and_protocol2_resolve_subset_aliases(tmp_path):
    root = tmp_path / "amass"
    for rel in ("BioMotionLab_NTroje/rub001/0000_a_poses.npz", "BioMotionLab_NTroje/rub001/shape.npz",
                "CMU/01/01_01_poses.npz", "HumanEva/S1/Box_1_poses.npz",
                "Transitions/mazen/jump_poses.npz"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"")
    files = resolve_split_list(["BMLrub/rub001/0000_a_poses.npz", "CMU/01/01_01_poses.npz"], root)
    assert files == [root / "BioMotionLab_NTroje/rub001/0000_a_poses.npz", root / "CMU/01/01_01_poses.npz"]
    with pytest.raises(FileNotFoundError, match="1 file"):
        resolve_split_list(["CMU/02/02_01_poses.npz"], root)
    with pytest.raises(FileNotFoundError, match="ACCAD"):
        resolve_protocol2(root)
    p2 = resolve_protocol2(root, strict=False)
    assert p2["train"] == [root / "BioMotionLab_NTroje/rub001/0000_a_poses.npz", root / "CMU/01/01_01_poses.npz"]
    assert p2["test"] == [root / "HumanEva/S1/Box_1_poses.npz", root / "Transitions/mazen/jump_poses.npz"]
