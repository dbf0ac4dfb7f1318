"""``mage predict``: full-body motion for a whole file, offline or online.

examples:
    mage predict --input sample:walk -o walk_pred.npz              # the bundled model, a bundled clip
    mage predict --ckpt runs/small/final --input session.csv --frame openxr -o out.json
    mage predict --input sample:run -o run_pred.bvh --mode online --steps 4

Input: a motion file (BVH, ASF/AMC, AMASS npz, the project's npz; the head and wrist
tracking is taken from it and the motion is kept as ground truth: metrics are printed),
or a tracking log (.csv / .json, see mage.inference.tracking_log; --frame and the
offsets say how its device poses map to the SMPL joints).
Output (--format, default from the extension): npz (the project's Motion), amass
(AMASS-style SMPL-H npz), bvh, json (per-frame quaternions + joint positions).
"""

from __future__ import annotations

from pathlib import Path

from mage.cli.common import (
    SAMPLE_HELP,
    ExamplesHelpFormatter,
    add_ckpt_argument,
    add_threads_argument,
    check_device,
    check_threads,
    checkpoint_folder,
    describe,
    input_file,
    load_model,
    output_file,
    sampling_options,
    set_threads,
)
from mage.inference.options import (  # torch-free: `mage --help` imports no torch
    CONVENTIONS,
    MODES,
    ONLINE_CONSISTENCY,
    OUTPUT_FORMATS,
    OUTPUT_SUFFIXES,
)

LOG_SUFFIXES = (".csv", ".json")


def add_model_arguments(p, kind: str = "offline") -> None:
    """--ckpt (default: the bundled model), --device, --steps, --seed, --consistency,
    --threads (the measured default of ``kind``: "stream" or "offline")."""
    add_ckpt_argument(p)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default cpu)")
    p.add_argument("--steps", type=int, metavar="K", help="DDIM steps (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the fixed sampling noise (default 0)")
    p.add_argument("--consistency", type=float, default=ONLINE_CONSISTENCY, metavar="L",
                   help="online (predict --mode online, serve): lambda in [0, 1) of the carry-over from the "
                        f"previous frame's output (default {ONLINE_CONSISTENCY:g}, chosen for the default model; "
                        "more is smoother and lags more: full-small's online jitter falls from 2.53x to 2.21x "
                        "the ground truth's at 0.3, see its card and mage.inference.ONLINE_CONSISTENCY)")
    add_threads_argument(p, kind)


def check_model_arguments(args, **values):
    """Cheap checks of add_model_arguments' values (before any model is loaded); returns
    the SamplingOptions of the command's flags, with ``values`` for those it lacks."""
    check_threads(args.threads)
    check_device(args.device)
    return sampling_options(args, **values)


def add_device_arguments(p) -> None:
    p.add_argument("--frame", choices=CONVENTIONS, default="zup",
                   help="coordinate convention of the device poses: zup (project/AMASS), openxr (y-up RH, "
                        "-z forward), unity (y-up LH) (default zup)")
    for dev in ("head", "left", "right"):
        p.add_argument(f"--{dev}-offset", metavar="QX,QY,QZ,QW[;TX,TY,TZ]",
                       help=f"{dev} device-to-joint offset in the converted device frame "
                            "(default: the frame's, see mage.inference.device)")


def device_config(args):
    from mage.inference.device import DeviceConfig, Offset

    offsets = {dev: Offset.parse(getattr(args, f"{dev}_offset"))
               for dev in ("head", "left", "right") if getattr(args, f"{dev}_offset")}
    return DeviceConfig(convention=args.frame, offsets=offsets)


def output_format(path: str, fmt: str | None) -> str:
    """The output format: --format, else from the extension (cheap, before any import)."""
    if fmt is None:
        ext = Path(path).suffix.lower()
        if ext not in (".npz", ".bvh", ".json"):
            raise ValueError(f"{path}: cannot tell the output format from {ext or '(no extension)'!r}; "
                             f"use .npz, .bvh or .json, or pass --format ({', '.join(OUTPUT_FORMATS)})")
        output_file(path, (ext,))
        return ext[1:]
    output_file(path, (OUTPUT_SUFFIXES[fmt],), f"--format {fmt} output")
    return fmt


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="predict full-body motion for a motion file or tracking log",
                              description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    add_model_arguments(p, "offline")
    p.add_argument("--input", required=True, metavar="FILE",
                   help=f"motion file ({SAMPLE_HELP}) or tracking log (.csv/.json)")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file")
    p.add_argument("--format", choices=OUTPUT_FORMATS, help="output format (default: from OUT's extension)")
    p.add_argument("--mode", choices=MODES, default="offline",
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

    path = input_file(args.input)
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

    # Everything that can be checked cheaply, before torch is imported.
    fmt = output_format(args.output, args.format)
    args.input = str(input_file(args.input))  # sample:NAME -> its file, for every later use
    options = check_model_arguments(args)
    ckpt = checkpoint_folder(args.ckpt)

    from mage.inference.sequence import predict_motion
    from mage.inference.writers import write_motion

    set_threads(args.threads)
    tracking, gt, gap_messages = load_input(args)
    for msg in gap_messages:
        print(f"warning: {args.input}: {msg}")
    model = load_model(ckpt, device=args.device)
    t0 = time.perf_counter()
    pred = predict_motion(model, tracking, options)
    dt = time.perf_counter() - t0
    pred.name = Path(args.input).stem
    print(f"predicted {pred.num_frames} frames ({pred.duration:.1f} s at {pred.fps:g} fps, "
          f"{args.mode}) in {dt:.2f} s ({pred.num_frames / dt:.0f} frames/s)")
    if gt is not None:
        print_metrics(pred, gt)
    write_motion(pred, args.output, fmt)
    print(f"wrote {args.output} ({fmt})")
    return 0
