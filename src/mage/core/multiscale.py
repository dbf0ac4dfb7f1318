"""Multi-scale body representation for MAGE: 22 joints -> 11 nodes -> 6 nodes (-> 1).

The groupings are a configuration (``ScaleHierarchy``), validated to be nested partitions
of the 22 joints. The pooling of a 22-joint pose to a coarse node is fixed and documented
here (our decision, the paper does not publish one):

    node state (9 numbers) = [ 6D of the world rotation of the node's PROXIMAL joint
                               (the group member whose parent lies outside the group),
                               centroid of the group's joint positions MINUS the pelvis
                               position (world axes, metres) ]

So a node carries the orientation of the body part's root bone and where the part is
relative to the body, while the absolute placement comes from the tracking condition.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mage.core import rotations as rot
from mage.core.checks import check_shape
from mage.core.constants import (  # noqa: F401 (NODE_DIM re-exported)
    NODE_DIM,
    S0_GROUPS,
    S1_GROUPS,
    S2_GROUPS,
    S3_GROUPS,
    Groups,
)
from mage.core.skeleton import SMPL22_PARENTS


@dataclass(frozen=True)
class ScaleHierarchy:
    """Node groupings per scale, coarse to fine. Scale names: S0 (1), S1 (6), S2 (11), S3 (22)."""

    groups: dict[str, Groups] = field(default_factory=lambda: {
        "S0": S0_GROUPS, "S1": S1_GROUPS, "S2": S2_GROUPS, "S3": S3_GROUPS,
    })
    parents: tuple[int, ...] = SMPL22_PARENTS

    def __post_init__(self):
        J = len(self.parents)
        previous = None
        for name, groups in self.groups.items():
            flat = sorted(j for g in groups for j in g)
            if flat != list(range(J)):
                raise ValueError(f"groups[{name!r}]: must partition joints 0..{J - 1} exactly once")
            for g in groups:
                self.proximal_joint(g, name)
            if previous is not None:
                prev_name, prev_groups = previous
                for g in groups:
                    if not any(set(g) <= set(c) for c in prev_groups):
                        raise ValueError(
                            f"groups[{name!r}]: group {list(g)} is not inside one group of {prev_name!r} "
                            "(scales must be nested, coarse to fine)"
                        )
            previous = (name, groups)

    def num_nodes(self, scale: str) -> int:
        return len(self.groups_of(scale))

    def groups_of(self, scale: str) -> Groups:
        if scale not in self.groups:
            raise ValueError(f"scale: unknown {scale!r}; known: {', '.join(self.groups)}")
        return self.groups[scale]

    def proximal_joint(self, group, scale: str = "?") -> int:
        roots = [j for j in group if self.parents[j] not in group]
        if len(roots) != 1:
            raise ValueError(
                f"groups[{scale!r}]: group {list(group)} must be a connected chain with one "
                f"proximal joint, found {roots}"
            )
        return roots[0]


def pool_nodes(
    global_rotations: torch.Tensor,
    positions: torch.Tensor,
    scale: str,
    hierarchy: ScaleHierarchy | None = None,
) -> torch.Tensor:
    """Pool a 22-joint pose to the nodes of ``scale``.

    global_rotations: (..., J, 3, 3); positions: (..., J, 3) world
    returns: (..., N, 9) = [6D of proximal joint's world rotation, centroid - pelvis]
    """
    hierarchy = hierarchy or ScaleHierarchy()
    J = len(hierarchy.parents)
    check_shape(global_rotations, "global_rotations", (J, 3, 3))
    check_shape(positions, "positions", (J, 3))
    groups = hierarchy.groups_of(scale)
    proximal = [hierarchy.proximal_joint(g, scale) for g in groups]
    # Centroids as one matrix product: (N, J) averaging weights.
    weights = positions.new_zeros(len(groups), J)
    for n, g in enumerate(groups):
        weights[n, list(g)] = 1.0 / len(g)
    centroids = torch.einsum("nj,...jc->...nc", weights, positions)
    rel = centroids - positions[..., :1, :]
    return torch.cat([rot.matrix_to_rot6d(global_rotations[..., proximal, :, :]), rel], dim=-1)
