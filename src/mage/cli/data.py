"""``mage data``: import, export, inspect motion files and build the processed dataset.

Usage::

    mage data import FILE... -o OUT [--rig NAME|map.json] [--body-model PATH]
    mage data export IN -o OUT.{bvh,npz} [--format amass|mage]
    mage data build [SOURCE...] -o OUT [--recipe NAME] [--split-test SUBJECTS] [--workers N]
    mage data build AMASS_ROOT -o OUT --body-model smplh/ --amass-protocol 1 \\
        --train-list CMU/train_split.txt --test-list CMU/test_split.txt [...]
    mage data info FILE
"""

from __future__ import annotations

import os
from pathlib import Path

from mage.cli.common import SAMPLE_HELP, ExamplesHelpFormatter
from mage.data import samples  # pure Python

# The --help text of each command: examples first (tests/test_docs_examples.py parses
# every `mage ...` line and runs the cheap ones), then what it does.
DATA_HELP = f"""examples:
    mage data info sample:walk                   # a motion file: frames, fps, height, the joint map
    mage data import sample:walk -o walk.npz     # any supported file -> the project's npz
    mage data build --recipe cmu-mini -o data/cmu-mini

Import, export and inspect motion files; build the processed dataset. Motion files: BVH,
ASF/AMC, AMASS npz, the project's npz, or {samples.PREFIX}NAME (a clip shipped with the
package; `mage data info {samples.PREFIX}` lists them)."""

IMPORT_HELP = """examples:
    mage data import sample:walk -o walk.npz                 # a bundled CMU clip (ASF/AMC) -> npz
    mage data import sample:walk sample:run -o imported/     # several files: one <name>.npz each
    mage data import mine.bvh -o mine.npz --write-map mine_map.json   # also save the joint map chosen
    mage data import mine.bvh -o mine.npz --rig mine_map.json         # again, with the map edited

Reads BVH, ASF/AMC (the .asf beside the .amc), AMASS npz (--body-model) and the project's
npz, maps any humanoid rig onto the SMPL 22-joint skeleton (--rig auto) and writes the
project's npz at the file's own frame rate. One failed file is reported and the others
go on (exit 2 at the end)."""

EXPORT_HELP = """examples:
    mage data export sample:walk -o walk.bvh                  # ASF/AMC -> BVH of the SMPL-22 skeleton
    mage data export walk_demo/prediction.npz -o prediction.bvh
    mage data export walk.npz -o walk_amass.npz --format amass --body-model body_models/smplh

Writes a motion file (any format mage data import reads) as BVH, the project's npz or an
AMASS-style SMPL-H npz (--format amass)."""

INFO_HELP = f"""examples:
    mage data info sample:                     # the samples shipped with the package
    mage data info sample:walk                 # frames, fps, duration, height, the joint map chosen
    mage data info data/cmu-mini               # a built dataset: clips, hours and licences per split

FILE: a motion file, {samples.PREFIX}NAME (a clip shipped with the package: {", ".join(samples.sample_names())})
or a dataset folder (mage data build)."""

BUILD_HELP = """examples:
    mage data build --recipe cmu-mini -o data/cmu-mini        # open motion capture: see below
    mage data build mocap/ -o data/mine --split-test 03,07    # your own files, split by subject
    mage data build AMASS -o data/amass-p1 --body-model body_models/smplh --amass-protocol 1 \\
        --train-list CMU/train_split.txt --test-list CMU/test_split.txt

Imports every motion file under SOURCE, resamples to 60 fps, splits by subject (no
performance on both sides) and writes a manifest, one record per clip and
build_report.md. --recipe NAME builds from open motion capture that does not ship with
the package (the samples are seconds long): cmu-mini needs the CMU Graphics Lab database
(mocap.cs.cmu.edu) in $MAGE_DATA_CACHE/mocap (default ~/.cache/mage-data/mocap) or
--source DIR; permissive, full and bandai need more folders in $MAGE_DATA_CACHE. A missing
source is a one-line error saying what data the recipe needs, where to get it, the
layout it expects and where to put it (mage.data.recipes)."""


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="import/export motion files, build the training dataset",
                              description=DATA_HELP, formatter_class=ExamplesHelpFormatter)
    sub = p.add_subparsers(title="data commands", metavar="DATA_COMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])

    imp = sub.add_parser("import", help="motion files (.bvh, .amc, AMASS .npz) -> the project's npz",
                         description=IMPORT_HELP, formatter_class=ExamplesHelpFormatter)
    imp.add_argument("files", nargs="+", metavar="FILE", help=f"motion file ({SAMPLE_HELP})")
    imp.add_argument("-o", "--out", required=True,
                     help="output .npz for one file, or a folder (one <name>.npz per file)")
    _add_rig_and_model(imp)
    imp.add_argument("--write-map", default=None, metavar="MAP.json",
                     help="save the joint map used (e.g. the one --rig auto chose) for editing; "
                          "pass it back with --rig MAP.json")
    imp.set_defaults(func=run_import)

    exp = sub.add_parser("export", help="a motion file -> BVH or npz (project or AMASS layout)",
                         description=EXPORT_HELP, formatter_class=ExamplesHelpFormatter)
    exp.add_argument("input", metavar="IN", help=f"motion file ({SAMPLE_HELP})")
    exp.add_argument("-o", "--out", required=True, help="OUT.bvh or OUT.npz")
    exp.add_argument("--format", choices=("mage", "amass"), default=None,
                     help="npz layout (default mage; amass: SMPL-H poses (T, 156) for smplx)")
    exp.add_argument("--gender", default="male", choices=("male", "female", "neutral"),
                     help="gender written to an AMASS npz (default male)")
    _add_rig_and_model(exp)
    exp.set_defaults(func=run_export)

    b = sub.add_parser("build", help="raw motion files -> processed dataset (manifest + records)",
                       description=BUILD_HELP, formatter_class=ExamplesHelpFormatter)
    b.add_argument("sources", nargs="*", metavar="SOURCE", help="motion files or folders")
    b.add_argument("-o", "--out", required=True, help="dataset folder")
    from mage.data.recipes import RECIPES  # pure Python + numpy: no torch at parse time

    b.add_argument("--recipe", default=None,
                   help=f"named build ({', '.join(RECIPES)}); SOURCE defaults to its source(s)")
    b.add_argument("--source", action="append", default=None,
                   help="source folder/file (alternative to SOURCE; overrides a recipe's default)")
    b.add_argument("--split-test", default=None, metavar="SUBJECTS",
                   help="comma-separated test subjects, e.g. 03,07 (default: the recipe's, "
                        "else a fixed hash order of subject names)")
    b.add_argument("--amass-protocol", type=int, choices=(1, 2), default=None,
                   help="AMASS: 1 = the published random split (needs --train-list/--test-list), "
                        "2 = cross-dataset subsets; SOURCE is then the AMASS root folder")
    b.add_argument("--train-list", action="append", default=[], metavar="FILE",
                   help="protocol 1: a published train split list (repeat per subset)")
    b.add_argument("--test-list", action="append", default=[], metavar="FILE",
                   help="protocol 1: a published test split list (repeat per subset)")
    b.add_argument("--workers", type=int, default=None, help="processes (default min(2, cpus))")
    b.add_argument("--min-seconds", type=float, default=None,
                   help="drop shorter sequences (default 2)")
    b.add_argument("--real-shape", action="store_true",
                   help="AMASS: the subject's gender and betas instead of male, zero betas")
    b.add_argument("--force", action="store_true", help="rebuild every record")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_rig_and_model(b)
    b.set_defaults(func=run_build)

    info = sub.add_parser("info", help="frames, fps, duration, height and rig of a motion file "
                                       "(or a summary of a dataset folder, or the list of samples)",
                          description=INFO_HELP, formatter_class=ExamplesHelpFormatter)
    info.add_argument("file", metavar="FILE", help=f"motion file ({SAMPLE_HELP}; {samples.PREFIX} lists them) "
                                                  "or dataset folder")
    _add_rig_and_model(info)
    info.set_defaults(func=run_info)


def _add_rig_and_model(p) -> None:
    p.add_argument("--rig", default="auto",
                   help="BVH/ASF-AMC joint map: preset name or map.json (default auto: a "
                        "matching preset, else a map found from the skeleton)")
    p.add_argument("--body-model", default=None, metavar="PATH",
                   help="SMPL-H model.npz or folder with {male,female,neutral}/model.npz (AMASS)")


def run_import(args) -> int:
    from mage.cli.main import CLIError
    from mage.data.io import load_motion

    files = [samples.resolve(f) for f in args.files]  # sample:NAME -> its file
    out = Path(args.out)
    if out.suffix.lower() == ".npz":
        if len(files) != 1:
            raise CLIError(f"{out}: one output file for {len(files)} inputs; give a folder")
        targets = [out]
    else:
        targets = [out / f"{f.stem}.npz" for f in files]
        dup = {t for t in targets if targets.count(t) > 1}
        if dup:
            raise CLIError(f"several inputs would write {sorted(map(str, dup))[0]}; import them separately")
    if args.write_map is not None and len(files) != 1:
        raise CLIError(f"--write-map {args.write_map}: give exactly one input file")
    failed = 0
    for src, dst in zip(files, targets):
        try:
            motion = load_motion(src, rig=args.rig, body_model=args.body_model)
            motion.save(dst)
            if args.write_map is not None:
                _write_map(motion, args.write_map)
        except (ValueError, FileNotFoundError) as err:
            failed += 1
            from mage.cli.main import report_error

            report_error(err, src)  # the one error format; the other files go on
            continue
        print(f"{src} -> {dst} ({motion.num_frames} frames, {motion.fps:g} fps, "
              f"rig {motion.meta.get('rig', '?')})")
    return 2 if failed else 0


def _write_map(motion, path) -> None:
    """Save the joint map a motion was imported with as JSON (``--rig`` reads it back)."""
    import json

    from mage.core.atomic import atomic_write

    jm = motion.meta.get("joint_map")
    if not isinstance(jm, dict) or not jm:
        raise ValueError(f"{path}: the input has no joint map to write (not a BVH / ASF-AMC file)")
    axes = motion.meta.get("rig_axes") or {}
    name = str(motion.meta.get("rig", "map"))
    if name == "auto":  # an automatic map, saved for editing: name it after its file
        name = f"{Path(str(motion.meta.get('source', 'map'))).stem}_map"
    d = {"name": name, "up": axes.get("up", "y"),
         "forward": axes.get("forward", "z"), "left_handed": bool(axes.get("left_handed", False)),
         "joints": dict(jm)}
    if axes.get("scale") is not None:
        d["scale"] = axes["scale"]
    if axes.get("align_bones") is False:
        d["align_bones"] = False
    if axes.get("rest_axes"):
        d["rest_axes"] = axes["rest_axes"]
    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(d, indent=2) + "\n")
    print(f"joint map -> {path}")


def run_export(args) -> int:
    from mage.data.io import load_motion, save_motion

    motion = load_motion(samples.resolve(args.input), rig=args.rig, body_model=args.body_model)
    kwargs = {}
    if args.format == "amass":
        kwargs = {"gender": args.gender, "body_model": args.body_model}
    save_motion(motion, args.out, format=args.format, **kwargs)
    print(f"{args.input} -> {args.out} ({motion.num_frames} frames, {motion.fps:g} fps)")
    return 0


def run_build(args) -> int:
    from mage.data.build import build_dataset

    sources = list(args.sources) + list(args.source or [])
    test = None
    if args.split_test is not None:
        test = [s for s in (x.strip() for x in args.split_test.split(",")) if s]
    split_files = None
    if args.amass_protocol is not None:
        from mage.data.discover import amass_protocol_splits

        if len(sources) != 1:
            raise ValueError("--amass-protocol: give exactly one SOURCE, the AMASS root folder")
        split_files = amass_protocol_splits(sources[0], args.amass_protocol, args.train_list, args.test_list)
    elif args.train_list or args.test_list:
        raise ValueError("--train-list/--test-list need --amass-protocol 1")
    report = build_dataset(
        sources, args.out, recipe=args.recipe, test_subjects=test, workers=args.workers,
        body_model=args.body_model, rig=args.rig, use_real_shape=args.real_shape,
        min_seconds=args.min_seconds, force=args.force, progress=not args.no_progress,
        split_files=split_files,
    )
    print(f"report: {os.path.join(args.out, 'build_report.md')}")
    return 1 if report["counts"]["failed"] else 0


def motion_height(motion) -> float:
    """Head z minus the lowest foot z in the first frame, metres."""
    p = motion.joint_positions()[0]
    sk = motion.skeleton
    feet = [sk.index("left_foot"), sk.index("right_foot")]
    return float(p[sk.index("head"), 2] - p[feet, 2].min())


def run_info(args) -> int:
    if args.file == samples.PREFIX:
        return _samples_info()
    path = samples.resolve(args.file)
    if path.is_dir():
        return _dataset_info(path)
    from mage.data.io import detect_format, load_motion

    if args.body_model is None and detect_format(path) == "amass":
        return _amass_info(path)  # the metadata needs no body model
    motion = load_motion(path, rig=args.rig, body_model=args.body_model)
    print(f"file: {path}")
    print(f"format: {detect_format(path)}")
    print(f"frames: {motion.num_frames}")
    print(f"fps: {motion.fps:g}")
    print(f"duration: {motion.duration:.2f} s")
    print(f"height: {motion_height(motion):.3f} m (head z - lowest foot z, first frame)")
    auto = " (auto-detected)" if motion.meta.get("rig_auto") else ""
    print(f"rig: {motion.meta.get('rig', 'unknown')}{auto}")
    for key, label in (("axes", "axes"), ("unit", "unit"), ("rig_confidence", "confidence"),
                       ("dropped_leading_frames", "dropped leading frames (calibration pose)")):
        if motion.meta.get(key) not in (None, ""):
            print(f"{label}: {motion.meta[key]}")
        elif key == "rig_confidence" and motion.meta.get("rig") not in (None, "", "auto"):
            print("confidence: 1.0 (a preset joint map, matched by name)")
    joint_map = motion.meta.get("joint_map")
    if isinstance(joint_map, dict) and joint_map:
        print("joint map (SMPL joint <- source joint):")
        for k, v in joint_map.items():
            print(f"  {k} <- {v}")
    return 0


def _samples_info() -> int:
    """``mage data info sample:``: the clips shipped with the package (mage.data.samples)."""
    from mage.data.asfamc import CMU_FPS

    print(f"samples shipped with the package, in {samples.SAMPLES_DIR} (licence and source: its README.md):")
    for sample in samples.SAMPLES.values():
        first, last = samples.frame_range(sample.name)
        print(f"  {samples.PREFIX + sample.name:<13} {(last - first + 1) / CMU_FPS:4.2f} s  "
              f"CMU trial {sample.trial}, frames {first}-{last}: {sample.description}")
    print(samples.ACKNOWLEDGEMENT)
    return 0


def _amass_info(path: Path) -> int:
    """Frames, fps, duration and gender of an AMASS-style npz, read and checked as
    mage.data.amass reads them (the joint positions, hence the height, need the SMPL-H
    body model: --body-model)."""
    from mage.core import limits
    from mage.data.amass import NUM_SMPLH_POSE, _as_text, _field, _read_npz

    data = _read_npz(path)
    if "mocap_framerate" not in data:
        raise ValueError(f"{path}: no 'mocap_framerate' field, not an AMASS motion file")
    fps = limits.check_fps(_field(data, path, "mocap_framerate", ()), f"{path}: field 'mocap_framerate'")
    frames = _field(data, path, "poses", (None, NUM_SMPLH_POSE)).shape[0]
    gender = _as_text(data["gender"]) if "gender" in data else "unknown"
    print(f"file: {path}")
    print("format: amass")
    print(f"frames: {frames}")
    print(f"fps: {fps:g}")
    print(f"duration: {frames / fps:.2f} s")
    print(f"gender: {gender}")
    print("height: needs the SMPL-H body model (--body-model PATH)")
    return 0


def _dataset_info(root: Path) -> int:
    from mage.data.dataset import ProcessedDataset

    ds = ProcessedDataset(root)
    print(f"dataset: {root} ({ds.manifest['format']}, recipe {ds.recipe}, {ds.fps:g} fps)")
    for split in ds.splits:
        ids = ds.ids(split)
        frames = sum(ds.info(i)["frames"] for i in ids)
        print(f"  {split}: {len(ids)} clips, {frames} frames, {frames / ds.fps / 3600:.2f} h "
              f"({frames / ds.fps / 60:.2f} min)")
    from mage.data.build_report import licence_summary

    for licence, hours in licence_summary(ds.manifest).items():
        print(f"  licence {licence}: " + ", ".join(f"{k} {v:.2f} h" for k, v in hours.items()))
    print(f"  failures: {len(ds.manifest.get('failures', []))}")
    return 0
