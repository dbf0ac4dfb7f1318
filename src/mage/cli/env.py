"""``mage env``: versions and hardware, to paste into bug reports."""

from __future__ import annotations

import importlib.metadata
import platform


def register(subparsers) -> None:
    p = subparsers.add_parser("env", help="print versions and hardware for bug reports")
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
