"""``mage model``: the model card of a preset or checkpoint, and the list of presets.

examples:
    mage model list
    mage model info                        # the bundled checkpoint
    mage model info mage-paper --timing    # a preset (random weights), timed on this CPU
    mage model info runs/small/final --json
"""

from __future__ import annotations

import json

from mage.cli.common import DEFAULT_CHECKPOINT, ExamplesHelpFormatter, add_threads_argument, describe

LIST_HELP = """examples:
    mage model list

Presets are architectures to train (mage train --preset NAME); packaged checkpoints are
trained weights shipped with the package (--ckpt NAME), each with its licence."""

INFO_HELP = """examples:
    mage model info                             # the bundled checkpoint
    mage model info permissive-small --json     # another packaged checkpoint, as JSON
    mage model info mage-paper --timing         # a preset (random weights), timed on this CPU

Parameters per stage, FLOPs (per denoising call, window and output frame) and memory of a
preset, a packaged checkpoint or a checkpoint / run folder."""


def register(subparsers) -> None:
    p = subparsers.add_parser("model", help="model card (parameters, FLOPs, memory) and presets",
                              description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    sub = p.add_subparsers(title="model commands", metavar="MODEL_COMMAND", dest="model_command")
    p_list = sub.add_parser("list", help="list the named presets and the packaged checkpoints",
                            description=LIST_HELP, formatter_class=ExamplesHelpFormatter)
    p_list.set_defaults(func=run)
    p_info = sub.add_parser("info", help="parameters per stage, FLOPs and memory of a preset or checkpoint",
                            description=INFO_HELP, formatter_class=ExamplesHelpFormatter)
    p_info.add_argument("target", metavar="PRESET_OR_CKPT", nargs="?", default=DEFAULT_CHECKPOINT,
                        help="a preset name (see `mage model list`), a packaged checkpoint name or a "
                             f"checkpoint / run folder (default: the bundled {DEFAULT_CHECKPOINT})")
    p_info.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the config's)")
    p_info.add_argument("--timing", action="store_true",
                        help="also time one sample() call at batch 1 and the throughput at batch 64 "
                             "on this machine's CPU (random weights suffice)")
    p_info.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_threads_argument(p_info, "stream")
    p_info.set_defaults(func=run)
    p.set_defaults(func=lambda args: _print_help(p))


def _print_help(parser) -> int:
    parser.print_help()
    return 1


def run(args) -> int:
    if args.model_command == "list":
        return _run_list()
    return _run_info(args)


def _run_list() -> int:
    from mage.model.checkpoint_paths import DEFAULT_CHECKPOINT, PACKAGED_DIR, available_checkpoints, checkpoint_card
    from mage.model.config import PRESET_DESCRIPTIONS, MageConfig

    print("presets (architectures to train: mage train --preset NAME):")
    for name, description in PRESET_DESCRIPTIONS.items():
        cfg = MageConfig.preset(name)
        print(f"  {name:<22} {'+'.join(cfg.scales):<12} {cfg.mode:<10} width {cfg.width:<4} "
              f"window {cfg.window:<4} steps {cfg.sampling_steps}  {description}")
    print("packaged checkpoints (trained weights: --ckpt NAME):")
    for name in available_checkpoints():
        card = checkpoint_card(PACKAGED_DIR / name)
        default = " (default)" if name == DEFAULT_CHECKPOINT else ""
        print(f"  {name:<22} {card.get('licence', 'licence: see its README.md')}{default}")
    return 0


def _run_info(args) -> int:
    from mage.cli.common import check_threads, set_threads
    from mage.cli.main import CLIError
    from mage.model.checkpoint_paths import resolve_checkpoint
    from mage.model.config import PRESET_DESCRIPTIONS, check_steps

    check_threads(args.threads)
    check_steps(args.steps, "--steps")
    ckpt = None
    if args.target not in PRESET_DESCRIPTIONS:
        try:  # a packaged checkpoint name, a checkpoint folder or a training run folder
            ckpt = resolve_checkpoint(args.target)
        except FileNotFoundError as err:
            raise CLIError(f"{args.target!r} is neither a preset ({', '.join(PRESET_DESCRIPTIONS)}) "
                           f"nor a checkpoint: {err}") from None

    from mage.inference.pretrained import load_pretrained
    from mage.model import MageConfig, MageModel
    from mage.model.card import model_card, time_sampling

    set_threads(args.threads)
    if ckpt is None:
        model, source = MageModel(MageConfig.preset(args.target)), f"preset {args.target} (random weights)"
    else:
        model, source = load_pretrained(ckpt), f"checkpoint {args.target}"
    card = model_card(model, steps=args.steps)
    timing = None
    if args.timing:
        timing = {"batch1": time_sampling(model, batch=1, repeats=30, steps=args.steps),
                  "batch64": time_sampling(model, batch=64, repeats=5, steps=args.steps)}
    if args.json:
        print(json.dumps({"source": source, "config": model.config.to_dict(), **card.to_dict(),
                          **({"timing": timing} if timing else {})}, indent=2))
        return 0
    cfg = model.config
    print(f"{source}: scales {'+'.join(cfg.scales)}, mode {cfg.mode}, fusion {cfg.fusion}, "
          f"block {cfg.block}, width {cfg.width}")
    print(card.format())
    if timing:
        b1, b64 = timing["batch1"], timing["batch64"]
        print(f"sample() at batch 1: median {b1['median_ms']:.2f} ms, p95 {b1['p95_ms']:.2f} ms; "
              f"batch 64: {b64['frames_per_s']:.0f} frames/s offline")
    return 0
