"""A name -> class registry, shared by the losses, the triplet miners and the pair miners.

Each registry maps names to classes (or factories) whose keyword arguments are their options:

    LOSSES = Registry[MetricLoss]("loss")

    @LOSSES.register("batch-hard")
    class BatchHardLoss(MetricLoss): ...

    LOSSES.create("batch-hard", margin=0.2)   # unknown names or options -> ValueError listing them
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Registry(Generic[T]):
    """Names -> callables returning ``T``; ``kind`` names the family in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[F], F]:
        """Class decorator: make the class creatable as ``create(name, **options)``."""

        def deco(obj: F) -> F:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            return obj

        return deco

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, sorted."""
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def get(self, name: str) -> Callable[..., T]:
        """The registered class; an unknown name is a ValueError listing the known ones."""
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._items[name]

    def options(self, name: str) -> dict[str, inspect.Parameter]:
        """Keyword parameters (name -> inspect.Parameter) that ``name``'s constructor accepts."""
        params = inspect.signature(self.get(name)).parameters
        return {
            k: p
            for k, p in params.items()
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and k != "self"
        }

    def create(self, name: str, /, **options: Any) -> T:
        """Build ``name`` with ``options``; unknown names or options raise ValueError."""
        cls = self.get(name)
        takes_any = any(p.kind is p.VAR_KEYWORD for p in inspect.signature(cls).parameters.values())
        accepted = self.options(name)
        unknown = sorted(set(options) - set(accepted))
        if unknown and not takes_any:
            raise ValueError(
                f"{self.kind} {name!r} does not take option(s) {', '.join(unknown)}; "
                f"it takes: {', '.join(accepted) or '(none)'}"
            )
        return cls(**options)
