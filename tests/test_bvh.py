"""BVH reading (any rig), writing (SMPL-22) and loading through the retargeter."""

import math

import numpy as np
import pytest
import roma
import torch
from conftest import SHARED_DATA, random_rotations
from scipy.spatial.transform import Rotation

from mage.core import Motion, Skeleton
from mage.data.bvh import frame_rate_from_time, guess_scale, load_bvh, read_bvh, save_bvh

# A tiny rig: position channels on a non-root joint, three rotation orders, an End Site.
TINY = """HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Xrotation Yrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    JOINT Arm
    {
      OFFSET 5 0 0
      CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
      End Site
      {
        OFFSET 0 0 3
      }
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.04
0 0 0 0 0 0  0 0 0  5 0 0 0 0 0
1 2 3 90 0 0  90 0 0  5 0 0 90 0 0
"""


def _write(path, text, crlf=False):
    path.write_bytes(text.replace("\n", "\r\n" if crlf else "\n").encode())
    return path


def test_tiny_bvh_rest_and_rotated_frame_give_hand_computed_positions(tmp_path):
    src = read_bvh(_write(tmp_path / "tiny.bvh", TINY, crlf=True), scale=0.01)
    assert src.joint_names == ("Hips", "Chest", "Arm", "Arm_End")
    assert src.parents == (-1, 0, 1, 2)
    assert src.fps == 25.0
    _, P = src.fk()
    # Frame 0 (rest): offsets summed, centimetres -> metres.
    assert torch.allclose(P[0], torch.tensor([[0, 0, 0], [0, .1, 0], [.05, .1, 0], [.05, .1, .03]],
                                             dtype=P.dtype), atol=1e-12)
    # Frame 1: root at (1, 2, 3) cm turned Rz(90); chest Rx(90); arm Ry(90).
    # Chest = root + Rz(90)(0,10,0) = (-9, 2, 3); Arm = Chest + Rz Rx (5,0,0) = (-9, 7, 3);
    # End = Arm + Rz Rx Ry (0,0,3) = Arm + Rz Rx (3,0,0) = (-9, 10, 3).
    expect = torch.tensor([[1, 2, 3], [-9, 2, 3], [-9, 7, 3], [-9, 10, 3]], dtype=P.dtype) / 100
    assert torch.allclose(P[1], expect, atol=1e-12)
    # The arm's position channels equal its OFFSET: they replace it (not added twice).
    assert src.meta["translation"] == {"Hips": "add", "Arm": "replace"}


def test_rotation_channels_are_intrinsic_in_listed_order(tmp_path):
    """Against scipy: 'Zrotation Xrotation Yrotation' a b c == intrinsic ZXY (a, b, c)."""
    rng = np.random.default_rng(0)
    orders = ["ZXY", "XYZ", "YZX", "ZYX"]
    lines = ["HIERARCHY", "ROOT R", "{", "OFFSET 0 0 0", "CHANNELS 3 Zrotation Xrotation Yrotation"]
    for k, order in enumerate(orders[1:]):
        lines += [f"JOINT J{k}", "{", "OFFSET 0 1 0",
                  "CHANNELS 3 " + " ".join(f"{c}rotation" for c in order)]
    lines += ["End Site", "{", "OFFSET 0 1 0", "}"] + ["}"] * len(orders)
    angles = rng.uniform(-170, 170, (3, 3 * len(orders)))
    lines += ["MOTION", "Frames: 3", "Frame Time: 0.01"]
    lines += [" ".join(f"{a:.6f}" for a in row) for row in angles]
    src = read_bvh(_write(tmp_path / "orders.bvh", "\n".join(lines) + "\n"), scale=1.0)
    for j, order in enumerate(orders):
        ref = Rotation.from_euler(order, angles[:, 3 * j:3 * j + 3], degrees=True).as_matrix()
        assert np.allclose(src.rotations[:, j].numpy(), ref, atol=1e-9), order


def test_position_channels_added_to_offset_when_they_are_displacements(tmp_path):
    text = TINY.replace("ROOT Hips\n{\n  OFFSET 0 0 0", "ROOT Hips\n{\n  OFFSET 0 100 0")
    src = read_bvh(_write(tmp_path / "disp.bvh", text), scale=0.01)
    _, P = src.fk()
    assert src.meta["translation"]["Hips"] == "add"  # channels ~0 vs OFFSET 100: displacement
    assert torch.allclose(P[1, 0], torch.tensor([0.01, 1.02, 0.03], dtype=P.dtype))


@pytest.mark.parametrize("case, text, line, words", [
    ("truncated", TINY.rsplit("\n", 2)[0] + "\n", 24, "truncated"),
    ("channels", TINY.replace("1 2 3 90 0 0", "1 2 3 90 0"), 25, "14 values"),
    ("zero frame time", TINY.replace("Frame Time: 0.04", "Frame Time: 0"), 23, "positive"),
    ("non-numeric", TINY.replace("1 2 3 90", "1 2 abc 90"), 25, "'abc'"),
    ("hierarchy", TINY.replace("OFFSET 5 0 0", "OFFSET 5 0"), 13, "number"),
])
def test_malformed_files_name_file_and_line(tmp_path, case, text, line, words):
    path = _write(tmp_path / f"bad_{case.replace(' ', '_')}.bvh", text, crlf=True)
    with pytest.raises(ValueError) as err:
        read_bvh(path, scale=0.01)
    msg = str(err.value)
    assert path.name in msg and f"line {line}:" in msg and words in msg, msg


def test_unknown_rig_lists_presets_and_names_the_file(tmp_path):
    path = _write(tmp_path / "tiny.bvh", TINY)
    with pytest.raises(ValueError) as err:
        load_bvh(path)
    msg = str(err.value)
    assert "tiny.bvh" in msg and "cmu_asf" in msg and "smpl" in msg and "cc3" in msg


def test_frame_rate_snaps_only_when_the_printed_time_allows_it():
    assert frame_rate_from_time("0.016667") == 60.0
    assert frame_rate_from_time("0.0083333") == 120.0
    assert frame_rate_from_time("0.04") == 25.0
    assert abs(frame_rate_from_time("0.033367") - 1 / 0.033367) < 1e-9  # 29.97 fps kept


def _random_motion(T=12, fps=30.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    R = random_rotations(T, 22, generator=g, dtype=torch.float32)
    return Motion(R, torch.randn(T, 3, generator=g), fps, Skeleton.smpl22())


@pytest.mark.parametrize("units", ["m", "cm"])
def test_save_then_load_gives_the_same_motion(tmp_path, units):
    m = _random_motion()
    path = tmp_path / "out.bvh"
    save_bvh(m, path, units=units)
    back = load_bvh(path)  # auto-detects our own preset
    assert back.meta["rig"] == "smpl" and back.fps == m.fps and back.num_frames == m.num_frames
    assert back.meta["scale"] == (1.0 if units == "m" else 0.01)
    ang = roma.rotmat_geodesic_distance(back.rotations.double(), m.rotations.double())
    assert ang.max() < 1e-4
    assert (back.joint_positions() - m.joint_positions()).abs().max() < 1e-4
    assert (back.trans - m.trans).abs().max() < 1e-4
    assert load_bvh(path, rig="smpl").rotations.allclose(back.rotations)


def test_written_file_is_y_up_and_upright_rest_has_zero_angles(tmp_path):
    m = Motion.rest(2, fps=60.0)  # upright in the z-up world
    m.trans[:] = torch.tensor([0.5, -2.0, 0.9])
    save_bvh(m, tmp_path / "rest.bvh")
    src = read_bvh(tmp_path / "rest.bvh")
    lines = (tmp_path / "rest.bvh").read_text().splitlines()
    first = [float(v) for v in lines[lines.index("Frame Time: 0.0166666667") + 1].split()]
    assert first[:3] == pytest.approx([0.5, 0.9, 2.0])  # file y = world z, file z = -world y
    assert max(abs(v) for v in first[3:]) < 1e-9  # upright rest = identity in a y-up file
    _, P = src.fk()
    head, foot = src.index("head"), src.index("left_foot")
    assert P[0, head, 1] - P[0, foot, 1] > 1.4  # head above the feet along file y


@pytest.mark.shared_data
def test_cc_bvh_with_and_without_extra_root_import_plausibly():
    for name in ("002/002_01.bvh", "002/002_04.bvh"):  # RL_BoneRoot z-up root / CC_Base_Hip
        path = SHARED_DATA / "mocap" / "cmu_cc3_bvh" / name
        m = load_bvh(path)
        assert m.meta["rig"] == "cc3" and m.fps == 60.0 and m.meta["scale"] == 0.01
        P = m.joint_positions()
        assert torch.isfinite(P).all()
        feet = P[:, [7, 8, 10, 11], 2]
        height = (P[:10, 15, 2] - feet[:10].min(-1).values).mean()
        assert 1.4 < height < 2.0
        assert -0.05 < feet.min() < 0.12  # feet near the floor (report: ~6 cm, CC toes)
        bones = (P[:, 1:] - P[:, list(m.skeleton.parents[1:])]).norm(dim=-1)
        assert torch.allclose(bones, torch.tensor(m.skeleton.bone_lengths()[1:]).float(), atol=1e-5)
        up = m.global_rotations()[:, 0, :, 1]  # the pelvis' up axis stays near world z
        assert (up[:, 2] > math.cos(math.radians(45))).float().mean() > 0.95


def test_units_guess_prefers_the_preset_unit_when_it_fits_a_human():
    assert guess_scale(1.7) == 1.0 and guess_scale(175.0) == 0.01
    assert guess_scale(30.0, (0.0254 / 0.45,)) == pytest.approx(0.0254 / 0.45)


def test_cmu_bvh_names_in_cmu_units_are_detected_and_scaled(tmp_path):
    """A file with the CMU BVH release's names whose lengths are CMU units (1/0.45 inch)."""
    import re

    from mage.data.rig_map import load_rig

    unit = 0.0254 / 0.45
    sk = Skeleton.smpl22()
    big = Skeleton(sk.joint_names, sk.parents, sk.offsets / unit)
    m = _random_motion()
    save_bvh(Motion(m.rotations, m.trans / unit, m.fps, big), tmp_path / "smpl.bvh")
    names = {smpl: src for smpl, src in load_rig("cmu_bvh").joints.items()}
    text = re.sub(r"\b(" + "|".join(names) + r")\b", lambda g: names[g.group(1)],
                  (tmp_path / "smpl.bvh").read_text())
    (tmp_path / "cmu.bvh").write_text(text)
    back = load_bvh(tmp_path / "cmu.bvh")
    assert back.meta["rig"] == "cmu_bvh" and back.meta["scale"] == pytest.approx(unit)
    ang = roma.rotmat_geodesic_distance(back.rotations.double(), m.rotations.double())
    assert ang.max() < 1e-4  # the same rest pose as SMPL: nothing to correct
    assert (back.trans - m.trans).abs().max() < 1e-3
