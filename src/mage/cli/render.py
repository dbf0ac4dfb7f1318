"""``mage render``: a motion (optionally with its ground truth) to an MP4 or GIF video.

examples:
    mage render mage_demo/prediction.npz -o pred.mp4
    mage render mage_demo/prediction.npz --gt mage_demo/synthetic_reference.npz -o side.mp4
    mage render walk_demo/prediction.npz --gt walk_demo/ground_truth.npz --layout overlay --error-colors -o overlay.gif
    mage render sample:jump -o jump.gif              # a motion file as it is (here a bundled clip)

Renders a motion file headlessly to a video: a 3D skeleton over a floor grid, the camera
following the pelvis. Colours (the same in mage view): the prediction blue (left) / red
(right), the reference or ground truth (--gt) cyan (left) / orange (right), body centre
grey; the tracked head and wrists (the model's input) ringed in green; a legend says so.
--error-colors colours the prediction by per-joint error instead (with a colour bar).
Motion files: the project's .npz (Motion.save), any format mage.data.io reads, or
sample:NAME (a clip shipped with the package, mage.data.samples).
"""

from __future__ import annotations

import argparse

from mage.cli.common import ExamplesHelpFormatter, describe


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 960x540, got {text!r}") from None
    return w, h


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "render", help="render a motion (and its ground truth) to an .mp4 or .gif video",
        description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    p.add_argument("motion", help="motion file to render (the prediction, if --gt is given)")
    p.add_argument("--gt", metavar="MOTION", help="ground-truth motion file (same frame count)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output video, .mp4 (H.264) or .gif; written atomically")
    p.add_argument("--fps", type=float, help="playback frame rate (default: the motion's / --every)")
    p.add_argument("--layout", choices=("side", "overlay"), default="side",
                   help="with --gt: side by side (default) or prediction over ground truth")
    p.add_argument("--error-colors", action="store_true",
                   help="with --gt: colour the prediction by per-joint position error (colour bar)")
    p.add_argument("--every", type=int, metavar="N",
                   help="draw every N-th frame (default 1 for .mp4, <= 25 fps for .gif)")
    p.add_argument("--size", type=_size, default=(960, 540), metavar="WxH",
                   help="frame size in pixels (default 960x540)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import time
    from pathlib import Path

    from mage.cli.common import input_file, output_file
    from mage.viz import VIDEO_SUFFIXES  # torch- and matplotlib-free

    output_file(args.output, VIDEO_SUFFIXES, "video")
    args.motion = str(input_file(args.motion, "motion"))  # sample:NAME -> its file
    if args.gt:
        args.gt = str(input_file(args.gt, "motion"))
    if args.error_colors and not args.gt:
        raise ValueError("--error-colors needs --gt (the errors are against the ground truth)")
    if args.every is not None and args.every < 1:
        raise ValueError(f"--every: expected a positive integer, got {args.every}")

    from mage.viz.inputs import load_motion_file
    from mage.viz.render import frame_plan, render_motion

    motion = load_motion_file(args.motion)
    gt = load_motion_file(args.gt) if args.gt else None
    if gt is not None and abs(gt.fps - motion.fps) > 1e-6:
        raise ValueError(f"{args.gt} is at {gt.fps:g} fps but {args.motion} at "
                         f"{motion.fps:g} fps; resample one of them first")
    if gt is not None and gt.num_frames != motion.num_frames:
        raise ValueError(f"{args.gt} has {gt.num_frames} frames but {args.motion} has "
                         f"{motion.num_frames}; they must match frame for frame")
    frames, _ = frame_plan(motion.num_frames, motion.fps, Path(args.output).suffix, args.every, args.fps)
    t0 = time.perf_counter()
    path = render_motion(motion, args.output, gt=gt, fps=args.fps, layout=args.layout,
                         every=args.every, size=args.size, progress=not args.no_progress,
                         color_by="error" if args.error_colors else "side",
                         gt_label=Path(args.gt).stem if args.gt else "ground truth")
    elapsed = time.perf_counter() - t0
    print(f"wrote {path} ({len(frames)} frames, {elapsed / len(frames):.3f} s/frame)")
    return 0
