"""``mage predict``: full-body motion for a whole file, offline or online.

    mage predict --ckpt mage-small --input walk.bvh -o walk_pred.npz
    mage predict --ckpt runs/small/final --input session.csv --frame openxr -o out.json
    mage predict --ckpt mage-small --input motion.npz -o pred.bvh --mode online --steps 4

Input: a motion file (BVH, ASF/AMC, AMASS npz, the project's npz; the head and wrist
tracking is taken from it and the motion is kept as ground truth: metrics are printed),
or a tracking log (.csv / .json, see mage.inference.tracking_log; --frame and the
offsets say how its device poses map to the SMPL joints).
Output (--format, default from the extension): npz (the project's Motion), amass
(AMASS-style SMPL-H npz), bvh, json (per-frame quaternions + joint positions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

LOG_SUFFIXES = (".csv", ".json")
# Literal copies keep `mage --help` free of torch; a test checks they match
# mage.inference.writers.FORMATS and mage.inference.device.FRAMES.
OUTPUT_FORMATS = ("npz", "amass", "bvh", "json")
DEVICE_FRAMES = ("zup", "openxr", "unity")


def add_model_arguments(p, ckpt_required: bool = True, threads: int | None = None) -> None:
    p.add_argument("--ckpt", required=ckpt_required, metavar="NAME_OR_PATH",
                   help="packaged checkpoint name or checkpoint folder (config.json + model.safetensors)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--steps", type=int, metavar="K", help="DDIM steps (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed sampling noise (default 0)")
    p.add_argument("--threads", type=int, metavar="N", default=threads,
                   help=f"CPU threads for inference (default: {threads or 'all cores'}; batch-1 streaming "
                        "gains little from more, and they slow it down when other programs share the "
                        "CPU: see benchmarks/latency)")


def add_device_arguments(p) -> None:
    p.add_argument("--frame", choices=DEVICE_FRAMES, default="zup",
                   help="native frame of the device poses: zup (project/AMASS), openxr (y-up RH, "
                        "-z forward), unity (y-up LH) (default zup)")
    for dev in ("head", "left", "right"):
        p.add_argument(f"--{dev}-offset", metavar="QX,QY,QZ,QW[;TX,TY,TZ]",
                       help=f"{dev} device-to-joint offset in the converted device frame "
                            "(default: the frame's, see mage.inference.device)")


def device_config(args):
    from mage.inference.device import DeviceConfig, Offset

    offsets = {dev: Offset.parse(getattr(args, f"{dev}_offset"))
               for dev in ("head", "left", "right") if getattr(args, f"{dev}_offset")}
    return DeviceConfig(args.frame, offsets)


def set_threads(threads: int | None) -> None:
    """torch intra-op threads (onnxruntime sessions take theirs when created)."""
    if threads is None:
        return
    if threads < 1:
        raise ValueError(f"--threads: must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(threads)


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict full-body motion for a motion file or tracking log",
                              description=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--input", required=True, metavar="FILE", help="motion file or tracking log (.csv/.json)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help="output format (default: from OUT's extension)")
    p.add_argument("--mode", choices=("offline", "online"), default="offline",
                   help="offline: overlapping windows, blended; online: causal, as streaming")
    p.add_argument("--overlap", type=int, metavar="F", help="offline window overlap in frames (default window/4)")
    p.add_argument("--batch-size", type=int, default=64, help="windows per network call (default 64)")
    p.add_argument("--max-gap", type=float, default=0.25, metavar="S",
                   help="tracking logs: interpolate gaps up to S seconds; longer ones hold, then blend")
    p.add_argument("--rig", default="auto", help="BVH / ASF-AMC joint map (see mage data)")
    p.add_argument("--body-model", metavar="PATH", help="SMPL-H model, needed for AMASS input")
    add_device_arguments(p)
    p.set_defaults(func=run)


def load_input(args):
    """(Tracking at 60 fps, ground-truth Motion or None, gap messages)."""
    import warnings

    from mage.core.tracking import Tracking
    from mage.inference import MODEL_FPS
    from mage.inference.tracking_log import load_tracking

    path = Path(args.input)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: input file not found")
    if path.suffix.lower() in LOG_SUFFIXES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the gaps are printed below
            tracking, gaps = load_tracking(path, device_config(args), max_gap=args.max_gap)
        return tracking, None, [g.describe(args.max_gap) for g in gaps]
    if args.frame != "zup" or any(getattr(args, f"{d}_offset") for d in ("head", "left", "right")):
        raise ValueError(f"{path}: --frame and offsets apply to tracking logs (.csv/.json); motion "
                         "files are read into the project frame by their importer")
    try:
        from mage.data.io import load_motion
    except ImportError:  # the data package is optional here: the project's npz still works
        if path.suffix.lower() != ".npz":
            raise ValueError(f"{path}: reading {path.suffix} files needs mage.data.io") from None
        from mage.core.motion import Motion

        motion = Motion.load(path)
    else:
        motion = load_motion(path, rig=args.rig, body_model=args.body_model)
    if motion.num_frames < 2:
        raise ValueError(f"{path}: {motion.num_frames} frame(s); need at least 2")
    motion = motion.resample(MODEL_FPS)
    return Tracking.from_motion(motion), motion, []


def print_metrics(pred, gt) -> None:
    """Print :func:`mage.evaluate.protocol.ground_truth_metrics` of the prediction."""
    from mage.evaluate.metrics import METRICS, MIN_FRAMES
    from mage.evaluate.protocol import ground_truth_metrics

    m = ground_truth_metrics(pred, gt)
    if m is None:
        print(f"metrics: skipped (need at least {MIN_FRAMES + 1} frames)")
        return
    print("metrics against the input motion (frames 1..T-1):")
    for info in METRICS:
        print(f"  {info.label:<10} {m[info.key]:10.3f} {info.unit}")


def run(args) -> int:
    import time

    from mage.inference.pretrained import load_pretrained
    from mage.inference.sequence import predict_motion
    from mage.inference.writers import format_from_path, write_motion

    fmt = args.format or format_from_path(args.output)
    set_threads(args.threads)
    tracking, gt, gap_messages = load_input(args)
    for msg in gap_messages:
        print(f"warning: {args.input}: {msg}")
    model = load_pretrained(args.ckpt, device=args.device)
    t0 = time.perf_counter()
    pred = predict_motion(model, tracking, args.mode, args.steps, args.seed, args.overlap, args.batch_size)
    dt = time.perf_counter() - t0
    pred.name = Path(args.input).stem
    print(f"predicted {pred.num_frames} frames ({pred.duration:.1f} s at {pred.fps:g} fps, "
          f"{args.mode}) in {dt:.2f} s ({pred.num_frames / dt:.0f} frames/s)")
    if gt is not None:
        print_metrics(pred, gt)
    write_motion(pred, args.output, fmt)
    print(f"wrote {args.output} ({fmt})")
    return 0
