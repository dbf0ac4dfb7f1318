"""The browser viewer: one self-contained HTML page per set of motions, and a local server.

:func:`write_viewer_html` embeds the motions' joint positions (millimetres, as JSON) and
a small vanilla-JS canvas renderer (``static/viewer.js``, no libraries, no network) into
``static/viewer.html``: play/pause, a timeline to scrub, speed, orbit by dragging, zoom
by wheel, a camera that follows the pelvis, skeletons side by side or overlaid, the
tracked head and wrists ringed in green, colours and legend from :mod:`mage.viz.style`
(as in the video). The file works when opened directly (file://)
and when served by :func:`serve_viewer` / :func:`start_server` on 127.0.0.1.
"""

from __future__ import annotations

import html
import json
import threading
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import numpy as np

from mage.core.atomic import atomic_write
from mage.viz.inputs import SkeletonSequence, as_sequence
from mage.viz.style import TRACKER, TRACKER_LABEL, palette


def viewer_data(motions, names=None, fps: float | None = None) -> dict:
    """The JSON document the page reads (see the header of ``static/viewer.js``).

    motions: list of Motion or (T, 22, 3) world positions; all must share a joint tree.
    names: one label per motion (default: the motion's name, else "motion i").
    fps: frame rate of the page; Motions at another rate are resampled to it (default:
        the first Motion's rate; required if all inputs are bare arrays).
    """
    if not isinstance(motions, (list, tuple)) or not motions:
        raise ValueError("motions: expected a non-empty list of Motions or (T, 22, 3) arrays")
    if names is not None and len(names) != len(motions):
        raise ValueError(f"names: {len(names)} given for {len(motions)} motions")
    rates = [float(m.fps) for m in motions if hasattr(m, "fps") and m.fps]
    if fps is None:
        if not rates:
            raise ValueError("fps: the inputs are bare position arrays with no frame rate; pass fps=")
        fps = rates[0]
    seqs: list[SkeletonSequence] = []
    for i, m in enumerate(motions):
        label = f"motions[{i}]"
        if hasattr(m, "resample") and hasattr(m, "fps") and abs(float(m.fps) - float(fps)) > 1e-6:
            m = m.resample(fps)
        seq = as_sequence(m, label, fps)
        if seqs and seq.parents != seqs[0].parents:
            raise ValueError(f"{label}: its joint tree differs from motions[0]'s")
        name = names[i] if names is not None else (seq.name if seq.name != label else f"motion {i + 1}")
        seqs.append(SkeletonSequence(seq.positions, seq.parents, seq.joint_names, seq.fps, str(name)))
    ref = seqs[0]
    return {
        "version": 1,
        "fps": float(fps),
        "num_frames": max(s.num_frames for s in seqs),
        "parents": list(ref.parents),
        "joint_names": list(ref.joint_names),
        "tracked": ref.tracked(),
        "tracker": {"color": TRACKER, "label": TRACKER_LABEL},
        "motions": [
            {"name": s.name, "num_frames": s.num_frames, "colors": palette(i),
             "positions": np.rint(s.positions * 1000.0).astype(np.int64).reshape(-1).tolist()}
            for i, s in enumerate(seqs)
        ],
    }


def render_viewer_html(motions, names=None, fps: float | None = None, title: str = "MAGE viewer") -> str:
    """The page as a string (see :func:`write_viewer_html`)."""
    data = viewer_data(motions, names, fps)
    # "<" escaped so that no name can close the <script> element early.
    blob = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
    static = resources.files("mage.viz") / "static"
    page = (static / "viewer.html").read_text(encoding="utf-8")
    js = (static / "viewer.js").read_text(encoding="utf-8")
    for key, value in (("__MAGE_TITLE__", html.escape(title)), ("__MAGE_VIEWER_JS__", js),
                       ("__MAGE_DATA__", blob)):
        if key not in page:
            raise RuntimeError(f"viewer.html template lacks the {key} placeholder")
        page = page.replace(key, value, 1)
    return page


def write_viewer_html(motions, path, names=None, fps: float | None = None,
                      title: str = "MAGE viewer") -> Path:
    """Write a self-contained viewer page for ``motions`` (atomically); returns ``path``.

    motions: list of Motion or (T, 22, 3) world positions (z-up, metres), drawn together
    (overlaid, or side by side with the page's checkbox); names: their labels; fps: see
    :func:`viewer_data`. The page needs no network access and no server.
    """
    path = Path(path)
    page = render_viewer_html(motions, names, fps, title)
    with atomic_write(path, "w", suffix=".html") as fh:
        fh.write(page)
    return path


class _PageHandler(BaseHTTPRequestHandler):
    """Serves one file at ``/`` and ``/<its name>``; nothing else (no directory listing)."""

    page_path: Path  # set on a subclass per server

    def do_GET(self):
        route = self.path.split("?", 1)[0]
        if route not in ("/", "/index.html", "/" + self.page_path.name):
            self.send_error(HTTPStatus.NOT_FOUND, "only the viewer page is served here")
            return
        body = self.page_path.read_bytes()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # quiet: no line per request
        pass


def start_server(page: str | Path, port: int = 8000, host: str = "127.0.0.1") -> tuple[ThreadingHTTPServer, str]:
    """Serve ``page`` in a background thread; returns (server, url). ``port=0`` picks a
    free port. Stop it with ``server.shutdown(); server.server_close()``."""
    page = Path(page)
    if not page.is_file():
        raise FileNotFoundError(f"{page}: no such viewer page (write it with write_viewer_html)")
    handler = type("PageHandler", (_PageHandler,), {"page_path": page.resolve()})
    try:
        server = ThreadingHTTPServer((host, int(port)), handler)
    except OSError as err:
        raise ValueError(f"cannot listen on {host}:{port} ({err.strerror or err}); "
                         "pick another port with --port, or --port 0 for any free one") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="mage-viewer", daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}/"


def serve_viewer(page: str | Path, port: int = 8000, open_browser: bool = True,
                 host: str = "127.0.0.1") -> None:
    """Serve ``page`` until Ctrl-C, optionally opening it in the default browser."""
    server, url = start_server(page, port, host)
    print(f"viewer at {url}  (Ctrl-C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:  # the normal way to stop
        print("viewer stopped", flush=True)
    finally:
        server.shutdown()
        server.server_close()
