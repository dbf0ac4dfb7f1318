"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or an error half-way never leaves a truncated output under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator

import numpy as np


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``,
    on any error it is deleted. For writers that want a file name (imageio, onnx).

    ``suffix`` sets the temporary file's extension (default: ``path``'s own), for writers
    that pick their format from it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=path.suffix if suffix is None else suffix)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _default_mode())  # mkstemp makes 0600; outputs are ordinary files
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", suffix: str | None = None) -> Iterator[IO]:
    """``with atomic_write(p, "w") as f: f.write(...)``; the file appears only on success."""
    with atomic_path(path, suffix) as tmp:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())


def atomic_save_npz(path: str | Path, **arrays) -> None:
    """``np.savez`` to ``path`` atomically."""
    with atomic_write(path, "wb", suffix=".npz") as fh:
        np.savez(fh, **arrays)
