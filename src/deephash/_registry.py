"""Name -> entry registries, shared by every family: losses, miners, backbones, heads, descriptors,
datasets and protocols.

A :class:`Registry` maps names to classes (or factories) whose keyword arguments are their options:

    LOSSES = Registry[MetricLoss]("loss")

    @LOSSES.register("batch-hard")
    class BatchHardLoss(MetricLoss): ...

    LOSSES.create("batch-hard", margin=0.2)   # unknown names or options -> ValueError listing them

A :class:`Catalog` maps names to plain entries (a dataset's facts, a protocol's spec, a descriptor
function). Both keep, beside each entry, optional metadata given at registration (a backbone's
pretrained checkpoint and input statistics, as timm's ``default_cfgs``):

    @BACKBONES.register("resnet18", pretrained=Checkpoint(URL))
    def resnet18(*, in_channels: int = 3) -> ResNet: ...

    BACKBONES.meta("resnet18")["pretrained"]
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

__all__ = ["Catalog", "Registry"]

E = TypeVar("E")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Catalog(Generic[E]):
    """Names -> entries of type ``E``, each with a metadata dict; ``kind`` names the family in
    error messages. Iterating gives the names in registration order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, E] = {}
        self._meta: dict[str, dict[str, Any]] = {}

    def add(self, name: str, entry: E, **meta: Any) -> E:
        """Register ``entry`` under ``name`` with optional metadata; returns the entry."""
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = entry
        self._meta[name] = dict(meta)
        return entry

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def names(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style pattern, sorted."""
        return sorted(n for n in self._items if fnmatch.fnmatch(n, pattern))

    def get(self, name: str) -> E:
        """The registered entry; an unknown name is a ValueError listing the known ones."""
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; available: {', '.join(self.names())}")
        return self._items[name]

    def meta(self, name: str) -> dict[str, Any]:
        """The metadata registered with ``name`` (the stored dict; empty when none was given)."""
        self.get(name)
        return self._meta[name]


class Registry(Catalog[Callable[..., T]]):
    """Names -> callables returning ``T``, creatable by name with keyword options."""

    def register(self, name: str, **meta: Any) -> Callable[[F], F]:
        """Class decorator: make the class creatable as ``create(name, **options)``; ``meta`` is
        kept beside it (see :meth:`Catalog.meta`)."""

        def deco(obj: F) -> F:
            self.add(name, obj, **meta)
            return obj

        return deco

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
