"""Headless skeleton rendering to images, MP4 and GIF (matplotlib Agg, no display).

- :func:`render_frame` draws one frame into an (H, W, 3) uint8 array;
- :func:`render_motion` writes a whole motion to ``.mp4`` (imageio-ffmpeg) or ``.gif``,
  atomically, with a progress bar;
- :class:`SkeletonRenderer` is the reusable drawing machinery behind both: one figure,
  its artists created once and updated each frame (``set_segments``, ``set_offsets`` +
  ``set_3d_properties``), which is several times faster than redrawing from scratch.

Picture: world z-up; a 0.5 m floor grid; a camera centred on the pelvis (of the ground
truth when there is one) so a walking body stays in view; the colours of
:mod:`mage.viz.style`, the same as the browser viewer's: the prediction blue (left) / red
(right), the reference or ground truth cyan (left) / orange (right), centre bones grey;
the tracked head and wrists ringed in green; a legend at the bottom says so. With a
ground truth the prediction is drawn beside it (``layout="side"``) or over it
(``"overlay"``); ``color_by="error"`` colours the prediction by per-joint position error
instead (cm, with a colour bar).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import imageio.v2 as imageio
import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from mpl_toolkits.mplot3d import proj3d
from mpl_toolkits.mplot3d.art3d import Line3DCollection
from tqdm.auto import tqdm

from mage.core.atomic import atomic_path
from mage.viz import VIDEO_SUFFIXES
from mage.viz.inputs import SkeletonSequence, as_sequence
from mage.viz.style import PREDICTION, REFERENCE, TRACKER, TRACKER_LABEL

LEFT_COLOR = PREDICTION["left"]
RIGHT_COLOR = PREDICTION["right"]
CENTER_COLOR = PREDICTION["center"]
TRACKER_COLOR = TRACKER
GRID_COLOR = "#c8c8c8"
SHADOW_COLOR = "#e2e2e2"
ERROR_CMAP = "plasma"
LAYOUTS = ("side", "overlay")
COLOR_BY = ("side", "error")
GRID_STEP_M = 0.5
# GIF frame delays are whole centiseconds and browsers slow delays under 20 ms down to
# 100 ms, so GIFs get at most 25 fps by default (60 fps input -> every 3rd frame, 50 ms).
GIF_MAX_FPS = 25.0


class SkeletonRenderer:
    """Draws frames of a motion, optionally with its ground truth, into RGB arrays.

    motion, gt: Motion, SkeletonSequence or (T, 22, 3) positions; gt (if given) must
        have the same skeleton and frame count.
    layout: "side" (prediction left, ground truth right) or "overlay"; ignored without gt.
    size: (width, height) in pixels (rounded up to even numbers, as video codecs need).
    fps: frame rate for the time read-out (default: the motion's, if it has one).
    radius: half-width in metres of the floor square the camera keeps around the pelvis;
        height: metres of world shown above the floor; zoom: matplotlib's 3D zoom.
    elev, azim: camera angles in degrees (matplotlib's convention; the default looks at
        a person facing -y from their front left).
    color_by: "side" (the palettes of mage.viz.style) or "error" (the prediction coloured
        by per-joint position error against gt, with a colour bar; needs gt).
    error_max_cm: top of the error colour scale (default: the 99th percentile of the
        errors over the whole motion, at least 5 cm), fixed for all frames.
    gt_label: what the reference motion is called in the panel titles and the legend
        (e.g. "synthetic reference" when it is not captured ground truth).
    legend: draw the legend at the bottom.
    """

    def __init__(self, motion, gt=None, *, layout: str = "side", size=(960, 540),
                 fps: float | None = None, radius: float = 0.8, height: float = 1.9,
                 elev: float = 10.0, azim: float = -60.0, zoom: float = 1.3,
                 error_max_cm: float | None = None, gt_label: str = "ground truth",
                 color_by: str = "side", legend: bool = True):
        if layout not in LAYOUTS:
            raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")
        if color_by not in COLOR_BY:
            raise ValueError(f"color_by: expected one of {COLOR_BY}, got {color_by!r}")
        if color_by == "error" and gt is None:
            raise ValueError("color_by='error' needs a ground truth (gt=)")
        self._set_sequences(motion, gt, fps)
        self.layout = layout
        self.radius = float(radius)
        self.height_m = float(height)
        self.zoom = float(zoom)
        w, h = (int(v) for v in size)
        if w < 64 or h < 64:
            raise ValueError(f"size: expected at least 64x64 pixels, got {w}x{h}")
        self.width, self.height = w + w % 2, h + h % 2
        self._set_errors(error_max_cm)
        self._make_figure()
        self._add_panels(layout, color_by, gt_label, elev, azim, legend)
        if color_by == "error":
            self._add_colorbar()
        legend_artist = self._add_legend(gt_label if self.gt is not None else None, color_by) if legend else None
        self._prerender_static(legend_artist)
        self.current = None  # the frame drawn last

    # --- construction -----------------------------------------------------------------
    def _set_sequences(self, motion, gt, fps) -> None:
        """``pred``, ``gt`` (or None) and ``fps``; ValueError if gt does not match."""
        self.pred = as_sequence(motion, "motion", fps)
        self.gt = None if gt is None else as_sequence(gt, "gt", fps)
        if self.gt is not None:
            if self.gt.parents != self.pred.parents:
                raise ValueError("gt: its skeleton (joint tree) differs from the motion's")
            if self.gt.num_frames != self.pred.num_frames:
                raise ValueError(
                    f"gt: has {self.gt.num_frames} frames but the motion has "
                    f"{self.pred.num_frames}; resample or slice them to match"
                )
        self.fps = self.pred.fps or (self.gt.fps if self.gt is not None else None)

    def _set_errors(self, error_max_cm: float | None) -> None:
        """With a gt: per-joint errors (T, J) in cm and the top of their colour scale."""
        self.errors_cm = None  # (T, J) per-joint error in cm, with a gt
        self.cmap = self.norm = None  # error colours, with a gt
        if self.gt is not None:
            self.errors_cm = 100.0 * np.linalg.norm(self.pred.positions - self.gt.positions, axis=-1)
            top = np.percentile(self.errors_cm, 99) if error_max_cm is None else error_max_cm
            self.error_max_cm = max(float(top), 5.0 if error_max_cm is None else 1e-6)

    def _make_figure(self) -> None:
        """The figure, its frame read-out, and the camera path (the reference's pelvis)."""
        self.fig = Figure(figsize=(self.width / 100, self.height / 100), dpi=100, facecolor="white")
        FigureCanvasAgg(self.fig)
        self._frame_text = self.fig.text(0.012, 0.975, "", va="top", ha="left", family="monospace",
                                         fontsize=10, color="#222222")
        self._panels: list[_Panel] = []
        self._titles = []  # the panels' title texts
        self._legend_strip = None  # (rows, W, 3) pixels of the legend, pasted into each frame
        self._title_strip = None  # (rows, W, 3) pixels of the titles and (rows, W) where they are
        ref = self.gt if self.gt is not None else self.pred
        self._centre = ref.positions[:, ref.root(), :2]  # (T, 2) camera follows this

    def _add_panels(self, layout: str, color_by: str, gt_label: str, elev: float, azim: float,
                    legend: bool) -> None:
        """One panel without a gt; with one, two side by side or one overlaid."""
        pred_mode = "error" if color_by == "error" else "prediction"
        bottom = 0.07 if legend else 0.0
        width = 0.92 if color_by == "error" else 1.0  # room for the colour bar
        if self.gt is None:
            self._add_panel([0.0, bottom, 1.0, 0.94 - bottom], [(self.pred, "prediction")], None, elev, azim)
        elif layout == "side":
            # narrower panels: zoom out so that the floor squares do not overlap
            half = width / 2
            # prediction left, reference right: the order of the viewer's "side by side"
            self._add_panel([0.0, bottom, half, 0.94 - bottom], [(self.pred, pred_mode)], "prediction",
                            elev, azim, 0.8)
            self._add_panel([half, bottom, half, 0.94 - bottom], [(self.gt, "reference")], gt_label,
                            elev, azim, 0.8)
        else:
            self._add_panel([0.0, bottom, width, 0.94 - bottom],
                            [(self.gt, "reference"), (self.pred, pred_mode)],
                            f"prediction over {gt_label}", elev, azim)
    def _add_panel(self, rect, layers, title, elev, azim, zoom_factor=1.0):
        ax = self.fig.add_axes(rect, projection="3d", computed_zorder=False)
        ax.set_axis_off()
        ax.view_init(elev=elev, azim=azim)
        r, top = self.radius, self.height_m
        ax.set_zlim(0.0, top)
        ax.set_box_aspect((2 * r, 2 * r, top), zoom=self.zoom * zoom_factor)  # metric: no distortion
        if title:
            self._titles.append(ax.text2D(0.5, 0.97, title, transform=ax.transAxes, ha="center", va="top",
                                          fontsize=11))
        self._panels.append(_Panel(self, ax, layers))

    def _add_colorbar(self):
        self.norm = Normalize(0.0, self.error_max_cm)
        # plasma without its pale-yellow top, which vanishes on white
        self.cmap = ListedColormap(matplotlib.colormaps[ERROR_CMAP](np.linspace(0.0, 0.88, 256)))
        cax = self.fig.add_axes([0.93, 0.12, 0.018, 0.7])
        cb = self.fig.colorbar(ScalarMappable(self.norm, self.cmap), cax=cax, extend="max")
        cb.set_label("joint position error (cm)", fontsize=9)
        cb.ax.tick_params(labelsize=8)

    def _add_legend(self, gt_label: str | None, color_by: str):
        def bone(color, label):
            return Line2D([], [], color=color, linewidth=3.2, label=label)

        if color_by == "error":
            handles = [bone(self.cmap(0.15), "prediction (colour = error, cm)")]
        else:
            handles = [bone(PREDICTION["left"], "prediction left"), bone(PREDICTION["right"], "prediction right")]
        if gt_label is not None:
            handles += [bone(REFERENCE["left"], f"{gt_label} left"), bone(REFERENCE["right"], f"{gt_label} right")]
        handles.append(Line2D([], [], linestyle="none", marker="o", markersize=10, markerfacecolor="none",
                              markeredgecolor=TRACKER, markeredgewidth=2.2, label=TRACKER_LABEL))
        return self.fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False,
                               fontsize=8.5, handlelength=1.6, columnspacing=1.2, borderaxespad=0.3)

    def _prerender_static(self, legend) -> None:
        """Text is the slowest thing matplotlib draws, and the legend and the titles never
        change: draw them once on an empty figure, keep their pixels, paste them into every
        frame (the legend's strip at the bottom; the titles' pixels at the top)."""
        static = [a for a in (legend, *self._titles) if a is not None]
        if not static:
            return
        hidden = [a for a in (*self._panels_axes(), self._frame_text) if a.get_visible()]
        for a in hidden:
            a.set_visible(False)
        for t in self._titles:  # titles belong to hidden axes: show them on the figure alone
            t.remove()
            self.fig.add_artist(t)
        self.fig.canvas.draw()
        image = np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()
        if legend is not None:
            rows = min(self.height, int(math.ceil(legend.get_window_extent().height)) + 4)
            self._legend_strip = image[self.height - rows:]
            legend.set_visible(False)
        if self._titles:
            top = max(self.height - int(t.get_window_extent().y0) for t in self._titles) + 2
            strip = image[:top]
            self._title_strip = (strip, (strip < 250).any(axis=-1))
            for t in self._titles:
                t.set_visible(False)
        for a in hidden:
            a.set_visible(True)

    def _panels_axes(self):
        return [p.ax for p in self._panels]

    # --- drawing ------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.pred.num_frames

    def frame(self, t: int) -> np.ndarray:
        """Draw frame ``t`` and return it as an (H, W, 3) uint8 RGB array."""
        T = self.num_frames
        if not -T <= t < T:
            raise IndexError(f"frame {t} is out of range for a motion of {T} frames")
        t = t % T
        cx, cy = self._centre[t]
        for panel in self._panels:
            panel.update(t, cx, cy)
        label = f"frame {t:>{len(str(T - 1))}d}/{T - 1}"
        if self.fps:
            label += f"   t = {t / self.fps:6.2f} s"
        if self.errors_cm is not None:
            label += f"   mean joint error {self.errors_cm[t].mean():5.1f} cm"
        self._frame_text.set_text(label)
        self.fig.canvas.draw()
        self.current = t
        rgb = np.asarray(self.fig.canvas.buffer_rgba())[..., :3].copy()
        if self._legend_strip is not None:
            rgb[self.height - len(self._legend_strip):] = self._legend_strip
        if self._title_strip is not None:
            pixels, where = self._title_strip
            rgb[: len(pixels)][where] = pixels[where]
        return rgb

    def project(self, points, panel: int = 0) -> np.ndarray:
        """Pixel coordinates (x right, y down), shape (N, 2), of world ``points`` (N, 3)
        as drawn in ``panel`` by the last :meth:`frame` call (for tests and overlays)."""
        if self.current is None:
            raise RuntimeError("project(): draw a frame first")
        ax = self._panels[panel].ax
        p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        x, y, _ = proj3d.proj_transform(p[:, 0], p[:, 1], p[:, 2], ax.get_proj())
        disp = ax.transData.transform(np.column_stack([x, y]))
        return np.column_stack([disp[:, 0], self.height - disp[:, 1]])

    def close(self) -> None:
        self.fig.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class _Layer:
    """One skeleton in a panel and its artists. mode: "prediction" or "reference" (the
    palettes of mage.viz.style, by body side) or "error" (coloured by per-joint error)."""

    seq: SkeletonSequence
    mode: str
    bones: np.ndarray  # (B, 2) parent, child
    shadow: object     # Line3DCollection on the floor
    lines: object      # Line3DCollection, the bones
    joints: object     # Path3DCollection, the joints
    rings: object      # Path3DCollection around the tracked joints, or None
    tracked: list


class _Panel:
    """One 3D axes: a floor grid, shadows, and one or more skeleton layers."""

    def __init__(self, owner: SkeletonRenderer, ax, layers):
        self.owner, self.ax = owner, ax
        self.grid = Line3DCollection([], colors=GRID_COLOR, linewidths=0.8, zorder=0)
        ax.add_collection3d(self.grid, autolim=False)
        self.layers: list[_Layer] = []
        overlay = len(layers) > 1
        for seq, mode in layers:
            bones, side = np.array(seq.bones()), seq.side()
            palette = REFERENCE if mode == "reference" else PREDICTION
            under = overlay and mode == "reference"  # drawn under the prediction, translucent
            shadow = Line3DCollection([], colors=SHADOW_COLOR, linewidths=3.0, zorder=1)
            ax.add_collection3d(shadow, autolim=False)
            bone_colors = [_side_color(side[j], palette) for j in bones[:, 1]]
            alpha = 0.6 if under else 1.0
            lines = Line3DCollection([], colors=bone_colors, linewidths=3.2, alpha=alpha, zorder=2)
            ax.add_collection3d(lines, autolim=False)
            joints = ax.scatter([], [], [], s=16, depthshade=False, zorder=3, alpha=alpha)
            joints.set_facecolor([_side_color(s, palette) for s in side])
            joints.set_edgecolor("none")
            tracked = seq.tracked()
            rings = None
            if tracked and not under:
                rings = ax.scatter([], [], [], s=150, facecolors="none", edgecolors=TRACKER_COLOR,
                                   linewidths=2.4, depthshade=False, zorder=4)
            self.layers.append(_Layer(seq, mode, bones, shadow, lines, joints, rings, tracked))

    def update(self, t: int, cx: float, cy: float) -> None:
        """Move the camera to (cx, cy) and every artist to frame ``t``."""
        r, ax = self.owner.radius, self.ax
        ax.set_xlim(cx - r, cx + r)
        ax.set_ylim(cy - r, cy + r)
        # floor grid: world-fixed lines (multiples of the step) clipped to the view box
        step = GRID_STEP_M
        xs = np.arange(math.ceil((cx - r) / step), math.floor((cx + r) / step) + 1) * step
        ys = np.arange(math.ceil((cy - r) / step), math.floor((cy + r) / step) + 1) * step
        segs = [[(x, cy - r, 0.0), (x, cy + r, 0.0)] for x in xs]
        segs += [[(cx - r, y, 0.0), (cx + r, y, 0.0)] for y in ys]
        self.grid.set_segments(segs)
        for layer in self.layers:
            P = layer.seq.positions[t]  # (J, 3)
            b = layer.bones
            seg = np.stack([P[b[:, 0]], P[b[:, 1]]], axis=1)  # (B, 2, 3)
            layer.lines.set_segments(seg)
            flat = seg.copy()
            flat[..., 2] = 0.0
            layer.shadow.set_segments(flat)
            layer.joints.set_offsets(P[:, :2])
            layer.joints.set_3d_properties(P[:, 2], "z")
            if layer.mode == "error":
                err = self.owner.errors_cm[t]  # (J,)
                cmap, norm = self.owner.cmap, self.owner.norm
                layer.joints.set_facecolor(cmap(norm(err)))
                layer.lines.set_color(cmap(norm(0.5 * (err[b[:, 0]] + err[b[:, 1]]))))
            if layer.rings is not None:
                k = layer.tracked
                layer.rings.set_offsets(P[k, :2])
                layer.rings.set_3d_properties(P[k, 2], "z")


def _side_color(side: str, palette: dict[str, str] = PREDICTION) -> str:
    return palette.get(side, palette["center"])


def render_frame(motion, t: int = 0, gt=None, *, layout: str = "side", size=(960, 540),
                 fps: float | None = None, **style) -> np.ndarray:
    """One frame as an (H, W, 3) uint8 RGB array (see :class:`SkeletonRenderer` for the
    arguments; ``style`` passes radius, height, elev, azim, zoom, error_max_cm)."""
    with SkeletonRenderer(motion, gt, layout=layout, size=size, fps=fps, **style) as r:
        return r.frame(t)


def render_motion(motion, path, gt=None, fps: float | None = None, layout: str = "side",
                  every: int | None = None, size=(960, 540), *, progress: bool = True,
                  **style) -> Path:
    """Render a motion (and optionally its ground truth) to an ``.mp4`` or ``.gif`` video.

    motion, gt: Motion or (T, 22, 3) world positions (same frame count).
    path: output file; the suffix picks the format. Written atomically: the file appears
        complete or not at all.
    fps: playback frame rate of the video (default: the motion's rate / ``every``).
    every: draw every n-th frame (default 1 for MP4; for GIF the smallest step that keeps
        the rate at or below 25 fps: GIF delays are whole centiseconds).
    size: (width, height) pixels. ``progress``: show a tqdm bar. ``style``: see
        :class:`SkeletonRenderer` (radius, height, elev, azim, zoom, error_max_cm, gt_label,
        color_by, legend).
    returns: the path written.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in VIDEO_SUFFIXES:
        raise ValueError(f"{path}: unknown video type {suffix!r}; use one of {VIDEO_SUFFIXES}")
    renderer = SkeletonRenderer(motion, gt, layout=layout, size=size, **style)
    try:
        indices, fps = frame_plan(renderer.num_frames, renderer.fps, suffix, every, fps)
        with atomic_path(path) as tmp, _video_writer(tmp, suffix, fps) as write:
            for t in tqdm(indices, desc=f"render {path.name}", unit="frame", disable=not progress,
                          leave=False):
                write(renderer.frame(t))
    finally:
        renderer.close()
    return path


def frame_plan(num_frames: int, src_fps: float | None, suffix: str, every: int | None = None,
               fps: float | None = None) -> tuple[range, float]:
    """Which frames a video gets and its playback rate (see :func:`render_motion`)."""
    if every is None:
        every = 1
        if suffix.lower() == ".gif" and src_fps and fps is None:
            every = max(1, math.ceil(src_fps / GIF_MAX_FPS - 1e-9))
    if int(every) != every or every < 1:
        raise ValueError(f"every: expected a positive integer, got {every!r}")
    every = int(every)
    if fps is None:
        if src_fps is None:
            raise ValueError("fps: the input has no frame rate (a bare positions array); pass fps=")
        fps = src_fps / every
    if not (math.isfinite(float(fps)) and float(fps) > 0):
        raise ValueError(f"fps: must be a positive frame rate, got {fps!r}")
    return range(0, num_frames, every), float(fps)


@contextlib.contextmanager
def _video_writer(tmp: str, suffix: str, fps: float):
    """Yield ``write(frame)`` for an MP4 (H.264, yuv420p) or an endlessly looping GIF."""
    if suffix == ".mp4":
        writer = imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                    pixelformat="yuv420p", macro_block_size=2, quality=7,
                                    ffmpeg_log_level="error", output_params=["-movflags", "+faststart"])
    else:
        writer = imageio.get_writer(tmp, format="GIF", mode="I", duration=1000.0 / fps, loop=0)
    try:
        yield writer.append_data
    finally:
        writer.close()
