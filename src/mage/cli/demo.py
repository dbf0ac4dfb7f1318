"""``mage demo``: run the bundled model on a built-in input (no data, no download).

examples:
    mage demo                                   # SYNTHETIC input -> ./mage_demo/
    mage demo --input sample:walk -o walk_demo  # a real captured walk shipped with the package
    mage demo --input sample:jump -o jump_demo --gif
    mage demo --duration 10 --gif

Predicts full-body motion for a SYNTHETIC head + controller trajectory (a person walking,
turning and reaching; made up, not captured) or for --input (a motion file: its ground
truth is kept, metrics are printed and it is drawn beside the prediction; or a tracking
log), and writes the motion (npz, BVH), a video, a still of it and a browser viewer page
into --out.
"""

from __future__ import annotations

from mage.cli.common import (
    SAMPLE_HELP,
    ExamplesHelpFormatter,
    add_ckpt_argument,
    add_threads_argument,
    describe,
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the bundled model on a built-in synthetic input (or your file) and render it",
        description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    p.add_argument("--input", metavar="FILE",
                   help=f"motion file (.bvh/.amc/.npz; {SAMPLE_HELP}) or tracking log (.csv/.json)")
    p.add_argument("--rig", default="auto",
                   help="--input BVH/ASF-AMC joint map: preset name or map.json (default auto)")
    p.add_argument("-o", "--out", default="mage_demo", help="output folder (default ./mage_demo)")
    add_ckpt_argument(p)
    p.add_argument("--duration", type=float, default=20.0, metavar="S",
                   help="length of the synthetic input in seconds (default 20)")
    p.add_argument("--gif", action="store_true", help="render a GIF instead of an MP4")
    p.add_argument("--no-render", action="store_true", help="skip the video")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    add_threads_argument(p, "offline")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from mage.cli.common import check_device, checkpoint_folder, input_file, output_folder, set_threads

    t0 = time.perf_counter()
    input_path = input_file(args.input) if args.input is not None else None  # sample:NAME -> its file
    if not 0 < args.duration <= 600:
        raise ValueError(f"--duration: expected 0 < S <= 600 seconds, got {args.duration:g}")
    output_folder(args.out)
    check_device(args.device)
    ckpt = checkpoint_folder(args.ckpt)
    set_threads(args.threads)

    from mage.demo.run import run_demo

    print("mage demo" + (f": {args.input}" if args.input else
                         ": SYNTHETIC input (procedural walk, turn and reach; not captured data)"))
    result = run_demo(args.out, input_path, ckpt, args.duration, render=not args.no_render,
                      video_format="gif" if args.gif else "mp4", device=args.device, rig=args.rig)
    if result.metrics:
        from mage.evaluate.metrics import METRICS

        print("metrics against the input's ground truth (frames 1..T-1):")
        for info in METRICS:
            print(f"  {info.label:<10} {result.metrics[info.key]:10.3f} {info.unit}")
    print("wrote:")
    for what, path in result.outputs.items():
        print(f"  {what:<26} {path}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
