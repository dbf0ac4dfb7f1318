"""``mage render``: a motion (optionally with its ground truth) to an MP4 or GIF video."""

from __future__ import annotations

import argparse


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 960x540, got {text!r}") from None
    return w, h


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "render", help="render a motion (and its ground truth) to an .mp4 or .gif video",
        description="Render a motion file headlessly to a video: a 3D skeleton over a floor "
                    "grid, the camera following the pelvis, the tracked head and wrists "
                    "ringed in green. With --gt, the prediction is coloured by per-joint "
                    "error. Motion files: the project's .npz (Motion.save) or any format "
                    "mage.data.io reads.")
    p.add_argument("motion", help="motion file to render (the prediction, if --gt is given)")
    p.add_argument("--gt", metavar="MOTION", help="ground-truth motion file (same frame count)")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="output video, .mp4 (H.264) or .gif; written atomically")
    p.add_argument("--fps", type=float, help="playback frame rate (default: the motion's / --every)")
    p.add_argument("--layout", choices=("side", "overlay"), default="side",
                   help="with --gt: side by side (default) or prediction over ground truth")
    p.add_argument("--every", type=int, metavar="N",
                   help="draw every N-th frame (default 1 for .mp4, <= 25 fps for .gif)")
    p.add_argument("--size", type=_size, default=(960, 540), metavar="WxH",
                   help="frame size in pixels (default 960x540)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import time
    from pathlib import Path

    from mage.viz.inputs import load_motion_file
    from mage.viz.render import VIDEO_SUFFIXES, frame_plan, render_motion

    if Path(args.output).suffix.lower() not in VIDEO_SUFFIXES:  # fail before any work
        raise ValueError(f"-o: {args.output}: unknown video type; use one of {VIDEO_SUFFIXES}")
    motion = load_motion_file(args.motion)
    gt = load_motion_file(args.gt) if args.gt else None
    if gt is not None and abs(gt.fps - motion.fps) > 1e-6:
        raise ValueError(f"--gt: {args.gt} is at {gt.fps:g} fps but {args.motion} at "
                         f"{motion.fps:g} fps; resample one of them first")
    frames, _ = frame_plan(motion.num_frames, motion.fps, Path(args.output).suffix, args.every, args.fps)
    t0 = time.perf_counter()
    path = render_motion(motion, args.output, gt=gt, fps=args.fps, layout=args.layout,
                         every=args.every, size=args.size, progress=not args.no_progress)
    elapsed = time.perf_counter() - t0
    print(f"wrote {path} ({len(frames)} frames, {elapsed / len(frames):.3f} s/frame)")
    return 0
