"""Training losses of MAGE: each stage against the ground truth pooled to its scale.

    loss = sum_k w_k * L_k  +  w_pos * L_fkpos  +  w_vel * L_vel  +  w_acc * L_acc

- Final stage (S3, 22 joints): AGRoL's rotation loss, the mean over joints (and frames,
  batch) of the L2 norm of each joint's 6D error.
- Coarse stage k (S0/S1/S2): node states [6D, centroid] against ``pool_nodes`` of the
  ground truth's forward kinematics; per node, ||6D error|| + node_position_weight *
  ||centroid error|| (metres), averaged over nodes. FK uses zero translation: node
  centroids are pelvis-relative, so the root translation never matters.
- L_fkpos: mean joint position error (metres) of FK of the final prediction;
  L_vel: mean error of the frame-to-frame joint displacement (metres per frame);
  L_acc: mean error of its second difference, p[t+1] - 2 p[t] + p[t-1] (metres per
  frame^2), the discrete acceleration that the jitter metric differentiates once more.
"""

from __future__ import annotations

import torch

from mage.core.kinematics import FKOutput, forward_kinematics
from mage.core.multiscale import ScaleHierarchy, pool_nodes
from mage.core.rotations import rot6d_to_matrix
from mage.core.skeleton import Skeleton
from mage.model.config import MageConfig


def rotation6d_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over all leading dims of the L2 norm of the 6D error. (..., J, 6) -> ()."""
    return (pred - target).norm(dim=-1).mean()


def node_state_loss(pred: torch.Tensor, target: torch.Tensor, position_weight: float) -> torch.Tensor:
    """Coarse node states (..., n, 9): ||6D error|| + w * ||centroid error||, mean. -> ()."""
    rot = (pred[..., :6] - target[..., :6]).norm(dim=-1)
    pos = (pred[..., 6:] - target[..., 6:]).norm(dim=-1)
    return (rot + position_weight * pos).mean()


def fk_of_6d(x: torch.Tensor, skeleton: Skeleton) -> FKOutput:
    """FK with zero translation of local 6D rotations (..., 22, 6)."""
    return forward_kinematics(rot6d_to_matrix(x), None, skeleton)


def pooled_targets(x0: torch.Tensor, scales: tuple[str, ...], hierarchy: ScaleHierarchy,
                   skeleton: Skeleton) -> tuple[dict[str, torch.Tensor], FKOutput]:
    """Ground truth at each coarse scale. x0: (B, N, 22, 6) local 6D rotations.

    returns ({scale: (B, N, n, 9)} for the scales other than S3, FK of x0).
    """
    fk = fk_of_6d(x0, skeleton)
    targets = {s: pool_nodes(fk.global_rotations, fk.positions, s, hierarchy)
               for s in scales if s != "S3"}
    return targets, fk


def multiscale_loss(
    predictions: dict[str, torch.Tensor],
    x0: torch.Tensor,
    cfg: MageConfig,
    hierarchy: ScaleHierarchy,
    skeleton: Skeleton,
) -> dict[str, torch.Tensor]:
    """The weighted MAGE loss.

    predictions: {scale: (B, N, n, 9)} for coarse scales and {"S3": (B, N, 22, 6)}.
    x0: (B, N, 22, 6) ground truth.
    returns {"loss": total (with grad), "S1": ..., "S3": ..., "fk_position": ...,
    "velocity": ..., "acceleration": ...}: the unweighted terms, detached (for logging).
    """
    targets, fk_gt = pooled_targets(x0, cfg.scales, hierarchy, skeleton)
    terms: dict[str, torch.Tensor] = {}
    total = x0.new_zeros(())
    for scale in cfg.scales:
        if scale == "S3":
            term = rotation6d_loss(predictions["S3"], x0)
        else:
            term = node_state_loss(predictions[scale], targets[scale], cfg.node_position_weight)
        terms[scale] = term
        total = total + cfg.stage_loss_weights[scale] * term
    if cfg.fk_position_weight > 0 or cfg.velocity_weight > 0 or cfg.acceleration_weight > 0:
        pos = fk_of_6d(predictions["S3"], skeleton).positions  # (B, N, 22, 3)
        if cfg.fk_position_weight > 0:
            terms["fk_position"] = (pos - fk_gt.positions).norm(dim=-1).mean()
            total = total + cfg.fk_position_weight * terms["fk_position"]
        if cfg.velocity_weight > 0:
            vel, vel_gt = pos.diff(dim=1), fk_gt.positions.diff(dim=1)
            terms["velocity"] = (vel - vel_gt).norm(dim=-1).mean()
            total = total + cfg.velocity_weight * terms["velocity"]
        if cfg.acceleration_weight > 0:
            acc, acc_gt = pos.diff(n=2, dim=1), fk_gt.positions.diff(n=2, dim=1)
            terms["acceleration"] = (acc - acc_gt).norm(dim=-1).mean()
            total = total + cfg.acceleration_weight * terms["acceleration"]
    out = {"loss": total}
    out.update({k: v.detach() for k, v in terms.items()})
    return out
