"""Read an official SMPL / SMPL-H ``.pkl`` body model without running code from it.

A pickle can call any Python function while it loads, so ``pickle.load`` on a file of
unknown origin runs whatever the file says. :func:`load_model_pickle` uses a restricted
unpickler instead: it builds only numpy arrays (and dtypes / scalars), plain containers,
and stand-ins for the two foreign types that the distributed model files hold, chumpy
``Ch`` arrays (their ``x`` array) and scipy sparse matrices (``J_regressor``), which are
turned into dense numpy arrays. Any other global named in the file (``os.system``,
``builtins.eval``, ...) is refused with a one-line ``ValueError`` before it is called.

To avoid the question altogether, convert the model once to ``.npz`` on a machine where
you trust the file (``np.savez(out, **{k: np.asarray(v) for k, v in pickle.load(f,
encoding="latin1").items() if ...})``), or use the ``model.npz`` files that AMASS
distributes.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from mage.core.limits import quote

CONVERT_HINT = ("use the SMPL-H model.npz distributed with AMASS, or convert the .pkl to .npz "
                "(v_template, shapedirs, J_regressor, kintree_table as arrays) where you trust it")

# (module, name) that may be named in a model pickle; everything else is refused.
_NUMPY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_SAFE_BUILTINS = {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"),
                  ("__builtin__", "object"), ("builtins", "object"),
                  ("_codecs", "encode")}  # bytes in protocol-2 pickles written by Python 3


class _Stub:
    """Stand-in for a chumpy or scipy.sparse object: keeps its pickled state only."""

    kind = "object"
    state: dict = {}  # until the pickle sets it (never mutated on the class)

    def __init__(self, *args, **kwargs):
        self.state = {}

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {"state": state}

    def __setitem__(self, key, value):  # some pickles fill dict-like objects
        self.__dict__.setdefault("state", {})[key] = value


class _ChumpyStub(_Stub):
    kind = "chumpy"


class _SparseStub(_Stub):
    kind = "sparse"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _NUMPY_GLOBALS or (module, name) in _SAFE_BUILTINS:
            return super().find_class(module, name)
        if module.startswith("chumpy"):
            return _ChumpyStub
        if module.startswith("scipy.sparse") and name.endswith(("_matrix", "_array")):
            return _SparseStub
        raise pickle.UnpicklingError(f"refusing to load {quote(module + '.' + name)}")


def _to_array(value, key: str, path: Path) -> np.ndarray:
    if isinstance(value, _ChumpyStub):
        if "x" not in value.state:
            raise ValueError(f"{path}: {key}: a chumpy object without array data; {CONVERT_HINT}")
        return _to_array(value.state["x"], key, path)
    if isinstance(value, _SparseStub):
        s = value.state
        try:
            from scipy import sparse  # noqa: PLC0415 - only for model files that store sparse matrices

            shape = tuple(s.get("_shape") or s.get("shape"))
            fmt = sparse.csr_matrix if s.get("format") == "csr" or "csr" in str(s.get("_format", "")) \
                else sparse.csc_matrix
            return fmt((s["data"], s["indices"], s["indptr"]), shape=shape).toarray()
        except Exception as err:
            raise ValueError(f"{path}: {key}: unreadable sparse matrix ({quote(str(err))})") from None
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: {key}: not a numeric array") from None


def load_model_pickle(path: str | Path, keys) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of a SMPL-family ``.pkl`` model, read without executing code.

    Raises ValueError (one line naming the file) for a pickle that names anything other
    than numpy / chumpy / scipy.sparse types, or that is not a dict holding ``keys``.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = _RestrictedUnpickler(fh, encoding="latin1").load()
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path}: not a plain body-model pickle ({err}); {CONVERT_HINT}") from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError,
            MemoryError, RecursionError, OverflowError, ImportError) as err:
        raise ValueError(f"{path}: not a readable body-model pickle ({type(err).__name__}: "
                         f"{quote(str(err))}); {CONVERT_HINT}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: not a SMPL model file (a pickled {type(raw).__name__}, "
                         "expected a dict of arrays)")
    missing = [k for k in keys if k not in raw]
    if missing:
        raise ValueError(f"{path}: not a SMPL model file, missing key(s) {missing}")
    return {k: _to_array(raw[k], k, path) for k in keys}
