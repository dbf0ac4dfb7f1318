"""``mage demo``: run the bundled model on a built-in input (no data, no download)."""

from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "demo", help="run the bundled model on a built-in synthetic input (or your file) and render it",
        description="Predicts full-body motion for a SYNTHETIC head + controller trajectory (a person "
                    "walking, turning and reaching; made up, not captured) or for --input, and writes "
                    "the motion (npz, BVH), a video and a browser viewer page into --out.")
    p.add_argument("--input", metavar="FILE", help="motion file (.bvh/.amc/.npz) or tracking log (.csv/.json)")
    p.add_argument("-o", "--out", default="mage_demo", help="output folder (default ./mage_demo)")
    p.add_argument("--ckpt", default="cmu-small", metavar="NAME_OR_PATH",
                   help="packaged checkpoint name or checkpoint folder (default cmu-small)")
    p.add_argument("--duration", type=float, default=20.0, metavar="S",
                   help="length of the synthetic input in seconds (default 20)")
    p.add_argument("--gif", action="store_true", help="render a GIF instead of an MP4")
    p.add_argument("--no-render", action="store_true", help="skip the video")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from mage.demo.run import run_demo

    t0 = time.perf_counter()
    print("mage demo" + (f": {args.input}" if args.input else
                         ": SYNTHETIC input (procedural walk, turn and reach; not captured data)"))
    result = run_demo(args.out, args.input, args.ckpt, args.duration, render=not args.no_render,
                      video_format="gif" if args.gif else "mp4", device=args.device)
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
