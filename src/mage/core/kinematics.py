"""Batched forward kinematics (torch; runs wherever its inputs live, CPU or GPU)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mage.core.checks import check_shape
from mage.core.constants import HEAD_JOINT
from mage.core.skeleton import Skeleton


@dataclass
class FKOutput:
    global_rotations: torch.Tensor  # (..., J, 3, 3) joint-to-world rotations
    positions: torch.Tensor  # (..., J, 3) world joint positions, metres


def forward_kinematics(
    local_rotations: torch.Tensor,
    trans: torch.Tensor | None,
    skeleton: Skeleton,
) -> FKOutput:
    """Global rotations and positions from local rotations and root translation.

    local_rotations: (..., J, 3, 3); joint 0's rotation is the root's global orientation.
    trans: (..., 3) or None (zero). Follows SMPL: pelvis = trans + offsets[0];
    child = parent_pos + R_global[parent] @ offsets[child];
    R_global[j] = R_global[parent(j)] @ R_local[j].
    """
    J = skeleton.num_joints
    check_shape(local_rotations, "local_rotations", (J, 3, 3))
    batch = local_rotations.shape[:-3]
    if trans is None:
        trans = local_rotations.new_zeros(*batch, 3)
    check_shape(trans, "trans", (3,))
    if trans.shape[:-1] != batch:
        raise ValueError(
            f"trans: batch shape {tuple(trans.shape[:-1])} does not match "
            f"local_rotations' {tuple(batch)}"
        )
    offsets = torch.tensor(skeleton.offsets, dtype=local_rotations.dtype,
                              device=local_rotations.device)
    rots: list[torch.Tensor] = [local_rotations[..., 0, :, :]]
    pos: list[torch.Tensor] = [trans + offsets[0]]
    # A Python loop over the 22 joints: the tree is tiny and the batch does the work.
    for j in range(1, J):
        p = skeleton.parents[j]
        rots.append(rots[p] @ local_rotations[..., j, :, :])
        pos.append(pos[p] + (rots[p] @ offsets[j].unsqueeze(-1)).squeeze(-1))
    return FKOutput(torch.stack(rots, dim=-3), torch.stack(pos, dim=-2))


def local_from_global(global_rotations: torch.Tensor, parents: tuple[int, ...]) -> torch.Tensor:
    """Inverse of the rotation part of FK: R_local[j] = R_global[parent]^T @ R_global[j]."""
    check_shape(global_rotations, "global_rotations", (len(parents), 3, 3))
    local = global_rotations.clone()
    for j, p in enumerate(parents):
        if p >= 0:
            local[..., j, :, :] = global_rotations[..., p, :, :].transpose(-1, -2) @ global_rotations[..., j, :, :]
    return local


def place_by_head(
    local_rotations: torch.Tensor, head_positions: torch.Tensor, skeleton: Skeleton,
    head_joint: int = HEAD_JOINT,
) -> tuple[FKOutput, torch.Tensor]:
    """Place a predicted pose in the world the way the community protocol does.

    FK of the predicted local rotations with zero translation, then translate the whole
    body so that its head lands on the tracked head position (so the head error is 0).

    local_rotations: (..., J, 3, 3); head_positions: (..., 3) tracked head, world.
    returns: (FK output in the world, trans (..., 3) that achieves it).
    """
    check_shape(head_positions, "head_positions", (3,))
    fk0 = forward_kinematics(local_rotations, None, skeleton)
    trans = head_positions - fk0.positions[..., head_joint, :]
    return FKOutput(fk0.global_rotations, fk0.positions + trans.unsqueeze(-2)), trans


def jerk(positions: torch.Tensor, fps: float) -> torch.Tensor:
    """Third finite difference in time times fps^3 (m/s^3 for metres): (T, ...) -> (T-3, ...).

    j[t] = (p[t+3] - 3 p[t+2] + 3 p[t+1] - p[t]) * fps^3, the protocol's jitter before
    the norm and the means (mage.evaluate.metrics.jitter).
    """
    p = positions
    return (p[3:] - 3 * p[2:-1] + 3 * p[1:-2] - p[:-3]) * fps**3
