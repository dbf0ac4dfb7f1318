"""A tiny MAGE overfits one batch of smooth motion on CPU (a few seconds)."""

import torch

from mage.core.kinematics import forward_kinematics
from mage.core.rotations import axis_angle_to_matrix, matrix_to_rot6d
from mage.core.skeleton import Skeleton
from mage.core.tracking import TRACKED_JOINTS, sparse_condition
from mage.model import MageConfig, MageModel, MagePipeline


def smooth_motion_batch(batch: int, frames: int, seed: int = 0):
    """x0 (B, N, 22, 6) of per-joint sinusoidal motion and its 54-dim condition."""
    g = torch.Generator().manual_seed(seed)
    base = 0.4 * torch.randn(batch, 1, 22, 3, generator=g)
    amp = 0.3 * torch.randn(batch, 1, 22, 3, generator=g)
    phase = 6.28 * torch.rand(batch, 1, 22, 3, generator=g)
    time = torch.arange(frames + 1.0)[None, :, None, None] / 30
    R = axis_angle_to_matrix(base + amp * torch.sin(2 * time + phase))  # (B, N+1, 22, 3, 3)
    fk = forward_kinematics(R, torch.zeros(batch, frames + 1, 3), Skeleton.smpl22())
    idx = list(TRACKED_JOINTS)
    cond = sparse_condition(fk.global_rotations[:, :, idx], fk.positions[:, :, idx])
    return matrix_to_rot6d(R[:, 1:]), cond


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(0)
    cfg = MageConfig(window=16, width=64, depth={"S1": 1, "S2": 1, "S3": 1})
    model = MageModel(cfg)
    x0, cond = smooth_motion_batch(4, cfg.window)
    pipeline = MagePipeline.from_model(model)
    g = torch.Generator().manual_seed(1)
    before = (pipeline.sample(cond, noise=torch.randn(x0.shape, generator=g)) - x0).norm(dim=-1).mean()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(300):
        loss = pipeline.training_loss({"x0": x0, "cond": cond}, generator=g)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-10:]) / 10
    assert first / last >= 10, (first, last)
    # and sampling (4 DDIM steps from pure noise) now lands near the memorised motion
    model.eval()
    after = (pipeline.sample(cond, noise=torch.randn(x0.shape, generator=g)) - x0).norm(dim=-1).mean()
    assert after < before / 5, (before.item(), after.item())
