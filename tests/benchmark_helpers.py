"""Load a benchmark script (benchmarks/<name>/run.py) as a module, for tests of its rules.
The benchmarks import their shared helpers from benchmarks/common.py, so that folder goes
on sys.path first."""

import importlib
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    """benchmarks/<name>/run.py as a fresh module."""
    benchmarks_common()
    spec = importlib.util.spec_from_file_location(f"{name}_run", ROOT / "benchmarks" / name / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def benchmarks_common():
    """benchmarks/common.py, what the benchmark scripts share (the lambda rule among it)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module("common")
