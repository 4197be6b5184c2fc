"""Argument checks shared by the miners (private)."""

from __future__ import annotations

from collections.abc import Sequence


def check_margin(margin: float, *, allow_zero: bool = True) -> float:
    """Return ``margin`` as a float, or raise ``ValueError`` if it is negative (or zero)."""
    margin = float(margin)
    if margin < 0 or (margin == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"margin must be {bound}, got {margin}")
    return margin


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a ``ValueError`` listing them."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def check_max_triplets(max_triplets: int | None) -> int | None:
    """``None`` (no cap) or a positive int."""
    if max_triplets is not None and (not isinstance(max_triplets, int) or max_triplets < 1):
        raise ValueError(f"max_triplets must be a positive int or None, got {max_triplets!r}")
    return max_triplets
