"""Automatic joint maps (``--rig auto`` without a preset): generated rigs of several
families - renamed, reordered, re-axed (y-up / z-up, x / z forward, left-handed),
rescaled, with folded rest poses, shorter and longer chains - written as BVH files and
imported; the SMPL joint positions must follow the source's own forward kinematics."""

import json
import math
import zlib

import numpy as np
import pytest
import roma
import torch
from conftest import SHARED_DATA
from scipy.spatial.transform import Rotation

from mage.core import SMPL22_PARENTS, Motion
from mage.data.bvh import load_bvh, read_bvh
from mage.data.retarget import leading_calibration_frames, retarget
from mage.data.rig_auto import parse_name
from mage.data.rig_map import auto_rig
from mage.data.source_motion import SourceMotion

RX90 = torch.tensor([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=torch.float64)
LIMBS = [(1, 4), (4, 7), (2, 5), (5, 8), (16, 18), (18, 20), (17, 19), (19, 21)]

# SMPL joint -> name, per rig family (None: the family has no such joint).
FAMILIES = {
    "cmu_like": ["Hips", "LeftUpLeg", "RightUpLeg", "LowerBack", "LeftLeg", "RightLeg", "Spine",
                 "LeftFoot", "RightFoot", "Spine1", "LeftToeBase", "RightToeBase", "Neck",
                 "LeftShoulder", "RightShoulder", "Head", "LeftArm", "RightArm", "LeftForeArm",
                 "RightForeArm", "LeftHand", "RightHand"],
    "biped": ["Bip01 Pelvis", "Bip01 L Thigh", "Bip01 R Thigh", "Bip01 Spine", "Bip01 L Calf",
              "Bip01 R Calf", "Bip01 Spine1", "Bip01 L Foot", "Bip01 R Foot", "Bip01 Spine2",
              "Bip01 L Toe0", "Bip01 R Toe0", "Bip01 Neck", "Bip01 L Clavicle",
              "Bip01 R Clavicle", "Bip01 Head", "Bip01 L UpperArm", "Bip01 R UpperArm",
              "Bip01 L Forearm", "Bip01 R Forearm", "Bip01 L Hand", "Bip01 R Hand"],
    "unreal": ["pelvis", "thigh_l", "thigh_r", "spine_01", "calf_l", "calf_r", "spine_02",
               "foot_l", "foot_r", "spine_03", "ball_l", "ball_r", "neck_01", "clavicle_l",
               "clavicle_r", "head", "upperarm_l", "upperarm_r", "lowerarm_l", "lowerarm_r",
               "hand_l", "hand_r"],
    "rigify": ["DEF-hips", "DEF-thigh.L", "DEF-thigh.R", "DEF-spine", "DEF-shin.L", "DEF-shin.R",
               "DEF-spine.001", "DEF-foot.L", "DEF-foot.R", "DEF-chest", "DEF-toe.L", "DEF-toe.R",
               "DEF-neck", "DEF-shoulder.L", "DEF-shoulder.R", "DEF-head", "DEF-upper_arm.L",
               "DEF-upper_arm.R", "DEF-forearm.L", "DEF-forearm.R", "DEF-hand.L", "DEF-hand.R"],
    "daz": ["hip", "lThigh", "rThigh", "abdomen", "lShin", "rShin", None, "lFoot", "rFoot",
            "chest", None, None, "neck", "lCollar", "rCollar", "head", "lShldr", "rShldr",
            "lForeArm", "rForeArm", "lHand", "rHand"],
    "bandai": ["Hips", "UpperLeg_L", "UpperLeg_R", "Spine", "LowerLeg_L", "LowerLeg_R", None,
               "Foot_L", "Foot_R", "Chest", "Toes_L", "Toes_R", "Neck", "Shoulder_L",
               "Shoulder_R", "Head", "UpperArm_L", "UpperArm_R", "LowerArm_L", "LowerArm_R",
               "Hand_L", "Hand_R"],
    "asf_names": ["hip", "lfemur", "rfemur", "lowerback", "ltibia", "rtibia", "upperback",
                  "lfoot", "rfoot", "thorax", "ltoes", "rtoes", "lowerneck", "lclavicle",
                  "rclavicle", "head", "lhumerus", "rhumerus", "lradius", "rradius", "lwrist",
                  "rwrist"],
    # Knees and elbows with names that say nothing: found by position along the chain.
    "by_position": ["Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftSegB", "RightSegB", "Spine1",
                    "LeftFoot", "RightFoot", "Spine2", "LeftToe", "RightToe", "Neck",
                    "LeftCollar", "RightCollar", "Head", "LeftArm", "RightArm", "LeftSegE",
                    "RightSegE", "LeftHand", "RightHand"],
    # A physics character: no collars, feet or separate spine joints; "shoulder" = upper arm.
    "physics": ["root", "left_hip", "right_hip", None, "left_knee", "right_knee", None,
                "left_ankle", "right_ankle", "chest", None, None, "neck", None, None, "head",
                "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
                "right_wrist"],
}


def _smpl_motion(T=6, seed=0, spread=0.35, neutral_start=False):
    """A smooth upright SMPL motion: random poses a and b blended over T frames (a = the
    rest pose when ``neutral_start``)."""
    g = torch.Generator().manual_seed(seed)
    a, b = (torch.randn(22, 3, generator=g, dtype=torch.float64) * spread for _ in range(2))
    if neutral_start:
        a = a * 0
    w = torch.linspace(0, 1, T, dtype=torch.float64)[:, None, None]
    aa = (1 - w) * a + w * b
    aa[:, 0] *= 0.3
    R = roma.rotvec_to_rotmat(aa)
    R[:, 0] = RX90 @ R[:, 0]
    trans = torch.tensor([0.1, 0.2, 0.95], dtype=torch.float64) + 0.02 * w[:, :, 0] * torch.randn(
        3, generator=g, dtype=torch.float64)
    return Motion(R, trans, 30.0)


RIGHT_SIDE = frozenset((2, 5, 8, 11, 14, 17, 19, 21))
TWIST_DEG = (0.0, 40.0, 180.0, -90.0, 125.0, -160.0, 70.0)


def _source(m: Motion, names, M: np.ndarray, size: float, fold: bool = False,
            extra: bool = False, order_seed: int | None = None):
    """The performance of ``m`` on a rig named ``names`` whose world is ``M`` @ z-up
    (M orthogonal, det +-1), ``size`` times bigger. ``fold``: every joint frame turned so
    that its bone lies along local +x in the zero pose; ``fold="mirrored"``: right-side
    bones along local -x instead (the Bandai Namco rig's rest). ``extra``: an
    end site per leaf and two fingers per hand (longer chains). ``order_seed``: joints
    written in another (parents-first) order. Returns (SourceMotion, SMPL index per
    source joint or -1)."""
    T = m.num_frames
    Gz = m.global_rotations().double()  # (T, 22, 3, 3) z-up world
    Pz = m.joint_positions().double()
    Mt = torch.from_numpy(M)
    keep = [j for j in range(22) if names[j] is not None]
    parent = {}
    for j in keep:
        p = SMPL22_PARENTS[j]
        while p >= 0 and names[p] is None:
            p = SMPL22_PARENTS[p]
        parent[j] = p
    # source world: positions M @ p * size; global frames M G Rx90^T M^T (identity in the
    # T-pose, proper even if M is not)
    P = (Pz @ Mt.T) * size
    G = Mt @ Gz @ RX90.T @ Mt.T
    smpl_rest = m.skeleton.rest_positions() @ RX90.numpy().T  # T-pose in z-up world
    rest_w = (smpl_rest @ M.T) * size
    # rest frame per joint (zero pose frame in the T-pose): identity or folded
    F = {}
    children = {j: [c for c in keep if parent[c] == j] for j in keep}
    for j in keep:
        if fold and not children[j]:
            F[j] = F[parent[j]]  # an end joint keeps its parent's orientation
        elif fold:  # local x along the bone to the first child (the pelvis: up the spine)
            bone = rest_w[children[j][-1] if j == 0 else children[j][0]] - rest_w[j]
            rv = np.cross([1.0, 0, 0], bone / np.linalg.norm(bone))
            ang = math.acos(np.clip(bone[0] / np.linalg.norm(bone), -1, 1))
            if np.linalg.norm(rv) < 1e-9:
                rv = np.array([0, 0, 1.0]) if ang < 1 else np.array([0, 0, math.pi])
                F[j] = Rotation.from_rotvec(rv if ang > 1 else 0 * rv).as_matrix()
            else:
                F[j] = Rotation.from_rotvec(rv / np.linalg.norm(rv) * ang).as_matrix()
            if fold == "mirrored" and j in RIGHT_SIDE:  # local -x along the bone
                F[j] = F[j] @ np.diag([-1.0, -1.0, 1.0])
            if fold == "twisted":  # a rig's own twist about each bone (local x)
                F[j] = F[j] @ Rotation.from_rotvec([TWIST_DEG[j % len(TWIST_DEG)] * math.pi / 180, 0, 0]).as_matrix()
        else:
            F[j] = np.eye(3)
    order = list(keep)
    if order_seed is not None:  # a random parents-first order
        rng = np.random.default_rng(order_seed)
        order, todo = [keep[0]], [c for c in keep[1:]]
        while todo:
            ready = [c for c in todo if parent[c] in order]
            c = ready[rng.integers(len(ready))]
            order.append(c)
            todo.remove(c)
    jn, jp, off, Gs, Ps, smpl_of = [], [], [], [], [], []
    pos = {}
    for j in order:
        Fj = torch.from_numpy(F[j])
        pos[j] = len(jn)
        jn.append(names[j])
        jp.append(-1 if parent[j] < 0 else pos[parent[j]])
        pj = parent[j]
        if pj < 0:
            off.append(rest_w[j])
        else:
            off.append(F[pj].T @ (rest_w[j] - rest_w[pj]))
        Gs.append(G[:, j] @ Fj)
        Ps.append(P[:, j])
        smpl_of.append(j)
    if extra:
        for j in list(order):
            leaf = not children[j]
            tips = [(f"{names[j]}_End", 0.08)] if leaf else []
            if j in (20, 21):
                tips = [(f"{names[j]}Index1", 0.07), (f"{names[j]}Thumb1", 0.05)]
            for k, (nm, length) in enumerate(tips):
                d = np.array([0.0, 0.0, -1.0]) if j in (7, 8, 10, 11, 15) else (
                    np.array([1.0 if j % 2 == 0 else -1.0, 0.0, 0.0]))
                if j == 15:
                    d = np.array([0.0, 0.0, 1.0])
                if j in (10, 11):
                    d = np.array([0.0, -1.0, 0.0])
                o_world = (M @ d) * length * size + k * 0.01 * size
                o_local = F[j].T @ o_world
                jn.append(nm)
                jp.append(pos[j])
                off.append(o_local)
                Gs.append(Gs[pos[j]])
                Ps.append(Ps[pos[j]] + (Gs[pos[j]] @ torch.from_numpy(o_local)))
                smpl_of.append(-1)
    Gs, Ps = torch.stack(Gs, 1), torch.stack(Ps, 1)
    L = Gs.clone()
    tr = torch.zeros(T, len(jn), 3, dtype=torch.float64)
    for k, p in enumerate(jp):
        if p >= 0:
            L[:, k] = Gs[:, p].transpose(-1, -2) @ Gs[:, k]
            tr[:, k] = torch.from_numpy(np.asarray(off[k]))
        else:
            tr[:, k] = Ps[:, k]
    src = SourceMotion(jn, jp, np.asarray(off), L, tr, m.fps, name="generated",
                       meta={"scale": 1.0, "scale_guessed": True})
    return src, smpl_of


def _bone_errors_deg(out: Motion, src: SourceMotion, smpl_of) -> np.ndarray:
    """Angles between the output's limb bones and the source's (after the best rigid
    alignment of the source world onto the output's, reflection allowed)."""
    _, Ps = src.fk()
    Po = out.joint_positions().double()
    have = {s: k for k, s in enumerate(smpl_of) if s >= 0}
    jj = [j for j in range(22) if j in have]
    a = Ps[:, [have[j] for j in jj]].reshape(-1, 3).numpy()
    b = Po[:, jj].reshape(-1, 3).numpy()
    a0, b0 = a - a.mean(0), b - b.mean(0)
    U, _, Vt = np.linalg.svd(a0.T @ b0)
    R = (U @ Vt).T  # b ~ R a (orthogonal, may be improper)
    errs = []
    for p, c in LIMBS:
        if p in have and c in have:
            vs = (Ps[:, have[c]] - Ps[:, have[p]]).numpy() @ R.T
            vo = (Po[:, c] - Po[:, p]).numpy()
            cos = (vs * vo).sum(-1) / np.linalg.norm(vs, axis=-1) / np.linalg.norm(vo, axis=-1)
            errs.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    return np.concatenate(errs)


AXES = {  # source world = M @ z-up world
    "y_up_z_fwd": np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),  # Rx(-90): y-up
    "z_up": np.eye(3),
    "y_up_x_fwd": np.array([[0.0, 1, 0], [0, 0, 1], [1, 0, 0]]),
    "left_handed": np.diag([1.0, 1.0, -1.0]) @ np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]]),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("axes, size, fold", [
    ("y_up_z_fwd", 100.0, False), ("z_up", 1.0, False), ("y_up_x_fwd", 1 / 0.0254, True),
    ("left_handed", 100.0, False),
])
def test_generated_rigs_follow_their_own_fk(family, axes, size, fold):
    if axes == "left_handed" and FAMILIES[family][10] is None:
        pytest.skip("mirrored axes are recognised from the toes; this rig has none")
    m = _smpl_motion(seed=zlib.crc32(f"{family}{axes}".encode()) % 1000, neutral_start=fold)
    src, smpl_of = _source(m, FAMILIES[family], AXES[axes], size, fold=fold,
                           extra=family in ("cmu_like", "unreal"), order_seed=3)
    out = retarget(src, "auto")
    assert out.meta["rig"] == "auto" or family == "cmu_like"
    err = _bone_errors_deg(out, src, smpl_of)
    assert err.max() < 5.0, f"{family}/{axes}: limb bones off by {err.max():.2f} deg"
    # Head height above the floor (z = 0 in the generating world), after the unit.
    _, Ps = src.fk()
    up = torch.from_numpy(AXES[axes] @ np.array([0, 0, 1.0]))
    head_src = (Ps[:, smpl_of.index(15)] @ up) / size
    assert out.meta["unit"].startswith(("m", "cm", "inch"))
    assert torch.allclose(out.joint_positions()[:, 15, 2].double(), head_src, atol=0.03)
    assert out.meta.get("axes", "").endswith(("left-handed" if axes == "left_handed" else "right-handed"))


@pytest.mark.parametrize("fold", [True, "mirrored", "twisted"])
@pytest.mark.parametrize("family", ["bandai", "unreal", "biped"])
def test_folded_rest_pose_gives_the_same_motion_as_a_t_pose(family, fold):
    """Every bone along its local x in the zero pose (the Bandai Namco rig's rest; right
    side along -x: "mirrored", as in that rig; each joint's frame turned about its bone:
    "twisted") vs the same performance on a T-pose rig: the same joint positions, head
    orientation and leg rotations. The zero pose of such a rig does not say how its bones
    are twisted, so the legs take their twist from the most upright standing frame (here
    the neutral first frame); before, the Bandai rig's mirrored right leg came out
    twisted by 180 degrees at the hip in every frame."""
    m = _smpl_motion(T=5, seed=4, neutral_start=True)
    names = FAMILIES[family]
    a = retarget(_source(m, names, AXES["y_up_z_fwd"], 100.0)[0], "auto")
    b = retarget(_source(m, names, AXES["y_up_z_fwd"], 100.0, fold=fold)[0], "auto")
    assert (a.joint_positions() - b.joint_positions()).norm(dim=-1).max() < 0.02
    ang = roma.rotmat_geodesic_distance(a.global_rotations()[:, [0, 15]].double(),
                                        b.global_rotations()[:, [0, 15]].double())
    assert torch.rad2deg(ang).max() < 3.0  # pelvis and head
    legs = [1, 2, 4, 5, 7, 8]
    ang = roma.rotmat_geodesic_distance(a.rotations[:, legs].double(), b.rotations[:, legs].double())
    assert torch.rad2deg(ang).max() < 3.0  # local rotations of hips, knees, ankles


@pytest.mark.parametrize("name, side, part", [
    ("Bip01 L Thigh", "L", "thigh"), ("lfemur", "L", "femur"), ("rShldr", "R", "shldr"),
    ("Shoulder_L", "L", "shoulder"), ("thigh.R", "R", "thigh"), ("mixamorig:LeftUpLeg", "L", "upleg"),
    ("lowerback", None, "lowerback"), ("CC_Base_L_Thigh", "L", "thigh"), ("left_hip", "L", "hip"),
])
def test_name_sides_and_parts(name, side, part):
    n = parse_name(name)
    assert (n.side, n.part) == (side, part)


def test_name_roles_and_skipped_bones():
    assert parse_name("LeftHandIndex1").skip and parse_name("CC_Base_L_ThighTwist01").skip
    assert parse_name("LHipJoint").skip and parse_name("Head_End").skip
    assert parse_name("LeftLeg").role() == "knee" and parse_name("LeftUpLeg").role() == "hip"
    assert parse_name("Hips").role() is None  # the unsided hips are the pelvis


MIXAMO = ["mixamorig:" + n for n in (
    "Hips", "LeftUpLeg", "RightUpLeg", "Spine", "LeftLeg", "RightLeg", "Spine1", "LeftFoot",
    "RightFoot", "Spine2", "LeftToeBase", "RightToeBase", "Neck", "LeftShoulder", "RightShoulder",
    "Head", "LeftArm", "RightArm", "LeftForeArm", "RightForeArm", "LeftHand", "RightHand")]


@pytest.mark.parametrize("preset, names", [("cmu_bvh", FAMILIES["cmu_like"]), ("mixamo", MIXAMO)])
def test_auto_map_of_preset_names_equals_the_preset(preset, names):
    """The presets are fast paths of the same machinery: on a rig named like a preset the
    automatic map finds the preset's joints."""
    from mage.data.rig_map import load_rig

    m = _smpl_motion(T=3)
    src, _ = _source(m, names, AXES["y_up_z_fwd"], 1.0)
    spec = auto_rig(src)
    expected = {k: v for k, v in load_rig(preset).joints.items() if v in src.joint_names}
    assert spec.joints == expected


def test_unmappable_rig_says_what_is_missing_and_how_to_pass_a_map():
    m = _smpl_motion(T=3)
    names = [f"bone{j}" for j in range(22)]
    src, _ = _source(m, names, AXES["z_up"], 1.0)
    with pytest.raises(ValueError, match=r"generated: cannot map.*left hand/wrist.*--rig map\.json"):
        retarget(src, "auto")


def _write_bvh(path, names, parents, offsets, rot_deg, pos):
    """A BVH of the given tree: 6 channels on the root, 3 (ZYX) elsewhere."""
    J = len(names)
    kids = [[c for c in range(J) if parents[c] == j] for j in range(J)]
    lines = ["HIERARCHY"]

    def emit(j, d):
        ind = "  " * d
        lines.append(f"{ind}{'ROOT' if j == 0 else 'JOINT'} {names[j]}")
        lines.append(f"{ind}{{")
        lines.append(f"{ind}  OFFSET {' '.join(f'{v:.6f}' for v in offsets[j])}")
        lines.append(f"{ind}  CHANNELS {6 if j == 0 else 3} "
                     + ("Xposition Yposition Zposition " if j == 0 else "")
                     + "Zrotation Yrotation Xrotation")
        for c in kids[j]:
            emit(c, d + 1)
        if not kids[j]:
            lines.extend([f"{ind}  End Site", f"{ind}  {{", f"{ind}    OFFSET 0 1 0", f"{ind}  }}"])
        lines.append(f"{ind}}}")

    emit(0, 0)
    order = []
    stack = [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(kids[j]))
    T = rot_deg.shape[0]
    lines += ["MOTION", f"Frames: {T}", "Frame Time: 0.0333333"]
    for t in range(T):
        vals = list(pos[t])
        for j in order:
            vals += list(rot_deg[t, j])
        lines.append(" ".join(f"{v:.6f}" for v in vals))
    path.write_text("\n".join(lines) + "\n")


def _reordered(smpl_of, src: SourceMotion, read: SourceMotion):
    """``smpl_of`` for the joint order of ``read`` (a file's depth-first order)."""
    by_name = dict(zip(src.joint_names, smpl_of))
    return [by_name.get(n, -1) for n in read.joint_names]


def _bvh_of(src: SourceMotion, path):
    eul = Rotation.from_matrix(src.rotations.reshape(-1, 3, 3).numpy()).as_euler("ZYX", degrees=True)
    eul = eul.reshape(src.num_frames, src.num_joints, 3)
    _write_bvh(path, src.joint_names, src.parents, src.offsets, eul, src.translations[:, 0].numpy())


def test_bvh_with_spaced_names_imports_and_writes_a_map_that_reads_back(tmp_path):
    from mage.data.rig_map import load_rig

    m = _smpl_motion(T=4, seed=7)
    src, smpl_of = _source(m, FAMILIES["biped"], AXES["y_up_z_fwd"], 100.0)
    path = tmp_path / "biped.bvh"
    _bvh_of(src, path)
    read = read_bvh(path)
    assert "Bip01 L Thigh" in read.joint_names  # kept verbatim
    out = load_bvh(path)
    assert out.meta["joint_map"]["left_hip"] == "Bip01 L Thigh"
    assert out.meta["unit"] == "cm"
    assert _bone_errors_deg(out, read, _reordered(smpl_of, src, read)).max() < 5
    # the map written by the CLI reads back and gives the same motion
    from mage.cli.data import _write_map

    _write_map(out, tmp_path / "map.json")
    spec = load_rig(tmp_path / "map.json")
    again = load_bvh(path, rig=str(tmp_path / "map.json"))
    assert spec.joints["left_hip"] == "Bip01 L Thigh"
    assert torch.allclose(again.joint_positions(), out.joint_positions(), atol=1e-5)
    assert json.loads((tmp_path / "map.json").read_text())["up"] == "y"


def test_bvh_with_zero_offsets_takes_its_rest_from_the_channels(tmp_path):
    m = _smpl_motion(T=3, seed=8)
    src, smpl_of = _source(m, FAMILIES["cmu_like"], AXES["y_up_z_fwd"], 100.0)
    J = src.num_joints
    kids = [[c for c in range(J) if src.parents[c] == j] for j in range(J)]
    lines = ["HIERARCHY"]

    def emit(j, d):
        ind = "  " * d
        lines.extend([f"{ind}{'ROOT' if j == 0 else 'JOINT'} {src.joint_names[j]}", f"{ind}{{",
                      f"{ind}  OFFSET 0 0 0",
                      f"{ind}  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation"])
        for c in kids[j]:
            emit(c, d + 1)
        lines.append(f"{ind}}}")

    emit(0, 0)
    order, stack = [], [0]
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(kids[j]))
    eul = Rotation.from_matrix(src.rotations.reshape(-1, 3, 3).numpy()).as_euler("ZYX", degrees=True)
    eul = eul.reshape(src.num_frames, J, 3)
    lines += ["MOTION", f"Frames: {src.num_frames}", "Frame Time: 0.0333333"]
    for t in range(src.num_frames):
        vals = []
        for j in order:
            vals += list(src.translations[t, j].numpy()) + list(eul[t, j])
        lines.append(" ".join(f"{v:.6f}" for v in vals))
    path = tmp_path / "zero_offsets.bvh"
    path.write_text("\n".join(lines) + "\n")
    read = read_bvh(path)
    assert read.meta.get("rest_from_channels")
    out = load_bvh(path)
    assert _bone_errors_deg(out, read, _reordered(smpl_of, src, read)).max() < 5


def test_root_absolute_position_with_a_rest_offset_is_not_doubled(tmp_path):
    """Root OFFSET = rest hip height, channels = absolute hip position; the clip sits
    (hips low) most of the time but stands at its rest height at the start."""
    m = _smpl_motion(T=10, seed=9, spread=0.05)
    src, _ = _source(m, FAMILIES["cmu_like"], AXES["y_up_z_fwd"], 100.0)
    off = src.offsets.copy()
    off[0] = [0.0, 95.0, 0.0]
    pos = src.translations[:, 0].numpy().copy()
    pos[:] = [0.0, 95.0, 0.0]
    pos[3:, 1] = 30.0  # sitting after frame 3
    eul = Rotation.from_matrix(src.rotations.reshape(-1, 3, 3).numpy()).as_euler("ZYX", degrees=True)
    path = tmp_path / "abs.bvh"
    _write_bvh(path, src.joint_names, src.parents, off, eul.reshape(10, -1, 3), pos)
    read = read_bvh(path)
    assert read.meta["translation"][src.joint_names[0]] == "replace"
    assert torch.allclose(read.translations[:, 0, 1], torch.from_numpy(pos[:, 1]) * 0.01)


def test_a_leading_calibration_pose_is_dropped_with_a_notice(caplog):
    m = _smpl_motion(T=12, seed=10, spread=0.05)
    src, _ = _source(m, FAMILIES["unreal"], AXES["z_up"], 1.0)
    R = src.rotations.clone()
    R[0, 1:] = torch.eye(3, dtype=torch.float64)  # frame 0: a rest pose, far from frame 1
    R[0, [16, 17]] = roma.rotvec_to_rotmat(torch.tensor([[0, 0, 1.4], [0, 0, -1.4]], dtype=torch.float64))
    jumpy = SourceMotion(src.joint_names, src.parents, src.offsets, R, src.translations, 120.0,
                         name="jumpy")
    with caplog.at_level("WARNING"):
        out = retarget(jumpy, "auto")
    assert out.num_frames == 11 and out.meta["dropped_leading_frames"] == 1
    assert "dropped the first 1 frame" in caplog.text
    _, P = src.fk()
    assert leading_calibration_frames(P, 120.0) == 0  # a smooth clip keeps every frame


@pytest.mark.shared_data
def test_every_shared_motion_file_imports_upright():
    """Every BVH / AMC of ../shared/data/mocap imports with --rig auto as an upright
    person with feet near the floor (the larger mocap_more sets: see the benchmark)."""
    from mage.data.io import load_motion

    files = sorted((SHARED_DATA / "mocap").rglob("*.bvh")) + sorted((SHARED_DATA / "mocap").rglob("*.amc"))
    assert files
    for f in files[::4]:
        m = load_motion(f, rig="auto")
        p = m.joint_positions()
        feet = p[:, [7, 8, 10, 11], 2].amin(dim=1)
        assert 1.2 < float((p[:, 15, 2] - feet).median()) < 1.7, f
        assert -0.05 < float(feet.quantile(0.05)) < 0.2, f  # climbing clips: 5th percentile


def test_cli_info_prints_the_map_and_import_writes_it(tmp_path, capsys):
    from mage.cli.main import main

    m = _smpl_motion(T=4, seed=11)
    src, _ = _source(m, FAMILIES["bandai"], AXES["y_up_z_fwd"], 100.0, fold=True)
    path = tmp_path / "bandai_like.bvh"
    _bvh_of(src, path)
    assert main(["data", "info", str(path)]) == 0
    text = capsys.readouterr().out
    for words in ("rig: auto (auto-detected)", "axes: up y", "unit: cm", "confidence: ",
                  "left_hip <- UpperLeg_L"):
        assert words in text
    assert main(["data", "import", str(path), "-o", str(tmp_path / "out.npz"),
                 "--write-map", str(tmp_path / "map.json")]) == 0
    assert json.loads((tmp_path / "map.json").read_text())["joints"]["left_wrist"] == "Hand_L"
    assert main(["data", "import", str(path), "-o", str(tmp_path / "again.npz"),
                 "--rig", str(tmp_path / "map.json")]) == 0
    a, b = Motion.load(tmp_path / "out.npz"), Motion.load(tmp_path / "again.npz")
    assert torch.allclose(a.joint_positions(), b.joint_positions(), atol=1e-4)


def test_cli_unmappable_file_is_one_line_with_the_fix(tmp_path, capsys):
    from mage.cli.main import main

    m = _smpl_motion(T=3)
    src, _ = _source(m, [f"bone{j}" for j in range(22)], AXES["y_up_z_fwd"], 100.0)
    path = tmp_path / "odd.bvh"
    _bvh_of(src, path)
    assert main(["data", "info", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "odd.bvh" in err and "--rig map.json" in err
    assert "rig=" not in err


@pytest.mark.shared_data
def test_cc3_file_with_a_calibration_first_frame_drops_it():
    """CMU 07_05 as a Character Creator BVH starts with a T-pose frame (the wrists jump
    about 2 m to frame 1): it is dropped and the first frame stands."""
    from mage.cli.data import motion_height
    from mage.data.io import load_motion

    m = load_motion(SHARED_DATA / "mocap" / "cmu_cc3_bvh" / "007" / "007_05.bvh")
    assert m.meta["dropped_leading_frames"] >= 1
    assert 1.3 < motion_height(m) < 1.7
