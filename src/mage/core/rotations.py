"""Rotation conversions, on top of ``roma``.

Conventions (the project's, everywhere):
- rotation matrices act on column vectors: ``v_world = R @ v_local``;
- quaternions are (x, y, z, w), as in roma and scipy;
- axis-angle is the rotation vector (axis * angle, radians), as in SMPL / AMASS;
- 6D is the community convention of AvatarPoser / AGRoL: the FIRST TWO COLUMNS of the
  matrix, flattened column after column: (r00, r10, r20, r01, r11, r21). PyTorch3D's
  ``matrix_to_rotation_6d`` takes rows instead; never mix the two.
"""

from __future__ import annotations

import roma
import torch

from mage.core.checks import check_shape


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors -> (..., 3, 3) matrices."""
    check_shape(aa, "axis_angle", (3,))
    return roma.rotvec_to_rotmat(aa)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 3) rotation vectors with angle in [0, pi]."""
    check_shape(R, "matrix", (3, 3))
    return roma.rotmat_to_rotvec(R)


def quaternion_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) quaternions (x, y, z, w), normalised here -> (..., 3, 3)."""
    check_shape(q, "quaternion", (4,))
    norm = q.norm(dim=-1, keepdim=True)
    if (norm < 1e-8).any():
        raise ValueError("quaternion: contains a zero-length quaternion")
    return roma.unitquat_to_rotmat(q / norm)


def matrix_to_quaternion(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 4) unit quaternions (x, y, z, w) with w >= 0."""
    check_shape(R, "matrix", (3, 3))
    q = roma.rotmat_to_unitquat(R)
    return torch.where(q[..., 3:] < 0, -q, q)


def matrix_to_rot6d(R: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, (r00, r10, r20, r01, r11, r21)."""
    check_shape(R, "matrix", (3, 3))
    return torch.cat([R[..., :, 0], R[..., :, 1]], dim=-1)


def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt on the two columns; 3rd column = cross product.

    Any 6D vector whose two halves are not parallel decodes to a proper rotation, which is
    why networks output 6D.
    """
    check_shape(d6, "rot6d", (6,))
    cols = torch.stack([d6[..., 0:3], d6[..., 3:6]], dim=-1)  # (..., 3, 2)
    return roma.special_gramschmidt(cols)


def normalize_rot6d(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 6): the 6D of the rotation that Gram-Schmidt makes of ``d6``
    (a valid 6D: two orthonormal columns). The projection every sampler output gets."""
    return matrix_to_rot6d(rot6d_to_matrix(d6))


def euler_to_matrix(angles: torch.Tensor, order: str, degrees: bool = False) -> torch.Tensor:
    """Intrinsic Euler angles -> matrices, R = R_order[0] @ R_order[1] @ R_order[2].

    ``order`` is three letters from 'xyz' in the order the rotations are listed (BVH
    "Zrotation Yrotation Xrotation" is order "zyx" with angles in that order).
    """
    check_shape(angles, "angles", (len(order),))
    if not order or any(c not in "xyzXYZ" for c in order):
        raise ValueError(f"order: expected letters from 'xyz', got {order!r}")
    return roma.euler_to_rotmat(order.upper(), angles, degrees=degrees)


def rotation_about_axis(angle: torch.Tensor | float, axis: str) -> torch.Tensor:
    """Matrices for rotations of ``angle`` (radians, any shape) about 'x', 'y' or 'z'."""
    if axis not in ("x", "y", "z"):
        raise ValueError(f"axis: expected 'x', 'y' or 'z', got {axis!r}")
    angle = torch.as_tensor(angle, dtype=torch.get_default_dtype())
    return roma.euler_to_rotmat(axis.upper(), angle[..., None])


def slerp_matrices(R0: torch.Tensor, R1: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Geodesic (slerp) interpolation, element-wise: R0 @ exp(w * log(R0^T R1)).

    R0, R1: (..., 3, 3); w: (...) weights in [0, 1] broadcastable to the batch shape.
    """
    rel = roma.rotmat_to_rotvec(R0.transpose(-1, -2) @ R1)
    return R0 @ roma.rotvec_to_rotmat(w[..., None] * rel)


def geodesic_angle(R0: torch.Tensor, R1: torch.Tensor) -> torch.Tensor:
    """Angle (radians) of R0^T R1, shape (...)."""
    return roma.rotmat_geodesic_distance(R0, R1)

