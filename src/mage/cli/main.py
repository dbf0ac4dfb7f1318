"""Entry point of the ``mage`` command: wires the sub-command modules together.

Each module in ``COMMAND_MODULES`` defines ``register(subparsers)``, which adds its
parser and sets ``func`` to a function taking the parsed args and returning an exit
code. Modules import heavy libraries (torch, ...) inside ``func`` only, so that
``mage --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (  # in the order of the pipeline; `mage --help` lists them so
    "mage.cli.demo",
    "mage.cli.data",
    "mage.cli.model",
    "mage.cli.train",
    "mage.cli.evaluate",
    "mage.cli.predict",
    "mage.cli.serve",
    "mage.cli.export",
    "mage.cli.render",
    "mage.cli.view",
    "mage.cli.env",
)


class CLIError(Exception):
    """An error to report to the user in one line (exit code 2), without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mage",
        description="MAGE: full-body motion from a VR headset and two controllers.",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except (CLIError, ValueError, FileNotFoundError) as err:
        # Expected user errors: one clear line, no traceback.
        print(f"mage: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mage: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
