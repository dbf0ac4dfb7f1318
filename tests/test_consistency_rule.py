"""The rule (benchmarks.common) that picks the online consistency on val, and the
bundled-model benchmark's online jitter target it aims at."""

from benchmarks.bundled_models.run import TARGETS
from benchmarks.common import choose_consistency, sweep_until_chosen


def _rule():
    return choose_consistency, TARGETS["jitter_ratio_online"]


def _lazy():
    return sweep_until_chosen


def test_smallest_lambda_meeting_the_jitter_target_else_the_smoothest():
    choose, target = _rule()
    assert target == 2.0
    val = {0.0: {"jitter": 12.0, "gt_jitter": 5.0}, 0.3: {"jitter": 10.5, "gt_jitter": 5.0},
           0.5: {"jitter": 9.9, "gt_jitter": 5.0}, 0.7: {"jitter": 9.0, "gt_jitter": 5.0}}
    assert choose(val) == 0.5  # 9.9 / 5 = 1.98: the least carry-over that meets 2x
    assert choose({lam: m for lam, m in val.items() if lam != 0.5}) == 0.7
    worse = {lam: {"jitter": m["jitter"] * 2, "gt_jitter": 5.0} for lam, m in val.items()}
    assert choose(worse) == 0.7  # none meets it: the smoothest


def test_the_lazy_sweep_chooses_as_the_full_sweep_and_scores_no_more_than_needed():
    choose, _ = _rule()
    lazy = _lazy()
    meets_at_half = {0.0: 2.4, 0.3: 2.1, 0.5: 1.95, 0.7: 1.9, 0.85: 1.85}
    never_meets = {lam: r + 0.3 for lam, r in meets_at_half.items()}
    for ratios, expected_asked in ((meets_at_half, [0.0, 0.3, 0.5]), (never_meets, [0.0, 0.3, 0.5, 0.7, 0.85])):
        full = {lam: {"jitter": 5.0 * r, "gt_jitter": 5.0} for lam, r in ratios.items()}
        asked = []
        chosen, scored = lazy(lambda lam: asked.append(lam) or full[lam], [0.85, 0.0, 0.5, 0.3, 0.7])
        assert chosen == choose(full)
        assert asked == expected_asked and scored == {lam: full[lam] for lam in asked}
