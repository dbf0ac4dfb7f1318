"""``mage view``: look at motions in 3D in the browser (a local, self-contained page).

examples:
    mage view mage_demo/prediction.npz mage_demo/synthetic_reference.npz
    mage view walk_demo/prediction.npz walk_demo/ground_truth.npz --names prediction "ground truth" --port 0
    mage view sample:walk sample:run --out clips.html --no-serve   # bundled clips, as a page to open

Writes a self-contained HTML viewer for one or more motion files (drawn together, e.g. a
prediction and its ground truth) and serves it on 127.0.0.1. Play/pause, timeline,
speed, orbit by dragging, zoom by wheel. Colours as in mage render: the first motion (the
prediction) blue/red for left/right, the second (the reference) cyan/orange, the tracked
head and wrists ringed in green; a legend says so. Motion files: the project's .npz
(Motion.save), any format mage.data.io reads, or sample:NAME (a clip shipped with the
package, mage.data.samples).
"""

from __future__ import annotations

from mage.cli.common import ExamplesHelpFormatter, describe


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "view", help="open motions in a 3D browser viewer (local page, works offline)",
        description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    p.add_argument("motions", nargs="+", metavar="MOTION", help="motion file(s) to show together")
    p.add_argument("--names", nargs="+", metavar="NAME", help="labels (default: the file names)")
    p.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (default 8000; 0 = any free)")
    p.add_argument("--no-browser", action="store_true", help="print the address, do not open a browser")
    p.add_argument("--out", metavar="PAGE.html",
                   help="also keep the page here (default: a temporary file, deleted on exit)")
    p.add_argument("--no-serve", action="store_true",
                   help="only write the page given by --out (open it as a file) and exit")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from mage.cli.common import input_file, output_file
    from mage.cli.main import CLIError

    args.motions = [str(input_file(path, "motion")) for path in args.motions]  # sample:NAME -> its file
    if args.out:
        output_file(args.out, (".html",), "page")
    if args.no_serve and not args.out:
        raise CLIError("--no-serve needs --out PAGE.html (where to write the page)")
    if args.names and len(args.names) != len(args.motions):
        raise CLIError(f"--names: {len(args.names)} names for {len(args.motions)} motions")
    if not 0 <= args.port <= 65535:
        raise CLIError(f"--port: expected 0..65535, got {args.port}")

    from mage.viz.inputs import load_motion_file
    from mage.viz.viewer import serve_viewer, write_viewer_html

    motions = [load_motion_file(p) for p in args.motions]
    names = args.names or [Path(p).stem for p in args.motions]
    if args.out:
        page = write_viewer_html(motions, args.out, names=names)
        print(f"wrote {page}")
        if args.no_serve:
            return 0
        serve_viewer(page, args.port, open_browser=not args.no_browser)
        return 0
    with tempfile.TemporaryDirectory(prefix="mage-view-") as tmp:
        page = write_viewer_html(motions, Path(tmp) / "viewer.html", names=names)
        serve_viewer(page, args.port, open_browser=not args.no_browser)
    return 0
