"""Sample motions shipped with the package: short real motion-capture clips, by name.

The ``mage`` command reads ``sample:NAME`` wherever it reads a motion file (``mage demo
--input sample:walk``, ``mage predict``, ``mage data import|export|info``, ``mage render``,
``mage view``); ``mage data info sample:`` lists them. From Python::

    from mage.data.samples import sample_path
    from mage.data.io import load_motion

    motion = load_motion(sample_path("walk"))   # a Motion at 120 fps

The clips are excerpts of trials of subject 02 of the CMU Graphics Lab Motion Capture
Database, in its own format (ASF/AMC, 120 fps, one skeleton ``02.asf`` for all): the
header and a range of frames of the original file, byte for byte (the frame numbers are
the trial's). Licence, acknowledgement and frame ranges: ``mage/assets/samples/README.md``.
Subject 02 is in the training split of every bundled model, so metrics on these clips
are optimistic; the model cards give held-out numbers.

Pure Python: importing this module imports no torch.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "assets" / "samples"
PREFIX = "sample:"  # ``sample:walk`` on the command line
ACKNOWLEDGEMENT = ("The data used in this project was obtained from mocap.cs.cmu.edu. "
                   "The database was created with funding from NSF EIA-0196217.")


@dataclass(frozen=True)
class Sample:
    """One shipped clip: ``file`` in SAMPLES_DIR, the CMU ``trial`` it was cut from, and
    what the person does."""

    name: str
    file: str
    trial: str
    description: str


SAMPLES: dict[str, Sample] = {s.name: s for s in (
    Sample("walk", "walk.amc", "02_01", "walk forward"),
    Sample("run", "run.amc", "02_03", "run (jog) forward; the whole trial"),
    Sample("jump", "jump.amc", "02_04", "crouch, jump up on the spot, land"),
    Sample("reach", "reach.amc", "02_06", "bend down to scoop something up, rise, lift the right arm overhead"),
)}

_FRAME_NUMBER = re.compile(r"^\s*(\d+)\s*$", re.M)


def sample_names() -> tuple[str, ...]:
    """The names ``sample_path`` accepts, in a fixed order (walk, run, jump, reach)."""
    return tuple(SAMPLES)


def sample_path(name: str) -> Path:
    """The file of the sample ``name`` (an ``.amc``; its ``02.asf`` lies beside it).

    Raises ValueError, one line listing the samples, for an unknown name."""
    sample = SAMPLES.get(name)
    if sample is None:
        raise ValueError(f"{PREFIX}{name}: unknown sample; samples: "
                         + ", ".join(f"{PREFIX}{n}" for n in SAMPLES) + " (mage data info sample: lists them)")
    return SAMPLES_DIR / sample.file


def is_sample(value: str | os.PathLike) -> bool:
    """Whether a command-line value names a sample (``sample:NAME``) rather than a file."""
    return isinstance(value, str) and value.startswith(PREFIX)


def resolve(value: str | os.PathLike) -> Path:
    """``sample:NAME`` -> :func:`sample_path` (ValueError if unknown); anything else -> Path(value)."""
    if is_sample(value):
        return sample_path(value[len(PREFIX):])
    return Path(value)


def frame_range(name: str) -> tuple[int, int]:
    """(first, last) frame number of the sample, as numbered in the CMU trial (120 fps)."""
    numbers = _FRAME_NUMBER.findall(sample_path(name).read_text(encoding="ascii"))
    return int(numbers[0]), int(numbers[-1])
