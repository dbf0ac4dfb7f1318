import json

import numpy as np
import pytest
import smplx
import torch
from conftest import SHARED_DATA

from mage.core import Skeleton
from mage.core.skeleton import SMPL22_JOINT_NAMES


@pytest.mark.shared_data
def test_default_skeleton_reproduces_shared_offsets():
    ref = json.loads((SHARED_DATA / "skeleton" / "smpl22_neutral.json").read_text())
    sk = Skeleton.smpl22()
    assert list(sk.joint_names) == ref["joint_names"]
    assert list(sk.parents) == ref["parents"]
    np.testing.assert_array_equal(sk.offsets, np.asarray(ref["offsets"]))


def test_default_skeleton_is_plausible():
    sk = Skeleton.smpl22()
    rest = sk.rest_positions()
    height = rest[:, 1].max() - rest[:, 1].min()
    assert 1.2 < height < 1.8  # head joint to ankle, neutral SMPL
    assert rest[sk.index("left_wrist"), 0] > 0.5 > -0.5 > rest[sk.index("right_wrist"), 0]
    mm = sk.mirror_map()
    assert mm[sk.index("left_knee")] == sk.index("right_knee") and mm[0] == 0


def _smplx_rest_joints(path, betas=None):
    model = smplx.SMPLH(str(path), gender="male", ext="npz",
                         use_pca=False, flat_hand_mean=True, num_betas=10, dtype=torch.float64)  # smplx keeps 10 of 16
    b = torch.zeros(1, 10, dtype=torch.float64)
    if betas is not None:
        b[0, : len(betas)] = torch.tensor(betas, dtype=torch.float64)
    out = model(betas=b)
    return model, out.joints[0, :22].detach().numpy()


def test_skeleton_from_smplh_file_matches_smplx(smplh_model_file):
    betas = [0.5, -1.0, 2.0]
    for b in (None, betas):
        sk = Skeleton.from_smpl_model(smplh_model_file, betas=b)
        _, joints = _smplx_rest_joints(smplh_model_file, b)
        np.testing.assert_allclose(sk.rest_positions(), joints, atol=1e-6)  # smplx keeps float32 buffers
        assert sk.joint_names == SMPL22_JOINT_NAMES


def test_model_file_errors(tmp_path, smplh_model_file):
    with pytest.raises(FileNotFoundError, match="model.npz"):
        Skeleton.from_smpl_model(tmp_path / "model.npz")
    bad = tmp_path / "bad.npz"
    np.savez(bad, v_template=np.zeros((10, 3)))
    with pytest.raises(ValueError, match="missing key"):
        Skeleton.from_smpl_model(bad)
    with pytest.raises(ValueError, match="betas"):
        Skeleton.from_smpl_model(smplh_model_file, betas=np.zeros(17))


def test_bad_skeleton_and_names():
    sk = Skeleton.smpl22()
    with pytest.raises(ValueError, match="'tail'"):
        sk.index("tail")
    with pytest.raises(ValueError, match="offsets"):
        Skeleton(sk.joint_names, sk.parents, np.zeros((21, 3)))
    with pytest.raises(ValueError, match="parents"):
        Skeleton(sk.joint_names, (0,) + sk.parents[1:], sk.offsets)
    assert Skeleton.from_dict(sk.to_dict()).allclose(sk)
