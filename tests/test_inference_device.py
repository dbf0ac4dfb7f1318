import math

import numpy as np
import pytest
import torch
from conftest import random_rotations

from mage.core import Motion
from mage.core import rotations as rot
from mage.inference.device import VIEW_TO_SMPL_HEAD, DeviceConfig, Offset, basis, default_offsets

IDENTITY_Q = np.array([0.0, 0.0, 0.0, 1.0])


def _frame(positions, quats):
    return np.asarray(positions, dtype=np.float64), np.asarray(quats, dtype=np.float64)


def test_positions_hand_computed():
    # 1.7 m up and 2 m forward in each convention -> z-up: height 1.7 on z, forward +y.
    P_xr = np.array([[0.0, 1.7, -2.0], [0.3, 1.0, 0.0], [-0.3, 1.0, 0.0]])  # OpenXR: -z forward
    P_un = np.array([[0.0, 1.7, 2.0], [0.3, 1.0, 0.0], [-0.3, 1.0, 0.0]])  # Unity: +z forward
    Q = np.tile(IDENTITY_Q, (3, 1))
    for convention, P in (("openxr", P_xr), ("unity", P_un)):
        cfg = DeviceConfig(convention, {"head": Offset()})
        _, p = cfg.to_joints(P, Q)
        assert np.allclose(p[0].numpy(), [0.0, 2.0, 1.7])
        assert np.allclose(p[1].numpy(), [0.3, 0.0, 1.0])
    assert np.isclose(np.linalg.det(basis("openxr")), 1) and np.isclose(np.linalg.det(basis("unity")), -1)


@pytest.mark.parametrize("theta", [0.3, -1.2, 2.5])
def test_yaw_rotation_maps_to_z_rotation(theta):
    # A rotation by theta about the up axis (y): OpenXR (right-handed) turns
    # counter-clockwise seen from above -> Rz(theta); Unity (left-handed) turns clockwise
    # -> Rz(-theta). Both must come out as proper rotations.
    q = np.array([0.0, math.sin(theta / 2), 0.0, math.cos(theta / 2)])
    Q = np.stack([q, IDENTITY_Q, IDENTITY_Q])
    for convention, sign in (("openxr", 1.0), ("unity", -1.0)):
        R, _ = DeviceConfig(convention, {"head": Offset()}).to_joints(np.zeros((3, 3)), Q)
        expect = rot.rotation_about_axis(sign * theta, "z").double()
        assert torch.allclose(R[0], expect, atol=1e-12)
        assert torch.isclose(torch.linalg.det(R[0]), torch.tensor(1.0, dtype=torch.float64))


def test_unity_reflection_gives_proper_rotations():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(50, 3, 4, generator=g, dtype=torch.float64)
    R, _ = DeviceConfig("unity").to_joints(np.zeros((50, 3, 3)), q.numpy())
    det = torch.linalg.det(R)
    assert torch.allclose(det, torch.ones_like(det), atol=1e-9)
    assert torch.allclose(R.transpose(-1, -2) @ R, torch.eye(3, dtype=torch.float64).expand_as(R), atol=1e-9)


@pytest.mark.parametrize("convention", ["openxr", "unity"])
def test_default_head_offset_matches_an_upright_smpl_body(convention):
    # A headset at identity orientation (looking forward, level) must give the head
    # joint of an upright SMPL body: the rest pose turned to face the same way (+y).
    standing = Motion.rest(1).rotate_about_vertical(math.pi)
    head_R = standing.global_rotations()[0, 15].double()
    assert torch.allclose(head_R[:, 2], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64), atol=1e-6)  # faces +y
    R, _ = DeviceConfig(convention).to_joints(np.zeros((3, 3)), np.tile(IDENTITY_Q, (3, 1)))
    assert torch.allclose(R[0], head_R, atol=1e-6)
    assert np.allclose(VIEW_TO_SMPL_HEAD, head_R.numpy(), atol=1e-6)
    assert default_offsets("zup")["head"] == Offset()  # project data: device = joint


def test_offset_translation_is_in_the_device_frame():
    # Device at p, turned 90 deg about z; an offset of 0.1 m along the device's x axis
    # lands at p + 0.1 * (0, 1, 0) in the world.
    q90 = np.array([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
    P = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    Q = np.stack([q90, IDENTITY_Q, IDENTITY_Q])
    off = Offset.parse("0,0,0,1;0.1,0,0")
    _, p = DeviceConfig("zup", {"head": off}).to_joints(P, Q)
    assert np.allclose(p[0].numpy(), [1.0, 2.1, 3.0])
    assert np.allclose(p[1:].numpy(), P[1:])
    # A rotation offset composes on the right: R_joint = R_device @ R_offset.
    off_r = Offset.from_matrix(rot.rotation_about_axis(0.5, "x").double())
    R2, _ = DeviceConfig("zup", {"left": off_r}).to_joints(P, Q)
    assert torch.allclose(R2[1], rot.rotation_about_axis(0.5, "x").double(), atol=1e-12)


@pytest.mark.parametrize("convention", ["zup", "openxr", "unity"])
def test_round_trip_joints_devices_joints(convention):
    g = torch.Generator().manual_seed(3)
    R = random_rotations(20, 3, generator=g)
    p = torch.randn(20, 3, 3, generator=g, dtype=torch.float64)
    cfg = DeviceConfig(convention, {"left": Offset((0.1, 0.2, 0.3, 0.9), (0.0, -0.05, 0.1)),
                               "right": Offset.parse("0.3,-0.1,0.2,0.9;0.02,0.0,-0.08")})
    P_dev, Q_dev = cfg.to_devices(R, p)
    R2, p2 = cfg.to_joints(P_dev.numpy(), Q_dev.numpy())
    assert torch.allclose(R2, R, atol=1e-10) and torch.allclose(p2, p, atol=1e-10)


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="zup, openxr, unity"):
        DeviceConfig("yup")
    with pytest.raises(ValueError, match="unknown device"):
        DeviceConfig("zup", {"hip": Offset()})
    with pytest.raises(ValueError, match="qx,qy,qz,qw"):
        Offset.parse("1,2,3")
    with pytest.raises(ValueError, match="non-zero quaternion"):
        Offset((0, 0, 0, 0))
    with pytest.raises(ValueError, match="quaternions"):
        DeviceConfig().to_joints(np.zeros((3, 3)), np.zeros((3, 3)))


def test_convention_is_the_field_and_frame_its_former_name():
    cfg = DeviceConfig(convention="openxr")
    assert cfg.convention == cfg.frame == "openxr"
    assert cfg == DeviceConfig("openxr")
