"""Re-rank descriptors: real-valued vectors a trained network gives each image besides its code.

A collection finds Hamming candidates with the codes and re-ranks them with a descriptor (see
:mod:`deephash.index.rerank`). A hashing network's codes describe the *class* (a well-trained
recipe maps a class onto one code); a descriptor must also tell two images of one class apart and
recognise an image after a JPEG round trip, a brightness change or a one-pixel shift. Every kind
is L2-normalised, so the re-rank score is a cosine similarity.

Kinds (``list_descriptors()``), from the same forward pass as the code:

``head``
    The head's relaxed code in (-1, 1) before the sign: (B, bits).
``backbone``
    The backbone's features (B, F) (256 for small-cnn): what classes and codes are made of.
``conv``
    The last convolution stage's map, average-pooled to a 3×3 grid and flattened (B, C·9)
    (1,152 for small-cnn): the spatial layout the fully connected layer mixes away.
``stages``
    Every convolution stage's map average-pooled to a 3×3 grid, each stage L2-normalised, then
    concatenated and normalised again (B, 9·ΣC) (2,016 for small-cnn): early stages keep edges
    and strokes that tell instances apart, the 3×3 pooling absorbs a shift of a pixel or two.
``stages-2x2``
    As ``stages`` on a 2×2 grid (B, 4·ΣC) (896 for small-cnn).
``early-stages``
    As ``stages`` with the first two stages only (B, 9·(C1 + C2)) (864 for small-cnn): the
    recommended kind for a network without instance outputs. Chosen on transformed copies of
    validation images (``benchmarks/copy_descriptor_scan.py``, docs/RESULTS.md): the last stage
    (like the fully connected features) is trained to map a class onto one point, so it adds
    class information the codes already carry and loses shift robustness; the early stages keep
    the instance.
``instance``
    The network's instance outputs (B, instance_dims) (:meth:`RetrievalNet.with_instance`,
    trained by the instance term to tell an item and its copies from the rest of its class). A
    *binary* kind (:data:`BINARY_DESCRIPTORS`): a collection stores only their signs, packed to
    ``instance_dims / 8`` bytes, and re-ranks by Hamming distance; the recommended kind for a
    network that has them.

``conv`` and the ``stages`` kinds need a backbone whose ``features`` is an ``nn.Sequential`` of
stages (small-cnn, VGG) or that names its stages' last modules with ``stage_modules()``
(EfficientNet-Lite); the others work with every backbone.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from deephash._registry import Catalog

__all__ = [
    "BINARY_DESCRIPTORS",
    "DESCRIPTORS",
    "RECOMMENDED_DESCRIPTOR",
    "compute_descriptors",
    "descriptor_dim",
    "list_descriptors",
    "supports",
]

DescriptorFn = Callable[[nn.Module, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""(network, images (B, C, H, W)) -> (descriptors (B, D) before normalisation, output (B, out))."""

# chosen on transformed copies of validation images (benchmarks/copy_descriptor_scan.py)
RECOMMENDED_DESCRIPTOR = "early-stages"
# kinds a collection stores as packed signs (bits) and compares by Hamming distance
BINARY_DESCRIPTORS = ("instance",)


def _stage_maps(net: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Each convolution stage's output map (B, C_i, H_i, W_i) and the network's output."""
    backbone = getattr(net, "backbone", None)
    stages = _stage_modules(backbone)
    if stages is None:
        raise ValueError(
            f"descriptor needs a backbone with convolution stages (backbone.features, an "
            f"nn.Sequential, or stage_modules()), which {type(backbone).__name__} lacks; use "
            "'backbone' or 'head'"
        )
    maps: list[torch.Tensor] = []
    hooks = [s.register_forward_hook(lambda m, i, o: maps.append(o)) for s in stages]
    try:
        out = net(x)
    finally:
        for h in hooks:
            h.remove()
    return maps, out


def _stage_modules(backbone: object) -> list[nn.Module] | None:
    """The modules whose outputs are the stage maps: ``features`` (an nn.Sequential of stages,
    small-cnn and VGG) or what ``stage_modules()`` names (EfficientNet-Lite: each stage's last
    block); None for a backbone without stages."""
    features = getattr(backbone, "features", None)
    if isinstance(features, nn.Sequential):
        return list(features)
    named = getattr(backbone, "stage_modules", None)
    if callable(named):
        modules: list[nn.Module] = named()
        return modules
    return None


def _bins(n: int, side: int, like: torch.Tensor) -> torch.Tensor:
    """(side, n): row i averages the bin [floor(i n / side), ceil((i + 1) n / side)), the bins of
    adaptive average pooling."""
    m = torch.zeros(side, n, dtype=torch.float32, device=like.device)
    for i in range(side):
        lo, hi = (i * n) // side, -(-((i + 1) * n) // side)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def _grid(fmap: torch.Tensor, side: int) -> torch.Tensor:
    """Adaptive average pooling to side × side, flattened (B, C·side²), written as two products
    with bin matrices so that torch.onnx can export it for any map size (ONNX's pooling cannot
    express bins of unequal size)."""
    h, w = int(fmap.shape[-2]), int(fmap.shape[-1])
    pooled = torch.einsum(
        "bchw,sh,tw->bcst", fmap.float(), _bins(h, side, fmap), _bins(w, side, fmap)
    )
    return torch.flatten(pooled, 1)


def _unit(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.normalize(x.float(), p=2, dim=1)


def _head(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    out = net(x)
    return out, out


def _backbone(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    features: torch.Tensor = getattr(net, "backbone")(x)  # noqa: B009  (untyped submodule)
    out: torch.Tensor = getattr(net, "from_features")(features)  # noqa: B009
    return features, out


def _instance(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if not int(getattr(net, "instance_dims", 0)):
        raise ValueError(
            "the 'instance' descriptor needs a network trained with instance outputs "
            "(instance_bits in its config), which this one lacks; use 'early-stages' or none"
        )
    out, instance = getattr(net, "with_instance")(x)  # noqa: B009  (untyped module)
    return instance, out


def _conv(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    maps, out = _stage_maps(net, x)
    return _grid(maps[-1], 3), out


def _stages(side: int, first: int | None = None) -> DescriptorFn:
    def run(net: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps, out = _stage_maps(net, x)
        return torch.cat([_unit(_grid(m, side)) for m in maps[:first]], dim=1), out

    return run


DESCRIPTORS: Catalog[DescriptorFn] = Catalog("descriptor")
"""Every descriptor kind by name, in the order :func:`list_descriptors` gives them."""
DESCRIPTORS.add("head", _head)
DESCRIPTORS.add("backbone", _backbone)
DESCRIPTORS.add("conv", _conv)
DESCRIPTORS.add("stages", _stages(3))
DESCRIPTORS.add("stages-2x2", _stages(2))
DESCRIPTORS.add("early-stages", _stages(3, first=2))
DESCRIPTORS.add("instance", _instance)


def list_descriptors() -> list[str]:
    """The descriptor kinds a collection can store."""
    return list(DESCRIPTORS)


@torch.no_grad()
def compute_descriptors(
    net: nn.Module, x: torch.Tensor, kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass of ``net`` (a :class:`~deephash.models.network.RetrievalNet`, eval mode)
    on a preprocessed batch x (B, C, H, W).

    Returns (descriptors float32 (B, D), L2-normalised; the network's output (B, out_dim), the
    relaxed code whose sign is the code)."""
    if kind not in DESCRIPTORS:
        raise ValueError(f"unknown descriptor {kind!r}; choose one of {list_descriptors()}")
    desc, out = DESCRIPTORS.get(kind)(net, x)
    return _unit(desc), out.float()


def supports(net: nn.Module, kind: str) -> bool:
    """Whether ``net`` can give descriptor ``kind`` (the stage kinds need convolution stages,
    ``instance`` instance outputs)."""
    if kind == "instance":
        return bool(int(getattr(net, "instance_dims", 0)))
    if kind in ("head", "backbone"):
        return True
    return _stage_modules(getattr(net, "backbone", None)) is not None


def descriptor_dim(net: nn.Module, kind: str, input_shape: tuple[int, int, int]) -> int:
    """The width D of descriptor ``kind`` for images of ``input_shape`` (C, H, W)."""
    was_training = net.training
    net.eval()
    try:
        param = next(net.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        desc, _ = compute_descriptors(net, torch.zeros((2, *input_shape), device=device), kind)
    finally:
        net.train(was_training)
    return int(desc.shape[1])
