"""The choices a caller of mage.inference makes, above all ``SamplingOptions``.

``SamplingOptions`` is how a model samples a sequence, one frozen value for every
inference path: the command line builds it once from its flags; ``predict_sequence``,
``predict_motion``, ``model_predict_fn`` (:mod:`mage.inference.sequence`) and the
``Streamer`` (:mod:`mage.inference.streaming`) take it instead of seven loose arguments.
Every field is checked once, on construction (ValueError naming the field); the defaults
are what ``predict_motion(model, tracking)`` and ``Streamer(model)`` use.

Also here: the names of the device conventions and output formats, which
:mod:`mage.inference.device` and :mod:`mage.inference.writers` implement.

Pure Python (no torch), so that the command line offers and checks every choice before
importing torch.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from mage.model.config import PRECISIONS, check_steps

MODES = ("offline", "online")  # how a sequence is cut into windows (not the model's design)
# Windows per network call. Measured (issue 16, 1 thread, 1800-frame walk, CPU time): 32
# gave mage-small ~1.2x the frames/s of 64 (8.4k vs 6.9k; 16: 8.2k, 8: 7.7k), mage-paper
# the same from 4 to 64; the outputs differ by < 2e-6 between batch sizes.
DEFAULT_BATCH_SIZE = 32
# Online temporal consistency (lambda): each causal window's sample also estimates the
# previous frame (its second-to-last row); the output of frame t is the window's last row
# plus lambda times the difference between the previous OUTPUT and that estimate,
#     y[t] = s_t[N-1] + lambda * (y[t-1] - s_t[N-2]),
# so window-to-window flicker is carried away with no lookahead (0 = each frame's own
# sample). Chosen for the default model on the full recipe's val split, every clip, by a
# rule written before any val metric (research/recipe_ablation: the smallest lambda whose
# online jitter is at most 2x the ground truth's) with full-medium's recipe trained on
# train alone: 1.87x at lambda 0.
# The previous default recipe (no acceleration loss) needed 0.3 (2.17x at 0, 1.94x at
# 0.3); more carry-over lags the motion, and smoother models need less of it.
ONLINE_CONSISTENCY = 0.0
# The tracking devices' coordinate conventions (mage.inference.device.DeviceConfig).
CONVENTIONS: tuple[str, ...] = ("zup", "openxr", "unity")
# What mage.inference.writers.write_motion writes, and the file extension of each.
OUTPUT_SUFFIXES = {"npz": ".npz", "amass": ".npz", "bvh": ".bvh", "json": ".json"}
OUTPUT_FORMATS: tuple[str, ...] = tuple(OUTPUT_SUFFIXES)


@dataclass(frozen=True)
class SamplingOptions:
    """How a sequence is sampled.

    mode: "offline" (overlapping windows, blended) or "online" (causal, each frame the
        last row of its own window; what the Streamer computes).
    steps: DDIM steps, >= 1 (None: the model's ``sampling_steps``).
    seed: the fixed initial noise every window shares (deterministic output).
    overlap: offline only, rows shared by consecutive windows, >= 0 and at most half the
        model's window (checked where the window is known; None: window // 4).
    batch_size: windows per network call, >= 1 (:data:`DEFAULT_BATCH_SIZE`).
    consistency: online only, lambda in [0, 1) of :data:`ONLINE_CONSISTENCY` (1 would
        carry the first frame forever).
    precision: "fp32", "bf16" or "int8" for a torch model
        (:data:`mage.model.config.PRECISIONS`: faster approximations with a measured
        accuracy cost).
    """

    mode: str = "offline"
    steps: int | None = None
    seed: int = 0
    overlap: int | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    consistency: float = ONLINE_CONSISTENCY
    precision: str = "fp32"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {', '.join(MODES)}, got {self.mode!r}")
        object.__setattr__(self, "steps", check_steps(self.steps))
        object.__setattr__(self, "seed", _integer("seed", self.seed))
        if self.overlap is not None:
            overlap = _integer("overlap", self.overlap)
            if overlap < 0:
                raise ValueError(f"overlap: must be >= 0 (rows shared by consecutive windows), got {overlap}")
            object.__setattr__(self, "overlap", overlap)
        batch_size = _integer("batch_size", self.batch_size)
        if batch_size < 1:
            raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
        object.__setattr__(self, "batch_size", batch_size)
        consistency = self.consistency
        if isinstance(consistency, bool) or not isinstance(consistency, numbers.Real):
            raise ValueError(f"consistency: expected a number, got {consistency!r}")
        if not 0 <= consistency < 1:
            raise ValueError(f"consistency: expected a lambda in [0, 1), got {consistency:g}")
        object.__setattr__(self, "consistency", float(consistency))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}")


def check_options(options) -> SamplingOptions:
    """``options`` if it is a SamplingOptions, else a TypeError that shows how to make one
    (the sampling arguments used to be loose: ``mode=``, ``steps=``, ...)."""
    if not isinstance(options, SamplingOptions):
        raise TypeError(f"options: expected a SamplingOptions, got {type(options).__name__} "
                        "(e.g. SamplingOptions(mode='online', steps=4))")
    return options


def _integer(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name}: expected an integer, got {value!r}")
    return int(value)
