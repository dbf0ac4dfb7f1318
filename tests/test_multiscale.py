import pytest
import torch

from mage.core import Motion, ScaleHierarchy, pool_nodes
from mage.core.multiscale import NODE_DIM


def test_default_hierarchy_sizes_and_nesting():
    h = ScaleHierarchy()
    assert [h.num_nodes(s) for s in ("S0", "S1", "S2", "S3")] == [1, 6, 11, 22]


def test_pooling_known_pose():
    # Upright rest pose at the origin: every global rotation is the root's (Rx 90 deg);
    # node = [6D of Rx90, centroid - pelvis] computed by hand from the rest positions.
    m = Motion.rest(1)
    fk = m.fk()
    nodes = pool_nodes(fk.global_rotations, fk.positions, "S1")
    assert nodes.shape == (1, 6, NODE_DIM)
    rx90_6d = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 1.0])  # columns of Rx(90): x->x, y->z
    assert torch.allclose(nodes[0, :, :6], rx90_6d.expand(6, 6), atol=1e-6)
    p = fk.positions[0]
    head_centroid = (p[12] + p[15]) / 2 - p[0]
    assert torch.allclose(nodes[0, 1, 6:], head_centroid, atol=1e-6)
    # the whole-body node's centroid is the mean of all joints
    s0 = pool_nodes(fk.global_rotations, fk.positions, "S0")
    assert torch.allclose(s0[0, 0, 6:], p.mean(0) - p[0], atol=1e-6)


def test_pooling_uses_proximal_joint_rotation():
    m = Motion.rest(1, upright=False)
    R = m.rotations.clone()
    Rz = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    R[0, 18] = Rz  # left elbow: proximal joint of S2 node "left arm" (18, 20)
    m = Motion(R, m.trans, m.fps)
    fk = m.fk()
    s2 = pool_nodes(fk.global_rotations, fk.positions, "S2")
    assert torch.allclose(s2[0, 4, :6], torch.tensor([0.0, 1.0, 0.0, -1.0, 0.0, 0.0]))
    assert torch.allclose(s2[0, 3, :6], torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]))


def test_hierarchy_validation():
    with pytest.raises(ValueError, match="partition"):
        ScaleHierarchy(groups={"S1": ((0, 1),)})
    bad_nesting = {"S1": ScaleHierarchy().groups["S1"],
                   "S2": ((0, 1),) + tuple((j,) for j in range(22) if j not in (0, 1))}
    with pytest.raises(ValueError, match="nested"):
        ScaleHierarchy(groups=bad_nesting)
    with pytest.raises(ValueError, match="one proximal"):
        ScaleHierarchy(groups={"X": ((1, 2),) + tuple((j,) for j in range(22) if j not in (1, 2))})
    with pytest.raises(ValueError, match="unknown"):
        ScaleHierarchy().groups_of("S9")
