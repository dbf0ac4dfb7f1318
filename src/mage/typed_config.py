"""Helpers for the typed (dataclass) configs. Pure Python: configs load without torch."""

from __future__ import annotations

import dataclasses
import typing
from types import UnionType


def check_config_keys(d, cls, what: str) -> None:
    """Typed configs reject unknown keys (a typo must not be silently ignored), listing
    the valid ones."""
    if not isinstance(d, dict):
        raise ValueError(f"{what}: expected a mapping, got {type(d).__name__}")
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(valid))
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {unknown}; valid keys: {', '.join(valid)}")


def coerce(name: str, value, tp, numeric_strings: bool = False):
    """Check ``value`` against the field annotation ``tp`` and normalise it.

    Lists become tuples and ints are accepted as floats. ``numeric_strings``: accept
    "1e-4" as a float (YAML 1.1 reads ``1e-4`` as a string; for configs read from YAML).
    ``name`` is used in the error message.
    """
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{name}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name}: expected an integer, got {value!r}")
        return int(value)
    if tp is float:
        if numeric_strings and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise ValueError(f"{name}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ValueError(f"{name}: expected a list, got {value!r}")
        return tuple(coerce(f"{name}[{i}]", v, args[0], numeric_strings) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{name}: expected a mapping, got {value!r}")
        return {coerce(f"{name} key", k, args[0], numeric_strings):
                coerce(f"{name}[{k!r}]", v, args[1], numeric_strings) for k, v in value.items()}
    if origin in (typing.Union, UnionType):  # e.g. int | str: the first type that fits
        for option in args:
            try:
                return coerce(name, value, option, numeric_strings)
            except ValueError:
                continue
        raise ValueError(f"{name}: expected one of {', '.join(a.__name__ for a in args)}, got {value!r}")
    raise TypeError(f"{name}: unsupported annotation {tp!r}")  # a bug here, not user input
