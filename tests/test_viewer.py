"""The browser viewer: the page embeds the motions faithfully, needs no network, is
served on localhost only, and (in a real headless Chromium) animates and draws."""

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest

from mage.demo.synthetic import synthetic_motion
from mage.viz.viewer import (
    render_viewer_html,
    start_server,
    viewer_data,
    write_viewer_html,
)


@pytest.fixture(scope="module")
def motion():
    return synthetic_motion(duration_s=5.0, fps=30, seed=0)


def _embedded(page: str) -> dict:
    m = re.search(r'<script id="mage-data" type="application/json">(.*?)</script>', page, re.DOTALL)
    assert m, "no embedded data"
    return json.loads(m.group(1))


def test_data_round_trip(motion):
    P = motion.joint_positions().numpy()
    arr = P[:40] + [1.0, 0.0, 0.0]  # a bare array, shorter
    d = viewer_data([motion, arr], names=["walk", "copy"])
    assert d["fps"] == 30 and d["num_frames"] == motion.num_frames
    assert d["tracked"] == [15, 20, 21] and d["parents"][0] == -1 and len(d["joint_names"]) == 22
    a, b = d["motions"]
    assert (a["name"], a["num_frames"], b["name"], b["num_frames"]) == ("walk", 150, "copy", 40)
    back = np.array(a["positions"]).reshape(-1, 22, 3) / 1000
    assert np.abs(back - P).max() <= 0.0005 + 1e-9  # millimetres


def test_resamples_to_a_common_rate(motion):
    fast = synthetic_motion(duration_s=5.0, fps=60, seed=0)
    d = viewer_data([motion, fast])
    assert d["fps"] == 30 and [m["num_frames"] for m in d["motions"]] == [150, 150]
    with pytest.raises(ValueError, match="fps"):
        viewer_data([np.zeros((3, 22, 3))])
    with pytest.raises(ValueError, match="names"):
        viewer_data([motion], names=["a", "b"])


def test_page_is_self_contained_and_escapes_names(motion, tmp_path):
    nasty = "</script><script>alert(1)</script>"
    page = render_viewer_html([motion], names=[nasty])
    assert nasty not in page
    assert _embedded(page)["motions"][0]["name"] == nasty  # yet the label survives
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)  # no CDN, no fetch
    assert "fetch(" not in page and "XMLHttpRequest" not in page
    out = write_viewer_html([motion], tmp_path / "v.html")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["v.html"]


def test_server_serves_only_the_page(motion, tmp_path):
    page = write_viewer_html([motion], tmp_path / "v.html")
    (tmp_path / "secret.txt").write_text("x")
    server, url = start_server(page, port=0)
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=5) as r:
            assert r.status == 200 and "mage-data" in r.read().decode()
        for path in ("secret.txt", "../v.html", "v.html/../secret.txt"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(url + path, timeout=5)
            assert err.value.code == 404
        port = server.server_address[1]
        with pytest.raises(ValueError, match="--port"):
            start_server(page, port=port)
    finally:
        server.shutdown()
        server.server_close()


def test_cli_view_writes_page(motion, tmp_path, capsys):
    from mage.cli.main import main

    src = tmp_path / "walk.npz"
    motion[:10].save(src)
    assert main(["view", str(src), "--out", str(tmp_path / "p.html"), "--no-serve"]) == 0
    d = _embedded((tmp_path / "p.html").read_text(encoding="utf-8"))
    assert d["motions"][0]["name"] == "walk" and d["num_frames"] == 10
    assert main(["view", str(src), "--no-serve"]) == 2
    assert "--out" in capsys.readouterr().err


# --- in a real browser ---------------------------------------------------------------
def _chromium() -> str | None:
    for name in (os.environ.get("MAGE_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def _run_chromium(tmp_path, *args) -> subprocess.CompletedProcess:
    exe = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--hide-scrollbars", f"--user-data-dir={tmp_path / 'chrome-profile'}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=60,
                          check=False)


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="chromium is not installed")


@pytest.mark.slow
@needs_chromium
def test_browser_animates_served_page(motion, tmp_path):
    page = write_viewer_html([motion], tmp_path / "v.html")
    server, url = start_server(page, port=0)
    try:
        out = _run_chromium(tmp_path, "--virtual-time-budget=3000", "--dump-dom", url)
        paused = _run_chromium(tmp_path, "--virtual-time-budget=1000", "--dump-dom", url + "#frame=7&paused")
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0, out.stderr[-2000:]
    title = re.search(r"<title>MAGE viewer · frame (\d+)</title>", out.stdout)
    assert title, out.stdout[:500]
    assert int(title.group(1)) > 0  # playing: the frame advanced from 0
    assert re.search(f'data-frame="{title.group(1)}"', out.stdout)
    assert "<title>MAGE viewer · frame 7</title>" in paused.stdout  # paused stays put


@pytest.mark.slow
@needs_chromium
def test_browser_screenshot_shows_skeleton(motion, tmp_path):
    from PIL import Image

    page = write_viewer_html([motion], tmp_path / "v.html")
    shot = tmp_path / "shot.png"
    out = _run_chromium(tmp_path, "--window-size=800,600", "--virtual-time-budget=1000",
                        f"--screenshot={shot}", page.as_uri())
    assert out.returncode == 0 and shot.is_file(), out.stderr[-2000:]
    img = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    assert img.shape[:2] == (600, 800)
    background = np.array([0xFA, 0xFA, 0xFA])
    assert (np.abs(img - background).sum(-1) > 30).mean() > 0.01  # not blank

    def count(hex_color):
        rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
        return int((np.linalg.norm(img - rgb, axis=-1) < 40).sum())

    assert count("#1f77b4") > 100  # left limbs
    assert count("#d62728") > 100  # right limbs
    assert count("#19b34a") > 50   # tracker rings

