"""``mage eval``: score a checkpoint (or a baseline) on a processed data set's split.

examples:
    mage eval --data data/cmu-mini --out reports/full-medium       # the bundled default model
    mage eval --ckpt runs/small --data data/amass-p1 --split test --out reports/p1 --seeds 0 1 2
    mage eval --baseline mean-pose --data data/amass-p1 --out reports/p1-mean-pose

Predicts every sequence of a split, places the predictions by the tracked head, and
reports MPJRE (deg), MPJPE (cm), MPJVE (cm/s), Jitter (10^2 m/s^3), H-PE, U-PE, L-PE,
Root-PE (cm), averaged per sequence. Writes metrics.json, report.md and
per_sequence.csv into --out (see mage.evaluate.report).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from mage.cli.common import (
    ExamplesHelpFormatter,
    add_ckpt_argument,
    add_threads_argument,
    check_device,
    check_threads,
    checkpoint_folder,
    describe,
    output_folder,
    sampling_options,
    set_threads,
)
from mage.evaluate import BASELINES  # torch-free
from mage.inference.options import MODES, ONLINE_CONSISTENCY  # torch-free


def register(subparsers) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint or a baseline on the community protocol",
                              description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    what = p.add_mutually_exclusive_group()
    add_ckpt_argument(what)
    what.add_argument("--baseline", choices=BASELINES,
                      help="evaluate a trivial baseline instead of a checkpoint")
    p.add_argument("--data", required=True, metavar="DIR", help="processed data set folder")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--out", required=True, metavar="REPORT_DIR", help="folder for the report files")
    p.add_argument("--mode", choices=MODES, default="offline",
                   help="offline (whole-sequence windows) or online (causal); default offline")
    p.add_argument("--steps", type=int, default=None, metavar="K",
                   help="sampler steps (default: the checkpoint's)")
    p.add_argument("--consistency", type=float, default=ONLINE_CONSISTENCY, metavar="L",
                   help=f"online only: carry-over lambda in [0, 1) (default {ONLINE_CONSISTENCY:g}, "
                        "see mage.inference.ONLINE_CONSISTENCY)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                   help="sampling seeds; with several, the report gives mean ± std (default: 0; "
                        "baselines are deterministic and ignore it)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda:0 (default: cpu)")
    p.add_argument("--train-split", default="train",
                   help="split(s) the mean-pose baseline averages, e.g. train+val (default: train)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="evaluate only the first N sequences (smoke tests)")
    add_threads_argument(p, "offline")
    p.set_defaults(func=run)


def _device(name: str):
    import torch

    from mage.cli.main import CLIError

    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise CLIError(f"--device: {err}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"--device {name}: CUDA is not available here (use --device cpu)")
    return device


def run(args) -> int:
    from mage.cli.main import CLIError

    data = Path(args.data)
    if not data.is_dir():
        raise FileNotFoundError(f"--data {data}: no such folder (expected a processed data set "
                                "with manifest.json and sequences/)")
    options = sampling_options(args)  # the seed: one run per --seeds value below
    if len(set(args.seeds)) != len(args.seeds):
        raise ValueError(f"--seeds: repeated seed(s) in {args.seeds}")
    output_folder(args.out)
    check_threads(args.threads)
    check_device(args.device)
    ckpt = None if args.baseline else checkpoint_folder(args.ckpt)

    from mage.evaluate.report import comparison_table, write_report

    set_threads(args.threads)
    device = _device(args.device)
    try:
        from mage.data.dataset import ProcessedDataset
    except ImportError as err:
        raise CLIError(f"cannot load data sets: mage.data.dataset is unavailable ({err})") from None
    dataset = ProcessedDataset(data)

    from mage.evaluate.protocol import combine_seeds, evaluate

    if args.baseline:
        from mage.evaluate.baselines import make_baseline

        predict = make_baseline(args.baseline, dataset, train_split=args.train_split)
        result = evaluate(predict, dataset, args.split, method=f"baseline:{args.baseline}",
                          settings={"baseline": args.baseline, "device": "cpu"}, limit=args.limit)
    else:
        from mage.cli.common import DEFAULT_CHECKPOINT, load_model
        from mage.inference.sequence import model_predict_fn

        name = args.ckpt or DEFAULT_CHECKPOINT
        model = load_model(ckpt, device=str(device))  # name, checkpoint or run folder
        settings = {"checkpoint": name, "mode": options.mode,
                    "steps": "default" if options.steps is None else options.steps, "device": str(device)}
        if options.mode == "online":
            settings["consistency"] = options.consistency  # the carry-over lambda the scores depend on
        runs = []
        for seed in args.seeds:
            try:
                predict = model_predict_fn(model, dataclasses.replace(options, seed=seed))
            except ImportError as err:
                raise CLIError(f"cannot predict: mage.inference.sequence is unavailable ({err})") from None
            runs.append(evaluate(predict, dataset, args.split, method=str(name), seed=seed,
                                 settings=settings, limit=args.limit))
        result = combine_seeds(runs)
    paths = write_report(result, args.out)
    print(comparison_table([result]), end="")
    print(f"{result.num_sequences} sequences, {result.num_frames} frames, {result.seconds:.1f} s; "
          f"report: {paths['markdown']}, {paths['json']}, {paths['csv']}")
    return 0
