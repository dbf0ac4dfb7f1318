"""Atomic file writes: write to a temporary file beside the target, then rename.

A crash or an error half-way never leaves a truncated output under the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "wb", suffix: str | None = None) -> Iterator[IO]:
    """``with atomic_write(p, "w") as f: f.write(...)``; the file appears only on success.

    ``suffix`` sets the temporary file's extension, for writers that pick their format
    from it (e.g. ``np.savez`` appends ``.npz`` unless the name already ends with it).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=suffix if suffix is not None else ".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save_npz(path: str | Path, **arrays) -> None:
    """``np.savez`` to ``path`` atomically."""
    import numpy as np

    with atomic_write(path, "wb", suffix=".npz") as fh:
        np.savez(fh, **arrays)
