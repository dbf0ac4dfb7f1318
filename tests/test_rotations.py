import numpy as np
import pytest
import torch
from conftest import random_rotations
from scipy.spatial.transform import Rotation

from mage.core import rotations as rot


def test_axis_angle_matches_scipy(rng):
    aa = torch.randn(50, 3, generator=rng, dtype=torch.float64)
    R = rot.axis_angle_to_matrix(aa)
    np.testing.assert_allclose(R.numpy(), Rotation.from_rotvec(aa.numpy()).as_matrix(), atol=1e-10)
    back = rot.matrix_to_axis_angle(R)
    np.testing.assert_allclose(rot.axis_angle_to_matrix(back).numpy(), R.numpy(), atol=1e-10)


def test_quaternion_is_xyzw_like_scipy(rng):
    R = random_rotations(40, generator=rng)
    q = rot.matrix_to_quaternion(R)
    q_ref = Rotation.from_matrix(R.numpy()).as_quat()  # scipy: (x, y, z, w)
    q_ref *= np.sign(q_ref[:, 3:])
    np.testing.assert_allclose(q.numpy(), q_ref, atol=1e-10)
    np.testing.assert_allclose(rot.quaternion_to_matrix(3.0 * q).numpy(), R.numpy(), atol=1e-10)


def test_rot6d_is_first_two_columns_hand_written():
    # A rotation of 90 degrees about z: x -> y, y -> -x.
    R = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    d6 = rot.matrix_to_rot6d(R)
    # columns: c0 = (0, 1, 0), c1 = (-1, 0, 0)  (rows would give (0, -1, 0, 1, 0, 0))
    assert d6.tolist() == [0.0, 1.0, 0.0, -1.0, 0.0, 0.0]
    assert torch.equal(rot.rot6d_to_matrix(d6), R)


def test_rot6d_gram_schmidt_decodes_any_vector_to_rotation(rng):
    d6 = torch.randn(100, 6, generator=rng, dtype=torch.float64)
    R = rot.rot6d_to_matrix(d6)
    eye = torch.eye(3, dtype=torch.float64)
    assert torch.allclose(R.transpose(-1, -2) @ R, eye.expand(100, 3, 3), atol=1e-10)
    assert torch.allclose(torch.linalg.det(R), torch.ones(100, dtype=torch.float64))
    # the first column is the normalised first 3 numbers
    assert torch.allclose(R[:, :, 0], d6[:, :3] / d6[:, :3].norm(dim=-1, keepdim=True))
    R0 = random_rotations(30, generator=rng)
    assert torch.allclose(rot.rot6d_to_matrix(rot.matrix_to_rot6d(R0)), R0, atol=1e-12)


def test_euler_intrinsic_like_scipy(rng):
    ang = torch.rand(20, 3, generator=rng, dtype=torch.float64) * 3
    R = rot.euler_to_matrix(ang, "zyx")
    np.testing.assert_allclose(R.numpy(), Rotation.from_euler("ZYX", ang.numpy()).as_matrix(), atol=1e-10)


def test_slerp_halfway_and_endpoints(rng):
    R0 = random_rotations(10, generator=rng)
    R1 = random_rotations(10, generator=rng)
    w = torch.tensor([0.0, 1.0, 0.5] + [0.25] * 7, dtype=torch.float64)
    Rw = rot.slerp_matrices(R0, R1, w)
    assert torch.allclose(Rw[0], R0[0], atol=1e-9) and torch.allclose(Rw[1], R1[1], atol=1e-9)
    # geodesic: angle(R0, Rw) = w * angle(R0, R1)
    full = rot.geodesic_angle(R0, R1)
    part = rot.geodesic_angle(R0, Rw)
    assert torch.allclose(part[2:], w[2:] * full[2:], atol=1e-8)


def test_bad_input_names_argument():
    with pytest.raises(ValueError, match="axis_angle"):
        rot.axis_angle_to_matrix(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="quaternion"):
        rot.quaternion_to_matrix(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="order"):
        rot.euler_to_matrix(torch.zeros(3), "xqz")
