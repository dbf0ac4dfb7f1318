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


def error_line(message: object, path: object = None) -> str:
    """The one format of every error the ``mage`` command prints: ``mage: error: ...``,
    naming the file first when there is one (``mage: error: walk.bvh: ...``)."""
    text = str(message)
    if path is not None and not text.startswith(str(path)):
        text = f"{path}: {text}"
    return f"mage: error: {text}"


def report_error(message: object, path: object = None) -> None:
    """Print :func:`error_line` to stderr (for errors a command reports and survives,
    e.g. one failed file of several)."""
    print(error_line(message, path), file=sys.stderr, flush=True)


class Parser(argparse.ArgumentParser):
    """argparse with the project's error line (usage first, as argparse does)."""

    def error(self, message):
        self.print_usage(sys.stderr)
        command = self.prog.removeprefix("mage").strip()
        self.exit(2, error_line(f"{command}: {message}" if command else message) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="mage",
        description="MAGE: full-body motion from a VR headset and two controllers.\n\n"
                    "examples:\n"
                    "  mage demo                       # the bundled model on a synthetic input -> ./mage_demo/\n"
                    "  mage demo --input sample:walk   # ... on a captured walk shipped with the package\n"
                    "  mage predict --input sample:walk -o walk_pred.npz\n"
                    "  mage predict --help             # every command: its options and examples",
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
        report_error(err)
        return 2
    except KeyboardInterrupt:
        print("mage: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
