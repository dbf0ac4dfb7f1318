"""``mage demo``: the whole pipeline on a built-in input, in one folder, in under 30 s on
a 2-core CPU (benchmarks/demo_time).

Steps (each timed): build the input (the SYNTHETIC walk/turn/reach of
:mod:`mage.demo.synthetic`, or the user's motion file / tracking log), load the bundled
pretrained model, predict the full body offline, write the motion (npz + BVH), render a
video and a still of it (prediction beside the reference or ground truth, the colours
and legend of mage.viz.style) and write the browser viewer page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import imageio.v2 as imageio

from mage.core.atomic import atomic_path
from mage.core.tracking import Tracking
from mage.data.bvh import save_bvh
from mage.data.io import load_motion
from mage.demo.synthetic import synthetic_tracking
from mage.evaluate.protocol import ground_truth_metrics
from mage.inference import MODEL_FPS
from mage.inference.pretrained import load_pretrained
from mage.inference.sequence import predict_motion
from mage.inference.tracking_log import load_tracking
from mage.model.checkpoint_paths import DEFAULT_CHECKPOINT
from mage.viz.viewer import write_viewer_html

# The video draws every RENDER_EVERY-th frame (60 fps input -> 15 fps video): drawing is
# most of the demo's time (~20 ms a frame on an idle core, 2-3x that on a shared one),
# and 300 frames keep the demo under 30 s on a busy 2-core CPU (measured by
# benchmarks/demo_time).
RENDER_EVERY = 4
STILL_AT = 0.42  # the still (preview.png) shows this fraction of the way through
# What the demo writes (file name -> what it is; the reference file only when there is one).
OUTPUT_FILES = {
    "prediction.npz": "the predicted motion (the project's npz)",
    "prediction.bvh": "the predicted motion (BVH)",
    "synthetic_reference.npz": "the synthetic body the tracking came from (built-in input)",
    "ground_truth.npz": "the input motion resampled to 60 fps (--input of a motion file)",
    "demo.mp4": "prediction beside the reference, with a legend (demo.gif with --gif)",
    "preview.png": "one frame of that video",
    "viewer.html": "the browser viewer page (open it directly)",
}

@dataclass
class DemoResult:
    outputs: dict[str, Path] = field(default_factory=dict)  # what -> file
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall time
    metrics: dict[str, float] | None = None  # when the input has ground truth


class _Timer:
    def __init__(self, result: DemoResult, step: str, log):
        self.result, self.step, self.log = result, step, log

    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        dt = time.perf_counter() - self.t0
        self.result.seconds[self.step] = dt
        if exc[0] is None:
            self.log(f"  {self.step:<10} {dt:6.2f} s")


def run_demo(
    out_dir: str | Path,
    input_path: str | Path | None = None,
    ckpt: str = DEFAULT_CHECKPOINT,
    duration_s: float = 20.0,
    render: bool = True,
    video_format: str = "mp4",
    device: str = "cpu",
    log=print,
    rig: str = "auto",
) -> DemoResult:
    """Run the demo into ``out_dir``; returns the written files and the step timings.

    ``input_path``: None for the synthetic default; else a motion file (its ground truth
    is kept: metrics are computed and it is rendered beside the prediction) or a
    tracking log (.csv/.json in the project's z-up frame; use ``mage predict`` for
    other device frames). ``rig``: joint map of a BVH / ASF-AMC input (preset, map.json
    or "auto").
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = DemoResult()
    with _Timer(result, "input", log):
        tracking, reference, label = _demo_input(input_path, duration_s, rig)
    with _Timer(result, "model", log):
        model = load_pretrained(ckpt, device=device)
    with _Timer(result, "predict", log):
        pred = predict_motion(model, tracking)  # offline, the default SamplingOptions
        pred.name = "prediction"
    with _Timer(result, "write", log):
        result.outputs["motion (npz)"] = out / "prediction.npz"
        pred.save(result.outputs["motion (npz)"])
        result.outputs["motion (bvh)"] = out / "prediction.bvh"
        save_bvh(pred, result.outputs["motion (bvh)"])
        if reference is not None:
            result.outputs[f"{label} (npz)"] = out / f"{label.replace(' ', '_')}.npz"
            reference.save(result.outputs[f"{label} (npz)"])
    if reference is not None and label == "ground truth":
        with _Timer(result, "metrics", log):
            result.metrics = ground_truth_metrics(pred, reference)
    if render:
        # imported here: matplotlib (~0.3 s) is loaded only when the demo renders
        from mage.viz.render import render_frame, render_motion  # noqa: PLC0415

        with _Timer(result, "render", log):
            video = out / f"demo.{video_format}"
            gt_label = label or "ground truth"
            render_motion(pred, video, gt=reference, layout="side", every=RENDER_EVERY, progress=False,
                          gt_label=gt_label)
            result.outputs["video"] = video
            still = out / "preview.png"
            t = RENDER_EVERY * int(STILL_AT * (pred.num_frames - 1) / RENDER_EVERY)  # a frame of the video
            _write_png(render_frame(pred, t, reference, layout="side", gt_label=gt_label), still)
            result.outputs["still"] = still
    with _Timer(result, "viewer", log):
        motions, names = [pred], ["prediction"]
        if reference is not None:
            motions.append(reference)
            names.append(label)
        result.outputs["viewer page"] = write_viewer_html(motions, out / "viewer.html", names=names)
    return result


def _write_png(image, path: Path) -> None:
    with atomic_path(path) as tmp:
        imageio.imwrite(tmp, image, format="PNG")


def _demo_input(input_path, duration_s, rig="auto"):
    """(Tracking at the model rate, reference Motion or None, what the reference is)."""
    if input_path is None:
        tracking, reference = synthetic_tracking(duration_s=duration_s, fps=MODEL_FPS)
        return tracking, reference, "synthetic reference"
    path = Path(input_path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: input file not found")
    if path.suffix.lower() in (".csv", ".json"):
        tracking, _gaps = load_tracking(path)
        return tracking, None, ""
    motion = load_motion(path, rig=rig).resample(MODEL_FPS)
    if motion.num_frames < 2:
        raise ValueError(f"{path}: {motion.num_frames} frame(s); need at least 2")
    return Tracking.from_motion(motion), motion, "ground truth"
