"""Argument checks shared by every stage: one wording for one mistake."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_choice", "check_positive_int"]


def check_positive_int(value: Any, name: str) -> int:
    """Return ``value`` as int after checking it is a positive integer (booleans are refused)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def check_choice(value: str, choices: tuple[str, ...], name: str) -> None:
    """Raise a ValueError listing the valid choices when ``value`` is not one of them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
