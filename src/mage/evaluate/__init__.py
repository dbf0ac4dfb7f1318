"""Evaluation on the community protocol (AvatarPoser / AGRoL; see docs/evaluation.md).

Kept light (nothing imported here); import the module you need:
    mage.evaluate.metrics    per-sequence metrics, joint sets, units, aggregation
    mage.evaluate.protocol   evaluate(predict_fn, dataset, split) -> EvalResult, placement
    mage.evaluate.baselines  "mean-pose" and "copy-tracked" predictors for scale
    mage.evaluate.report     JSON / Markdown / CSV reports, comparison tables
"""

# The baselines of mage.evaluate.baselines, named here (torch-free) for `mage eval --baseline`.
BASELINES: tuple[str, ...] = ("mean-pose", "copy-tracked")
