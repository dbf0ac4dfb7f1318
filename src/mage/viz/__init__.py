"""Looking at motions: headless videos and a browser viewer.

- ``mage.viz.render``: :func:`render_frame` (one RGB frame), :func:`render_motion`
  (``.mp4`` / ``.gif``, atomic), :class:`SkeletonRenderer` (matplotlib Agg, no display);
- ``mage.viz.viewer``: :func:`write_viewer_html` (a self-contained page, no network) and
  :func:`serve_viewer` (127.0.0.1);
- ``mage.viz.inputs``: what both accept (a Motion or (T, 22, 3) positions) and
  :func:`load_motion_file`.

Importing this package is cheap; the names above load their module on first use.
"""

import importlib

# The video files render_motion writes, named here (without matplotlib) for `mage render`.
VIDEO_SUFFIXES = (".mp4", ".gif")

_LAZY = {
    "render_frame": "mage.viz.render",
    "render_motion": "mage.viz.render",
    "SkeletonRenderer": "mage.viz.render",
    "write_viewer_html": "mage.viz.viewer",
    "serve_viewer": "mage.viz.viewer",
    "load_motion_file": "mage.viz.inputs",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mage.viz' has no attribute {name!r}")
