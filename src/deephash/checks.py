"""Argument checks shared by every stage: one wording for one mistake."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_choice", "check_count", "check_positive_int"]


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as int after checking it is a positive integer (booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_count(value: Any, name: str, least: int) -> None:
    """A whole number >= ``least``, or None (not given); else one clear error naming ``name``."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < least:
        raise ValueError(f"{name} must be >= {least}, got {value}")


def check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    """Raise a ValueError listing the valid choices when ``value`` is not one of them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
