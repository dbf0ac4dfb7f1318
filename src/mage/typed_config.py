"""Helpers for the typed (dataclass) configs. Pure Python: configs load without torch."""

from __future__ import annotations

import dataclasses


def check_config_keys(d, cls, what: str) -> None:
    """Typed configs reject unknown keys (a typo must not be silently ignored), listing
    the valid ones."""
    if not isinstance(d, dict):
        raise ValueError(f"{what}: expected a mapping, got {type(d).__name__}")
    valid = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(d) - set(valid))
    if unknown:
        raise ValueError(f"{what}: unknown key(s) {unknown}; valid keys: {', '.join(valid)}")
