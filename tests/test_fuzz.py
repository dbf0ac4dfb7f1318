"""The fuzz harness (benchmarks/fuzz/run.py) on a few mutated inputs per format.

The default run keeps it short (12 cases per format, a few seconds); the full run is
``python benchmarks/fuzz/run.py`` (300 per format, report in benchmarks/results/fuzz.md)
or ``MAGE_FUZZ_CASES=300 python -m pytest tests/test_fuzz.py``.
"""

import importlib.util
import os
from pathlib import Path

import pytest
from inference_helpers import tiny_model

ROOT = Path(__file__).resolve().parents[1]
CASES = int(os.environ.get("MAGE_FUZZ_CASES", "12"))
pytestmark = pytest.mark.timeout(120 + 2 * CASES)


def _harness():
    spec = importlib.util.spec_from_file_location("mage_fuzz_run", ROOT / "benchmarks" / "fuzz" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("fmt", ["bvh", "asf", "amc", "amass", "csv", "json", "server"])
def test_mutated_inputs_never_crash(fmt):
    fuzz = _harness()
    report = fuzz.run(CASES, seed=1, formats=[fmt], model=tiny_model(window=8))
    r = report["formats"][fmt]
    assert r["cases"] == CASES
    bad = {k: r["examples"][k] for k in ("crash", "hang", "bad_message") if r["counts"].get(k)}
    assert not bad, bad
