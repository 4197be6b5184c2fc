"""The backbone registry: each name's factory, with its pretrained weights and input statistics.

A backbone module registers its factories with what belongs to them (timm's ``default_cfgs`` is
the model)::

    @register_backbone("resnet18", pretrained=Checkpoint(TORCHVISION_URL + "resnet18-f37072fd.pth"))
    def resnet18(*, in_channels: int = 3, num_classes: int = 1000) -> ResNet: ...

:func:`deephash.models.backbones.create_backbone` builds them by name.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

from deephash._registry import Registry
from deephash.models.backbone import Backbone
from deephash.models.pretrained import Pretrained

__all__ = [
    "BACKBONES",
    "BackboneFactory",
    "backbone_input_stats",
    "pretrained_backbones",
    "pretrained_weights",
    "register_backbone",
]

BackboneFactory = Callable[..., Backbone]
FactoryT = TypeVar("FactoryT", bound=BackboneFactory)

BACKBONES: Registry[Backbone] = Registry("backbone")
"""Every built-in backbone factory by name; metadata ``input_stats`` and ``pretrained``."""


def register_backbone(
    name: str,
    *,
    input_stats: tuple[float, float] | None = None,
    pretrained: Pretrained | None = None,
) -> Callable[[FactoryT], FactoryT]:
    """Decorator: make ``factory(*, in_channels=..., **options) -> Backbone`` creatable by name.

    The factory's keyword parameters are the options :func:`create_backbone` accepts for it.
    input_stats: ``(mean, std)`` in [0, 1] pixel units, the same for every channel, that this
    backbone's inputs must be normalised with whatever the dataset (its pretrained weights were
    trained so); ``None``: the dataset's own statistics (see :func:`backbone_input_stats`).
    pretrained: where its ImageNet weights are published (``weights="imagenet"``); ``None``: none.
    """
    if ":" in name:
        raise ValueError(f"backbone name {name!r} may not contain ':' (reserved for adapters)")
    stats = None if input_stats is None else (float(input_stats[0]), float(input_stats[1]))

    def deco(factory: FactoryT) -> FactoryT:
        if "in_channels" not in inspect.signature(factory).parameters:
            raise ValueError(f"backbone factory for {name!r} must take an in_channels argument")
        BACKBONES.add(name, factory, input_stats=stats, pretrained=pretrained)
        return factory

    return deco


def backbone_input_stats(name: str) -> tuple[float, float] | None:
    """The normalisation a backbone's inputs need, or ``None`` to use the dataset's statistics.

    Returns ``(mean, std)`` in [0, 1] pixel units, the same for every channel (e.g.
    EfficientNet-Lite's ImageNet weights expect ``(x - 0.498) / 0.502``). Training, feature
    extraction and serving normalise with these instead of the dataset's mean and std
    (``load_protocol_data(..., normalization=...)``).
    """
    if name not in BACKBONES:
        return None
    stats: tuple[float, float] | None = BACKBONES.meta(name)["input_stats"]
    return stats


def pretrained_weights(name: str) -> Pretrained | None:
    """Where backbone ``name``'s ImageNet weights are published; ``None`` when it has none (or
    is not registered)."""
    if name not in BACKBONES:
        return None
    weights: Pretrained | None = BACKBONES.meta(name)["pretrained"]
    return weights


def pretrained_backbones(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern that have ImageNet weights, sorted."""
    return [n for n in BACKBONES.names(pattern) if pretrained_weights(n) is not None]
