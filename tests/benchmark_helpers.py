"""Load a benchmark script (benchmarks/<name>/run.py) as a module, for tests of its rules.
The benchmarks import their shared helpers from benchmarks/common.py, so that folder goes
on sys.path first."""

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load_benchmark(name: str):
    """benchmarks/<name>/run.py as a fresh module."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location(f"{name}_run", ROOT / "benchmarks" / name / "run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
