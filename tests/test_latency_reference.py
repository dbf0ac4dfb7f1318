"""The AGRoL-class reference of the latency benchmark (benchmarks.latency.reference):
the published size and cost, and it runs through the project's inference code."""

import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.latency import reference
from benchmarks.latency.run import _with_mage_linears
from mage.inference.options import SamplingOptions
from mage.inference.sequence import predict_sequence


def test_reference_has_the_published_size_and_cost():
    ref = reference.build_reference()
    assert ref.window == 196 and ref.config.sampling_steps == 5 and len(ref.blocks) == 12
    assert abs(sum(p.numel() for p in ref.parameters()) - 7.5e6) < 0.1e6  # "about 7.5 M"
    cond = torch.zeros(1, 196, 54)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        out = ref.sample(cond, 0)
    assert out.shape == (1, 196, 22, 6)
    per_frame = counter.get_total_flops() / 196  # non-overlapping windows, 5 steps
    assert 0.045e9 < per_frame < 0.055e9


def test_reference_runs_through_predict_sequence_like_agrol():
    ref = reference.AgrolReference(window=16, width=32, blocks=2, steps=2).eval()
    cond = torch.randn(40, 54) * 0.3
    out = predict_sequence(ref, cond, SamplingOptions("offline", overlap=0))
    assert out.shape == (40, 22, 6) and torch.isfinite(out).all()


def test_reference_with_mage_linears_keeps_its_weights_and_output():
    """The benchmark's "kernel: oneDNN" row of the reference: same weights, same output
    (up to float32 summation order), the original left untouched."""
    from mage.model.onednn import Linear

    torch.manual_seed(0)
    ref = reference.AgrolReference(window=16, width=32, blocks=2, steps=2).eval()
    fast = _with_mage_linears(ref)
    assert not any(type(m) is Linear for m in ref.modules())
    assert sum(type(m) is Linear for m in fast.modules()) == sum(type(m) is torch.nn.Linear for m in ref.modules())
    assert not any(type(m) is torch.nn.Linear for m in fast.modules())
    cond = torch.randn(1, 16, 54)
    torch.testing.assert_close(fast.sample(cond, 0), ref.sample(cond, 0), atol=1e-4, rtol=0)
