"""``mage train``: train a MAGE model on a processed data set.

examples:
    mage train --preset mage-small --data data/cmu-mini --out runs/small --max-steps 3000
    mage train --config cfg.yaml --data data/amass-p1 --out runs/exp1 --set lr=1e-4 --set model.width=256
    mage train --data data/amass-p1 --out runs/small --resume        # continue after a crash
    mage train --preset mage-paper --data data/amass-p1 --out runs/p1 --accelerator gpu --devices 4 --strategy ddp

Trains on the 'train' split of a processed data set (mage data build; --set
train_splits=train,val adds the recipe's validation split, e.g. to refit a final model
once its settings were chosen on val). Settings come from
--config or --preset (a model preset with default training settings), then --set
key=value, then the explicit flags. On a machine without a GPU the CPU preset applies to
the settings you leave unset: batch_size 64, num_workers 0, precision 32, log_every 10
(mage.train.config.CPU_DEFAULTS; the defaults otherwise, batch 256 and 2 data workers,
suit a GPU). One progress bar shows steps/s and the ETA; the first and last steps are
always in the CSV log.

Writes RUN/train_config.json, RUN/checkpoints/step_XXXXXX/, RUN/final/ and RUN/logs/ (see
mage.model.checkpoint_paths); ``mage eval --ckpt RUN`` reads RUN/final.
"""

from __future__ import annotations

import os
from pathlib import Path

from mage.cli.common import ExamplesHelpFormatter, add_threads_argument, describe
from mage.train.config import ACCELERATORS, PRECISIONS, STRATEGIES  # torch-free


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (Lightning: DDP, bf16, resumable checkpoints)",
        description=describe(__doc__), formatter_class=ExamplesHelpFormatter,
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--config", metavar="CFG", help="training config, .json or .yaml")
    src.add_argument("--preset", metavar="NAME", help="model preset (e.g. mage-small, mage-paper)")
    p.add_argument("--data", required=True, metavar="DIR", help="processed data set folder")
    p.add_argument("--out", required=True, metavar="RUN", help="run folder to write")
    p.add_argument("--resume", action="store_true",
                   help="continue RUN from its newest checkpoint (config: RUN/train_config.json "
                        "unless --config/--preset is given)")
    p.add_argument("--max-steps", type=int, metavar="N", help="optimizer steps of the whole run")
    p.add_argument("--devices", metavar="N", help="processes per node ('auto' or a number)")
    p.add_argument("--num-nodes", type=int, metavar="N", help="machines (DDP across nodes)")
    p.add_argument("--accelerator", choices=ACCELERATORS, help="default: auto")
    p.add_argument("--strategy", choices=STRATEGIES,
                   help="ddp: one process per device (gloo on CPU, NCCL on GPU); default: auto")
    p.add_argument("--precision", choices=PRECISIONS,
                   help="default bf16-mixed on GPU; CPU runs fall back to 32 with a warning")
    p.add_argument("--seed", type=int, metavar="S", help="seed of init, data order, augmentation, noise")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. lr=1e-4, model.width=256, model.depth.S3=6 "
                        "(repeatable)")
    add_threads_argument(p, "train")
    p.set_defaults(func=run)


def build_config(args, cuda_available: bool | None = None):
    """The TrainConfig that the parsed arguments describe (CPU_DEFAULTS filled in for the
    settings left unset when the run is on CPU; ``cuda_available`` None asks torch)."""
    from mage.model.checkpoint_paths import TRAIN_CONFIG
    from mage.train.config import CPU_DEFAULTS, TrainConfig, read_config_file

    explicit: set[str] = {o.partition("=")[0].strip() for o in args.overrides}
    if args.config:
        config = TrainConfig.load(args.config)
        explicit |= set(read_config_file(args.config))
    elif args.preset:
        config = TrainConfig(model=args.preset)
    elif args.resume:
        saved = Path(args.out) / TRAIN_CONFIG
        if not saved.is_file():
            raise FileNotFoundError(f"--resume: {saved} not found; give --config or --preset")
        config = TrainConfig.load(saved)
        explicit |= set(CPU_DEFAULTS)  # the run's own settings stay
    else:
        raise ValueError("give --config CFG or --preset NAME (or --resume an existing --out RUN)")
    config = config.with_overrides(args.overrides)
    flags = {"max_steps": args.max_steps, "num_nodes": args.num_nodes, "accelerator": args.accelerator,
             "strategy": args.strategy, "precision": args.precision, "seed": args.seed}
    if args.devices is not None:
        flags["devices"] = int(args.devices) if args.devices.isdigit() else args.devices
    flags = {k: v for k, v in flags.items() if v is not None}
    explicit |= set(flags)
    if flags:
        config = TrainConfig.from_dict({**config.to_dict(), **flags})
    if config.accelerator == "cpu" or (config.accelerator == "auto" and not _cuda(cuda_available)):
        cpu = {k: v for k, v in CPU_DEFAULTS.items() if k not in explicit}
        if cpu:
            config = TrainConfig.from_dict({**config.to_dict(), **cpu})
            if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
                print("mage train: CPU run; CPU preset " + ", ".join(f"{k}={v}" for k, v in cpu.items())
                      + " (--set KEY=VALUE to change)")
    return config


def _cuda(known: bool | None) -> bool:
    if known is not None:
        return known
    import torch

    return torch.cuda.is_available()


def check_arguments(args) -> None:
    """Cheap checks before torch and Lightning are imported."""
    from mage.cli.common import check_threads, output_folder

    check_threads(args.threads)
    data = Path(args.data)
    if not data.is_dir():
        raise FileNotFoundError(f"--data {data}: no such folder (expected a processed data set with "
                                "manifest.json and sequences/, see `mage data build`)")
    if not (data / "manifest.json").is_file():
        raise FileNotFoundError(f"--data {data}: no manifest.json (expected a processed data set, "
                                "see `mage data build`)")
    output_folder(args.out)
    if args.config:
        from mage.cli.common import input_file

        input_file(args.config, "config")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError(f"--max-steps: must be >= 1, got {args.max_steps}")


def run(args) -> int:
    check_arguments(args)
    from mage.cli.common import set_threads

    set_threads(args.threads)
    config = build_config(args)

    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from mage.train.run import train

    final = train(config, args.data, args.out, resume=args.resume)
    if rank_zero_only.rank == 0:  # DDP: every process returns here
        print(f"mage train: done; inference checkpoint {final} (mage eval --ckpt {args.out})")
    return 0
