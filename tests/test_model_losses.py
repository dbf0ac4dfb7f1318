"""The multi-scale loss on known inputs."""

import math

import numpy as np
import pytest
import torch

from mage.core.kinematics import forward_kinematics
from mage.core.multiscale import pool_nodes
from mage.core.rotations import axis_angle_to_matrix, matrix_to_rot6d, rot6d_to_matrix
from mage.core.skeleton import Skeleton
from mage.model import MageConfig
from mage.model.losses import (
    multiscale_loss,
    node_state_loss,
    pooled_targets,
    rotation6d_loss,
)


def test_rotation6d_loss_is_the_mean_per_joint_l2_norm():
    pred, target = torch.zeros(1, 2, 6), torch.zeros(1, 2, 6)
    pred[0, 0, :2] = torch.tensor([3.0, 4.0])  # joint 0 off by 5, joint 1 exact
    assert rotation6d_loss(pred, target).item() == pytest.approx(2.5)


def test_node_state_loss_weights_the_centroid_part():
    pred, target = torch.zeros(1, 1, 9), torch.zeros(1, 1, 9)
    pred[..., 0], pred[..., 6:] = 2.0, torch.tensor([0.0, 0.3, 0.4])  # 6D off by 2, centroid by 0.5 m
    assert node_state_loss(pred, target, 1.0).item() == pytest.approx(2.5)
    assert node_state_loss(pred, target, 0.0).item() == pytest.approx(2.0)


def test_pooled_targets_are_pool_nodes_of_the_ground_truth_fk():
    cfg = MageConfig.preset("ablation-s0")
    g = torch.Generator().manual_seed(0)
    R = axis_angle_to_matrix(0.5 * torch.randn(2, 3, 22, 3, generator=g))
    x0 = matrix_to_rot6d(R)
    targets, _ = pooled_targets(x0, cfg.scales, cfg.hierarchy(), Skeleton.smpl22())
    ref = forward_kinematics(R, None, Skeleton.smpl22())
    assert set(targets) == {"S0", "S1", "S2"}
    for scale, n in (("S0", 1), ("S1", 6), ("S2", 11)):
        assert targets[scale].shape == (2, 3, n, 9)
        torch.testing.assert_close(targets[scale], pool_nodes(ref.global_rotations, ref.positions, scale))
    # S0's single node: pelvis orientation, centroid of all joints relative to the pelvis
    torch.testing.assert_close(targets["S0"][..., 0, :6], x0[..., 0, :])


def test_perfect_predictions_give_zero_loss_and_errors_are_weighted():
    cfg = MageConfig.preset("mage-paper").with_overrides(velocity_weight=2.0)
    hierarchy, skeleton = cfg.hierarchy(), Skeleton.smpl22()
    x0 = matrix_to_rot6d(axis_angle_to_matrix(0.3 * torch.randn(2, 4, 22, 3)))
    targets, _ = pooled_targets(x0, cfg.scales, hierarchy, skeleton)
    perfect = {**targets, "S3": x0}
    out = multiscale_loss(perfect, x0, cfg, hierarchy, skeleton)
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-5)
    assert set(out) == {"loss", "S1", "S2", "S3", "fk_position", "velocity"}
    # rotate the whole body by 90 degrees about z: rotation and position terms all react
    turned = x0.clone()
    turned[..., 0, :] = matrix_to_rot6d(axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2])))
    wrong = {**targets, "S1": targets["S1"] + 0.1, "S3": turned}
    out = multiscale_loss(wrong, x0, cfg, hierarchy, skeleton)
    expected = (cfg.stage_loss_weights["S1"] * out["S1"] + cfg.stage_loss_weights["S3"] * out["S3"]
                + cfg.fk_position_weight * out["fk_position"] + 2.0 * out["velocity"])
    torch.testing.assert_close(out["loss"], expected)
    assert out["S1"].item() == pytest.approx(0.1 * math.sqrt(6) + 0.1 * math.sqrt(3), rel=1e-5)
    assert out["S2"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["S3"] > 0 and out["fk_position"] > 0.05


def test_acceleration_term_is_the_second_difference_error_of_fk_positions():
    """L_acc against a numpy reference: mean over batch, frames t = 1..N-2 and joints of
    ||(p[t+1] - 2 p[t] + p[t-1]) - (g[t+1] - 2 g[t] + g[t-1])||."""
    cfg = MageConfig.preset("mage-paper").with_overrides(acceleration_weight=3.0)
    hierarchy, skeleton = cfg.hierarchy(), Skeleton.smpl22()
    torch.manual_seed(0)
    x0 = matrix_to_rot6d(axis_angle_to_matrix(0.3 * torch.randn(2, 5, 22, 3)))
    pred = matrix_to_rot6d(axis_angle_to_matrix(0.3 * torch.randn(2, 5, 22, 3)))
    targets, _ = pooled_targets(x0, cfg.scales, hierarchy, skeleton)
    out = multiscale_loss({**targets, "S3": pred}, x0, cfg, hierarchy, skeleton)
    p = forward_kinematics(rot6d_to_matrix(pred), None, skeleton).positions.numpy()
    g = forward_kinematics(rot6d_to_matrix(x0), None, skeleton).positions.numpy()
    second = lambda q: q[:, 2:] - 2 * q[:, 1:-1] + q[:, :-2]  # noqa: E731
    expected = np.linalg.norm(second(p) - second(g), axis=-1).mean()
    assert out["acceleration"].item() == pytest.approx(expected, rel=1e-5)
    assert "velocity" not in out
    weighted = sum(cfg.stage_loss_weights[s] * out[s] for s in cfg.scales)
    weighted = weighted + cfg.fk_position_weight * out["fk_position"] + 3.0 * out["acceleration"]
    torch.testing.assert_close(out["loss"], weighted)
    # A pose error that is the same in every frame has no acceleration error.
    x0_still = x0[:, :1].expand(2, 5, 22, 6).clone()
    constant = x0_still.clone()
    constant[..., 0, :] = matrix_to_rot6d(axis_angle_to_matrix(torch.tensor([0.0, 0.0, 0.4])))
    targets, _ = pooled_targets(x0_still, cfg.scales, hierarchy, skeleton)
    out = multiscale_loss({**targets, "S3": constant}, x0_still, cfg, hierarchy, skeleton)
    assert out["fk_position"] > 0.01 and out["acceleration"].item() == pytest.approx(0.0, abs=1e-6)
