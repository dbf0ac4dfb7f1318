"""The fuzz harness (benchmarks.fuzz.run) on a few mutated inputs per format.

The default run keeps it short (12 cases per format, a few seconds); the full run is
``python -m benchmarks.fuzz.run`` (300 per format, report in benchmarks/fuzz/results/fuzz.md)
or ``MAGE_FUZZ_CASES=300 python -m pytest tests/test_fuzz.py``.
"""

import os

import pytest
from inference_helpers import tiny_model

from benchmarks.fuzz import run as fuzz

CASES = int(os.environ.get("MAGE_FUZZ_CASES", "12"))
pytestmark = pytest.mark.timeout(120 + 2 * CASES)


@pytest.mark.parametrize("fmt", ["bvh", "asf", "amc", "amass", "csv", "json", "server"])
def test_mutated_inputs_never_crash(fmt):
    report = fuzz.run(CASES, seed=1, formats=[fmt], model=tiny_model(window=8))
    r = report["formats"][fmt]
    assert r["cases"] == CASES
    bad = {k: r["examples"][k] for k in ("crash", "hang", "bad_message") if r["counts"].get(k)}
    assert not bad, bad
