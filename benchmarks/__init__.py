"""The engineering benchmarks of MAGE (speed, load, robustness, the bundled models), one
subpackage each, run from the repository root as ``python -m benchmarks.<name>.run``;
``benchmarks.common`` holds what they share. See benchmarks/README.md."""
