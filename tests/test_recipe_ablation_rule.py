"""The pre-registered adoption rule of benchmarks/recipe_ablation/run.py."""

from benchmark_helpers import load_benchmark


def _module():
    return load_benchmark("recipe_ablation")


def _m(mpjpe=7.0, l_pe=9.0, jitter=10.0, stride=0.9):
    return {"mpjpe": mpjpe, "l_pe": l_pe, "jitter": jitter, "gt_jitter": 5.0, "stride_ratio": stride}


def test_adopts_only_a_smoother_variant_within_the_accuracy_tolerance():
    adopt = _module().adopt
    base = {"offline": _m(), "online": _m()}
    assert adopt(base, {"offline": _m(jitter=9.0), "online": _m(jitter=9.5, mpjpe=7.2)}) == (True, [])
    ok, failed = adopt(base, {"offline": _m(jitter=9.0), "online": _m(jitter=10.0)})
    assert not ok and failed == ["online jitter ratio not lower"]
    ok, failed = adopt(base, {"offline": _m(jitter=9.0, l_pe=9.3), "online": _m(jitter=9.0)})
    assert not ok and failed == ["offline l_pe 9.30 > 1.03 x 9.00"]  # 3.3% worse
    ok, failed = adopt(base, {"offline": _m(jitter=9.0), "online": _m(jitter=9.0, stride=0.6)})
    assert not ok and failed == ["online stride ratio 0.60 < 0.7"]
