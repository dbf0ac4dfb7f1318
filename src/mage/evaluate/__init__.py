"""Evaluation on the community protocol (AvatarPoser / AGRoL; see docs' protocol.md).

Kept light (nothing imported here); import the module you need:
    mage.evaluate.metrics    per-sequence metrics, joint sets, units, aggregation
    mage.evaluate.protocol   evaluate(predict_fn, dataset, split) -> EvalResult, placement
    mage.evaluate.baselines  "mean-pose" and "copy-tracked" predictors for scale
    mage.evaluate.report     JSON / Markdown / CSV reports, comparison tables
"""
