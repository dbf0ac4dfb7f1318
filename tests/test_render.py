"""Headless rendering: frames show the skeleton where it projects, videos have the
right number of frames, outputs are atomic, bad input fails clearly."""

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from mage.demo.synthetic import synthetic_motion
from mage.viz import render
from mage.viz.render import SkeletonRenderer, render_frame, render_motion
from mage.viz.style import PREDICTION, REFERENCE, TRACKER

SIZE = (320, 240)


@pytest.fixture(scope="module")
def motion():
    return synthetic_motion(duration_s=8.0, fps=30, seed=0)


def _rgb(hex_color) -> np.ndarray:
    return np.array(to_rgb(hex_color)) * 255


def _near(img, xy, color, radius=4, tol=60.0) -> bool:
    """Whether a pixel within ``radius`` of ``xy`` (x, y) has ``color`` (RGB 0-255)."""
    x, y = (round(v) for v in xy)
    patch = img[max(0, y - radius): y + radius + 1, max(0, x - radius): x + radius + 1].astype(float)
    return bool((np.linalg.norm(patch - color, axis=-1) < tol).any())


def _count(img, color, tol=60.0) -> int:
    return int((np.linalg.norm(img.astype(float) - color, axis=-1) < tol).sum())


def test_frame_shows_skeleton_where_joints_project(motion):
    P = motion.joint_positions().numpy()
    with SkeletonRenderer(motion, size=SIZE) as r:
        t = 0  # standing, seen from the front left: limbs apart on screen
        img = r.frame(t)
        assert img.shape == (240, 320, 3) and img.dtype == np.uint8
        assert _count(img, np.array([255, 255, 255]), tol=10) < 0.97 * img.shape[0] * img.shape[1]
        # left limbs blue, right limbs red, at the projected middle of the bone
        for a, b, color, other in ((18, 20, render.LEFT_COLOR, render.RIGHT_COLOR),
                                   (19, 21, render.RIGHT_COLOR, render.LEFT_COLOR),
                                   (4, 7, render.LEFT_COLOR, render.RIGHT_COLOR),
                                   (5, 8, render.RIGHT_COLOR, render.LEFT_COLOR)):
            mid = r.project((P[t, a] + P[t, b]) / 2)[0]
            assert _near(img, mid, _rgb(color), radius=2), f"no {color} on bone {a}-{b}"
            assert not _near(img, mid, _rgb(other), radius=2), f"{other} on bone {a}-{b}"
        # the spine is grey, and the tracked head is ringed
        mid = r.project((P[t, 3] + P[t, 6]) / 2)[0]
        assert _near(img, mid, _rgb(render.CENTER_COLOR))
        head = r.project(P[t, 15])[0]
        assert _near(img, head, _rgb(render.TRACKER_COLOR), radius=12)
        assert not _near(img, head + [60, 0], _rgb(render.TRACKER_COLOR), radius=12)
        # up is up: the head is drawn above the pelvis, the feet below it
        pelvis, foot = r.project(P[t, [0, 10]])
        assert head[1] < pelvis[1] < foot[1]


def test_camera_follows_the_pelvis(motion):
    P = motion.joint_positions().numpy()
    assert np.linalg.norm(P[150, 0, :2] - P[0, 0, :2]) > 3.0  # the body walked away
    with SkeletonRenderer(motion, size=SIZE) as r:
        r.frame(0)
        a = r.project(P[0, 0])[0]
        img = r.frame(150)
        b = r.project(P[150, 0])[0]
    assert np.linalg.norm(a - b) < 25  # still in the same place on screen
    assert _near(img, b, _rgb(render.CENTER_COLOR), radius=6)


@pytest.mark.parametrize("layout", ["side", "overlay"])
def test_error_colours(motion, layout):
    pred = motion.joint_positions().numpy().copy()
    pred[:, 21] += [0.0, 0.0, 0.25]  # right wrist 25 cm off, every other joint exact
    with SkeletonRenderer(pred, motion, layout=layout, size=(480, 240), error_max_cm=20,
                          color_by="error") as r:
        t = 30
        img = r.frame(t)
        panel = 0
        hi, lo = r.cmap(1.0)[:3], r.cmap(0.0)[:3]
        wrist = r.project(pred[t, 21], panel)[0]
        assert _near(img, wrist, np.array(hi) * 255, radius=3, tol=50)
        knee = r.project((pred[t, 4] + pred[t, 7]) / 2, panel)[0]
        assert _near(img, knee, np.array(lo) * 255, radius=3, tol=50)
        assert r.errors_cm[t, 21] == pytest.approx(25.0, abs=1e-3)
    if layout == "side":  # the ground truth panel (right) keeps the reference colours
        assert _count(img[:, 240:440], _rgb(REFERENCE["left"])) > 20


def test_one_colour_scheme_with_legend(motion):
    """Prediction and reference in the palettes of mage.viz.style (as in the viewer), in
    their panels, and a legend naming both sides of both and the tracking rings."""
    from mage.viz.viewer import viewer_data

    pred = motion.joint_positions().numpy().copy()
    pred[:, :, 0] += 0.05
    with SkeletonRenderer(pred, motion, size=(960, 540), gt_label="ground truth") as r:
        img = r.frame(40)
        strip = len(r._legend_strip)
    body, legend = img[:-strip], img[-strip:]
    for palette, half in ((PREDICTION, body[:, :480]), (REFERENCE, body[:, 480:])):  # as the viewer
        for side in ("left", "right"):
            assert _count(half, _rgb(palette[side]), tol=30) > 50, (palette, side)
    assert _count(body[:, 480:], _rgb(PREDICTION["left"]), tol=30) < 5  # no prediction colours there
    for color in (*[PREDICTION[s] for s in ("left", "right")], *[REFERENCE[s] for s in ("left", "right")],
                  TRACKER):
        assert _count(legend, _rgb(color), tol=30) > 10, color
    data = viewer_data([motion, motion], names=["prediction", "ground truth"])
    assert data["motions"][0]["colors"] == PREDICTION and data["motions"][1]["colors"] == REFERENCE
    assert data["tracker"]["color"] == TRACKER


def test_render_frame_matches_renderer(motion):
    a = render_frame(motion, 10, size=SIZE)
    with SkeletonRenderer(motion, size=SIZE) as r:
        r.frame(0)
        b = r.frame(10)  # artists updated in place: same picture as a fresh figure
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 1.0


def test_mp4_has_every_frame(motion, tmp_path):
    import imageio.v2 as imageio

    out = render_motion(motion[:24], tmp_path / "clip.mp4", size=(160, 120), progress=False)
    reader = imageio.get_reader(out)
    try:
        assert reader.count_frames() == 24
        assert reader.get_meta_data()["fps"] == pytest.approx(30.0)
        frame = reader.get_data(5)
    finally:
        reader.close()
    assert frame.shape == (120, 160, 3) and frame.std() > 5
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]  # no temporary left over


def test_gif_subsamples_to_25_fps(tmp_path):
    from PIL import Image

    m = synthetic_motion(duration_s=4.0, fps=60)[:30]
    out = render_motion(m, tmp_path / "clip.gif", size=(96, 72), progress=False)
    with Image.open(out) as im:
        assert im.n_frames == 10  # every 3rd frame of 30 -> 20 fps
        assert im.info["duration"] == 50 and im.info["loop"] == 0
    out = render_motion(m, tmp_path / "all.gif", every=1, fps=10, size=(96, 72), progress=False)
    with Image.open(out) as im:
        assert im.n_frames == 30 and im.info["duration"] == 100


def test_failed_render_leaves_old_file_untouched(motion, tmp_path, monkeypatch):
    out = tmp_path / "clip.mp4"
    out.write_bytes(b"old")
    calls = []

    def broken(self, t):
        calls.append(t)
        if len(calls) > 3:
            raise RuntimeError("boom")
        return np.zeros((self.height, self.width, 3), np.uint8)

    monkeypatch.setattr(SkeletonRenderer, "frame", broken)
    with pytest.raises(RuntimeError, match="boom"):
        render_motion(motion[:10], out, size=(96, 72), progress=False)
    assert out.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["clip.mp4"]


def test_bad_inputs(motion, tmp_path):
    with pytest.raises(ValueError, match="unknown video type"):
        render_motion(motion, tmp_path / "x.avi")
    with pytest.raises(ValueError, match="frames"):
        SkeletonRenderer(motion, motion[:10])
    with pytest.raises(ValueError, match="layout"):
        SkeletonRenderer(motion, motion, layout="grid")
    with pytest.raises(ValueError, match=r"\(T, 22, 3\)"):
        SkeletonRenderer(np.zeros((5, 21, 3)))
    with pytest.raises(ValueError, match="fps"):
        render_motion(np.zeros((5, 22, 3)), tmp_path / "x.mp4")
    with SkeletonRenderer(motion, size=SIZE) as r, pytest.raises(IndexError):
        r.frame(motion.num_frames)


def test_cli_render(motion, tmp_path, capsys):
    from mage.cli.main import main

    src = tmp_path / "walk.npz"
    motion[:20].save(src)
    args = ["render", str(src), "--gt", str(src), "--every", "5", "--size", "128x96", "--no-progress"]
    assert main(args + ["-o", str(tmp_path / "v.gif")]) == 0
    assert "4 frames" in capsys.readouterr().out and (tmp_path / "v.gif").is_file()
    assert main(args + ["-o", str(tmp_path / "v.avi")]) == 2
    assert "unknown video type" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "nope.npz"), "-o", str(tmp_path / "v.mp4")]) == 2
    assert "nope.npz: motion file not found" in capsys.readouterr().err
