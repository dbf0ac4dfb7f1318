"""What the sub-commands share: the default checkpoint, thread defaults, and the cheap
argument checks that run before any heavy import (torch, Lightning, matplotlib) or model
load, so that a wrong file name fails in a fraction of a second.

Pure Python: importing this module imports no torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from mage.data import samples  # the clips shipped with the package, sample:NAME (no torch)

# The checkpoint every command uses when --ckpt is not given (a folder under
# mage/assets/checkpoints/), defined once there (importing it imports no torch).
from mage.inference.options import SamplingOptions  # torch-free
from mage.model.checkpoint_paths import DEFAULT_CHECKPOINT

# Default intra-op threads per kind of work, measured by the latency benchmark's threads
# section (mage-small on a 2-core CPU; tests/test_cli.py checks them): with one other busy
# process, one thread was 1.6x (streaming), 2.9x (offline batches) and 15x (training
# steps) faster than two, because threads that spin waiting for a core held by another
# program stall every operation; on the idle machine two threads were 1.4x (offline) and
# 1.7x (training) faster, one still faster for streaming. One is the default that never
# collapses; on an idle machine of your own --threads N may help. None would mean
# torch's default (all cores).
DEFAULT_THREADS = {"stream": 1, "offline": 1, "train": 1}

THREAD_HELP = {
    "stream": "batch-1 streaming",
    "offline": "offline prediction in batches",
    "train": "training",
}


def add_threads_argument(p, kind: str) -> None:
    """``--threads N`` with the measured default for ``kind`` (see DEFAULT_THREADS)."""
    default = DEFAULT_THREADS[kind]
    p.add_argument("--threads", type=int, metavar="N", default=default,
                   help=f"CPU threads (default {default or 'all cores'}: for {THREAD_HELP[kind]} on a "
                        "2-core CPU shared with another busy program, one thread was 1.6-15x faster "
                        "than two; on an idle machine more may help; see "
                        "benchmarks/latency/results/latency.md)")


def add_ckpt_argument(p) -> None:
    """``--ckpt``; left out (None) it means DEFAULT_CHECKPOINT, see :func:`checkpoint_folder`."""
    p.add_argument("--ckpt", metavar="NAME_OR_PATH",
                   help="packaged checkpoint name, checkpoint folder (config.json + model.safetensors) "
                        f"or training run folder (default: the bundled {DEFAULT_CHECKPOINT})")


def check_threads(threads: int | None) -> None:
    if threads is not None and threads < 1:
        raise ValueError(f"--threads: must be >= 1, got {threads}")


def set_threads(threads: int | None) -> None:
    """torch intra-op threads (onnxruntime sessions take theirs when created)."""
    check_threads(threads)
    if threads is None:
        return
    import torch

    torch.set_num_threads(threads)


def checkpoint_folder(name_or_path: str | None) -> Path:
    """The one place where a ``--ckpt`` value becomes a checkpoint folder: the default
    model when None, a packaged name, a checkpoint folder or a run folder. Cheap (no
    torch), so commands call it before loading anything; a model preset name gets a
    hint instead of a bare "not found"."""
    from mage.model.checkpoint_paths import available_checkpoints, licence_notice, resolve_checkpoint

    name = DEFAULT_CHECKPOINT if name_or_path is None else str(name_or_path)
    try:
        folder = resolve_checkpoint(name)
    except FileNotFoundError as err:
        from mage.model.config import PRESET_DESCRIPTIONS

        if name in PRESET_DESCRIPTIONS:
            raise ValueError(
                f"--ckpt {name}: {name!r} is a model preset (an architecture with untrained weights), "
                f"not a checkpoint; use a packaged checkpoint ({', '.join(available_checkpoints())}), "
                "a checkpoint or run folder, or leave --ckpt out for the bundled model") from None
        raise ValueError(f"--ckpt {name}: {err}") from None
    notice = licence_notice(folder)
    if notice and str(folder) not in _NOTICED:  # once per command, however often resolved
        _NOTICED.add(str(folder))
        print(notice, file=sys.stderr)
    return folder


_NOTICED: set[str] = set()


def load_model(name_or_path: str | None, device: str = "cpu"):
    """The MageModel of ``checkpoint_folder(name_or_path)`` on ``device`` (eval mode)."""
    from mage.inference.pretrained import load_pretrained

    return load_pretrained(checkpoint_folder(name_or_path), device=device)


def sampling_options(args, **values) -> SamplingOptions:
    """The SamplingOptions of a command's flags (those of its fields the command has:
    --mode, --steps, --seed, --overlap, --batch-size, --consistency), with ``values`` for
    the rest. Built once, before any heavy import: a bad value is a one-line error naming
    its flag (every SamplingOptions error starts with its field's name)."""
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(SamplingOptions) if hasattr(args, f.name)}
    try:
        return SamplingOptions(**{**flags, **values})
    except ValueError as err:
        field, _, problem = str(err).partition(": ")
        raise ValueError(f"--{field.replace('_', '-')}: {problem}") from None


def check_device(name: str) -> None:
    """A cheap check of --device (the CUDA check happens when the model loads)."""
    base = name.split(":", 1)[0]
    if base not in ("cpu", "cuda", "mps", "xpu"):
        raise ValueError(f"--device {name}: expected cpu, cuda, cuda:N (or mps, xpu)")


# The help text of every argument that reads a motion file (mage.data.samples).
SAMPLE_HELP = f"{samples.PREFIX}NAME: a clip shipped with the package ({', '.join(samples.sample_names())})"


def input_file(path: str | os.PathLike, what: str = "input") -> Path:
    """``path`` (or the ``sample:NAME`` clip, :func:`mage.data.samples.resolve`) if it is
    an existing file, else a one-line error naming it."""
    p = samples.resolve(path)
    if p.is_dir():
        raise ValueError(f"{p}: is a folder; expected an {what} file")
    if not p.is_file():
        raise FileNotFoundError(f"{p}: {what} file not found")
    return p


def output_file(path: str | os.PathLike, suffixes: tuple[str, ...], what: str = "output") -> Path:
    """``path`` if its extension is one of ``suffixes`` and its folder can be created."""
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise ValueError(f"{p}: unknown {what} type {p.suffix or '(no extension)'!r}; "
                         f"use {', '.join(suffixes)}")
    if p.is_dir():
        raise ValueError(f"{p}: is a folder; expected an {what} file name")
    output_folder(p.parent)
    return p


def output_folder(path: str | os.PathLike) -> Path:
    """``path`` if it is (or can become) a writable folder."""
    p = Path(path)
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise ValueError(f"{p}: {probe} is a file, not a folder")
    if probe.exists() and not os.access(probe, os.W_OK):
        raise ValueError(f"{p}: {probe} is not writable")
    return p


class ExamplesHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description's line breaks (example commands one per line)."""


def describe(doc: str) -> str:
    """The part of a command module's docstring after its first paragraph (the title),
    for ``description=``: example commands, then what the command does."""
    return doc.split("\n\n", 1)[1] if "\n\n" in doc else ""
