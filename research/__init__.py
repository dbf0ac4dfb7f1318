"""The research studies behind MAGE's design and recipe choices, one folder each (script,
README with the question, the rule written before the runs and the result, and results/),
run from the repository root as ``python -m research.<study>.<script>``. See research/README.md."""
