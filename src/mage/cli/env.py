"""``mage env``: versions and hardware, to paste into bug reports.

examples:
    mage env                 # copy the output into the bug report

Prints the versions of mage, Python, torch and the other dependencies, whether CUDA is
available (and the GPU's name) and the CPU threads torch uses.
"""

from __future__ import annotations

import importlib.metadata
import platform

from mage.cli.common import ExamplesHelpFormatter, describe


def register(subparsers) -> None:
    p = subparsers.add_parser("env", help="print versions and hardware for bug reports",
                              description=describe(__doc__), formatter_class=ExamplesHelpFormatter)
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    import mage

    print(f"mage: {mage.__version__}")
    print(f"python: {platform.python_version()} ({platform.platform()})")
    for pkg in ("torch", "roma", "smplx", "lightning", "onnxruntime", "numpy", "safetensors"):
        try:
            print(f"{pkg}: {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            print(f"{pkg}: not installed")
    print(f"cuda available: {torch.cuda.is_available()}"
          + (f" ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else ""))
    print(f"cpu threads: {torch.get_num_threads()}")
    return 0
