"""Shared fixtures. Files of real layouts (SMPL-H model, AMASS npz) are generated here
with random values, so that the real loaders run without licensed data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# The skip reason of tests marked shared_data: what they need, without this machine's path
# (a fresh clone has no such folder; the samples in mage/assets/samples cover the basics).
SHARED_DATA_MISSING = ("needs the shared motion-capture data (a folder shared/data beside the checkout, "
                       "i.e. ../shared/data from the repository root; CI has it, a fresh clone does not)")

# SMPL-H as distributed for AMASS (body_models/smplh/{male,female,neutral}/model.npz).
SMPLH_NUM_VERTS = 6890
SMPLH_NUM_JOINTS = 52
SMPLH_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19]
for wrist in (20, 21):  # 5 fingers x 3 joints per hand, each finger a chain from the wrist
    for _finger in range(5):
        base = len(SMPLH_PARENTS)
        SMPLH_PARENTS += [wrist, base, base + 1]


def pytest_collection_modifyitems(config, items):
    if SHARED_DATA.is_dir():
        return
    skip = pytest.mark.skip(reason=SHARED_DATA_MISSING)
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


def write_fake_smplh(path: Path, seed: int = 0) -> Path:
    """A SMPL-H model.npz with exactly the distributed keys, shapes and dtypes, random
    values: a body-sized template, a sparse positive J_regressor with rows summing to 1."""
    rng = np.random.default_rng(seed)
    V, J = SMPLH_NUM_VERTS, SMPLH_NUM_JOINTS
    v_template = rng.normal(0, 0.3, (V, 3)) + np.array([0.0, 0.0, 0.0])
    v_template[:, 1] *= 2.5  # tall along y, like a body
    J_regressor = np.zeros((J, V))
    for j in range(J):
        idx = rng.choice(V, 12, replace=False)
        w = rng.random(12)
        J_regressor[j, idx] = w / w.sum()
    weights = rng.random((V, J))
    weights /= weights.sum(1, keepdims=True)
    kintree = np.array([SMPLH_PARENTS, list(range(J))], dtype=np.int64)
    kintree[0, 0] = 4294967295  # as in the distributed files (uint32 -1)
    np.savez(
        path,
        v_template=v_template,
        shapedirs=rng.normal(0, 0.01, (V, 3, 16)),
        posedirs=np.zeros((V, 3, 459)),
        J_regressor=J_regressor,
        J_regressor_prior=J_regressor,
        weights=weights,
        weights_prior=weights,
        kintree_table=kintree,
        f=rng.integers(0, V, (13776, 3)).astype(np.uint32),
        J=J_regressor @ v_template,
        hands_componentsl=np.eye(45),
        hands_componentsr=np.eye(45),
        hands_meanl=np.zeros(45),
        hands_meanr=np.zeros(45),
        bs_style=np.array("lbs"),
        bs_type=np.array("lrotmin"),
        gender=np.array("male"),
    )
    return path


@pytest.fixture(scope="session")
def smplh_model_file(tmp_path_factory) -> Path:
    """body_models/smplh/male/model.npz with random values (see write_fake_smplh)."""
    root = tmp_path_factory.mktemp("body_models")
    path = root / "smplh" / "male" / "model.npz"
    path.parent.mkdir(parents=True)
    return write_fake_smplh(path)


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Every test runs with one torch thread. Tests use tiny tensors that gain nothing from
    a second thread, and on a shared 2-core machine two spinning threads per process made
    model tests ~15x slower (2.8 s -> 41 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(0)


def random_rotations(*shape, generator=None, dtype=torch.float64) -> torch.Tensor:
    import roma

    q = torch.randn(*shape, 4, generator=generator, dtype=dtype)
    return roma.unitquat_to_rotmat(q / q.norm(dim=-1, keepdim=True))
