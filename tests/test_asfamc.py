"""CMU ASF/AMC reading: units, axis frames, dof order, errors, the real CMU files."""

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA

from mage.data import asfamc
from mage.data.asfamc import find_asf, load_asfamc, read_amc, read_asf

ASF = """# tiny test skeleton
:version 1.10
:name TEST
:units
  mass 1.0
  length 0.45
  angle deg
:documentation
   hand-written for the tests
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name a
     direction 1 0 0
     length 2
     axis 0 0 90 XYZ
    dof rx
    limits (-180.0 180.0)
  end
  begin
     id 2
     name b
     direction 0 1 0
     length 1
     axis 0 0 0 XYZ
    dof rz ry
    limits (-180.0 180.0)
           (-180.0 180.0)
  end
:hierarchy
  begin
    root a
    a b
  end
"""

AMC = """#!OML:ASF tiny.asf
:FULLY-SPECIFIED
:DEGREES
1
root 0 10 0 0 0 0
a 0
b 0 0
2
root 0 10 0 0 0 0
a 90
b 90 0
"""
UNIT = 0.0254 / 0.45  # metres per CMU length unit


def _files(tmp_path, asf=ASF, amc=AMC):
    (tmp_path / "tiny.asf").write_bytes(asf.replace("\n", "\r\n").encode())
    (tmp_path / "tiny_01.amc").write_bytes(amc.replace("\n", "\r\n").encode())
    return tmp_path / "tiny.asf", tmp_path / "tiny_01.amc"


def test_tiny_asf_amc_gives_hand_computed_positions(tmp_path):
    asf_path, amc_path = _files(tmp_path)
    sk = read_asf(asf_path)
    assert sk.length_to_metres == pytest.approx(UNIT) and sk.angle_degrees
    src = read_amc(amc_path, sk)
    assert src.joint_names == ("root", "a", "b", "b_end") and src.parents == (-1, 0, 1, 2)
    assert src.fps == 120.0 and src.num_frames == 2
    _, P = src.fk()
    # Frame 1: rest. a starts at the root (0, 10, 0), b at a's end, b_end one unit up.
    rest = torch.tensor([[0, 10, 0], [0, 10, 0], [2, 10, 0], [2, 11, 0]], dtype=P.dtype) * UNIT
    assert torch.allclose(P[0], rest, atol=1e-12)
    # Frame 2: a's rx = 90 turns about the x axis of a's frame C = Rz(90), i.e. about world
    # y: a's end = (0,10,0) + Ry(90)(2,0,0) = (0,10,-2). b's dof order "rz ry": rz = 90
    # first; G_b = Ry(90) Rz(90), so b_end = a_end + Ry(90) Rz(90) (0,1,0) = a_end + (0,0,1).
    frame2 = torch.tensor([[0, 10, 0], [0, 10, 0], [0, 10, -2], [0, 10, -1]], dtype=P.dtype) * UNIT
    assert torch.allclose(P[1], frame2, atol=1e-12)


def test_dof_order_follows_the_dof_line(tmp_path):
    # b has "dof rz ry": values (rz, ry) applied rz first, about fixed axes: Ry @ Rz.
    amc = AMC.replace("b 90 0", "b 30 40")
    src = read_amc(_files(tmp_path, amc=amc)[1], tmp_path / "tiny.asf")
    from scipy.spatial.transform import Rotation

    expect = Rotation.from_euler("zy", [30, 40], degrees=True).as_matrix()  # extrinsic
    assert np.allclose(src.rotations[1, 2].numpy(), expect, atol=1e-12)


def test_fast_and_line_by_line_amc_readers_agree(tmp_path, monkeypatch):
    asf_path, amc_path = _files(tmp_path)
    fast = read_amc(amc_path, asf_path)
    monkeypatch.setattr(asfamc, "_amc_values", lambda *a, **k: None)  # force the slow path
    slow = read_amc(amc_path, asf_path)
    assert torch.equal(fast.rotations, slow.rotations)
    assert torch.equal(fast.translations, slow.translations)


@pytest.mark.parametrize("case, amc, line, words", [
    ("count", AMC.replace("b 90 0", "b 90"), 11, "expected 2 values"),
    ("truncated", AMC.rsplit("\n", 2)[0] + "\n", 10, "truncated"),
    ("non-numeric", AMC.replace("a 90", "a x90"), 10, "non-numeric"),
    ("bone", AMC.replace("a 90", "q 90"), 10, "unknown bone 'q'"),
])
def test_malformed_amc_names_file_and_line(tmp_path, case, amc, line, words):
    asf_path, amc_path = _files(tmp_path, amc=amc)
    with pytest.raises(ValueError) as err:
        read_amc(amc_path, asf_path)
    msg = str(err.value)
    assert "tiny_01.amc" in msg and f"line {line}:" in msg and words in msg, msg


def test_malformed_asf_names_file_and_line(tmp_path):
    bad = ASF.replace("     length 2\n", "     length two\n")
    with pytest.raises(ValueError, match=r"tiny\.asf, line 20: length"):
        read_asf(_files(tmp_path, asf=bad)[0])
    with pytest.raises(ValueError, match=r"tiny\.asf.*:hierarchy"):
        read_asf(_files(tmp_path, asf=ASF.split(":hierarchy")[0])[0])


def test_find_asf_needs_one_or_one_named_like_the_amc(tmp_path):
    _, amc_path = _files(tmp_path)
    assert find_asf(amc_path).name == "tiny.asf"
    (tmp_path / "other.asf").write_text(ASF)
    assert find_asf(amc_path).name == "tiny.asf"  # named like the AMC
    walk = amc_path.rename(tmp_path / "walk.amc")
    with pytest.raises(ValueError, match="several .asf"):
        find_asf(walk)
    # HDM05 layout: HDM_bd.asf beside the folder bd/ of HDM_bd_*.amc files
    (tmp_path / "bd").mkdir()
    (tmp_path / "HDM_bd.asf").write_text(ASF)
    hdm = walk.rename(tmp_path / "bd" / "HDM_bd_walk_001_120.amc")
    assert find_asf(hdm).name == "HDM_bd.asf"


@pytest.mark.shared_data
def test_cmu_subject_02_imports_plausibly():
    amc = SHARED_DATA / "mocap" / "cmu_asfamc" / "02" / "02_01.amc"
    m = load_asfamc(amc)
    assert m.meta["rig"] == "cmu_asf" and m.fps == 120.0 and m.num_frames == 343
    P = m.joint_positions()
    assert torch.isfinite(P).all()
    feet = P[:, [7, 8, 10, 11], 2]
    height = (P[:10, 15, 2] - feet[:10].min(-1).values).mean()
    assert 1.4 < height < 2.0
    assert -0.05 < feet.min() < 0.05  # CMU's floor is at 0: toes touch it
    bones = (P[:, 1:] - P[:, list(m.skeleton.parents[1:])]).norm(dim=-1)
    assert torch.allclose(bones, torch.tensor(m.skeleton.bone_lengths()[1:]).float(), atol=1e-5)
    # Walking: about 3 m covered in the 2.9 s, at pelvis height ~0.9 m.
    assert 2.0 < (P[-1, 0, :2] - P[0, 0, :2]).norm() < 4.0
    assert 0.8 < P[:, 0, 2].mean() < 1.05
