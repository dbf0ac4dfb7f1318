"""``mage train``: train a MAGE model on a processed data set.

    mage train --preset mage-small --data data/amass_p1 --out runs/small
    mage train --config cfg.yaml --data data/amass_p1 --out runs/exp1 --set lr=1e-4 \
        --set model.width=256
    mage train --data data/amass_p1 --out runs/small --resume        # continue after a crash
    mage train --preset mage-paper --data D --out R --accelerator gpu --devices 4 --strategy ddp --precision bf16-mixed

Writes R/train_config.json, R/checkpoints/step_XXXXXX/, R/final/ and R/logs/ (see
mage.train.checkpoints); ``mage eval --ckpt R`` reads R/final.
"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (Lightning: DDP, bf16, resumable checkpoints)",
        description="Train on the 'train' split of a processed data set. Settings come from "
                    "--config or --preset (a model preset with default training settings), "
                    "then --set key=value, then the explicit flags below.",
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
    p.add_argument("--accelerator", choices=("cpu", "gpu", "auto"), help="default: auto")
    p.add_argument("--strategy", choices=("ddp", "auto"),
                   help="ddp: one process per device (gloo on CPU, NCCL on GPU); default: auto")
    p.add_argument("--precision", choices=("bf16-mixed", "32"),
                   help="default bf16-mixed on GPU; CPU runs fall back to 32 with a warning")
    p.add_argument("--seed", type=int, metavar="S", help="seed of init, data order, augmentation, noise")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting, e.g. lr=1e-4, model.width=256, model.depth.S3=6 "
                        "(repeatable)")
    p.set_defaults(func=run)


def build_config(args):
    """The TrainConfig that the parsed arguments describe."""
    from mage.train.checkpoints import TRAIN_CONFIG
    from mage.train.config import TrainConfig

    if args.config:
        config = TrainConfig.load(args.config)
    elif args.preset:
        config = TrainConfig(model=args.preset)
    elif args.resume:
        saved = Path(args.out) / TRAIN_CONFIG
        if not saved.is_file():
            raise FileNotFoundError(f"--resume: {saved} not found; give --config or --preset")
        config = TrainConfig.load(saved)
    else:
        raise ValueError("give --config CFG or --preset NAME (or --resume an existing --out RUN)")
    config = config.with_overrides(args.overrides)
    flags = {"max_steps": args.max_steps, "num_nodes": args.num_nodes, "accelerator": args.accelerator,
             "strategy": args.strategy, "precision": args.precision, "seed": args.seed}
    if args.devices is not None:
        flags["devices"] = int(args.devices) if args.devices.isdigit() else args.devices
    flags = {k: v for k, v in flags.items() if v is not None}
    if flags:
        config = TrainConfig.from_dict({**config.to_dict(), **flags})
    return config


def run(args) -> int:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    from mage.train.run import train

    final = train(build_config(args), args.data, args.out, resume=args.resume)
    if rank_zero_only.rank == 0:  # DDP: every process returns here
        print(f"mage train: done; inference checkpoint {final} (mage eval --ckpt {args.out})")
    return 0
