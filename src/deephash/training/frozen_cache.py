"""Fine-tuning that fits a CPU: freeze a backbone's first stages and compute their outputs once.

With ``freeze_stages: N`` a recipe cuts the backbone after its N-th stage
(:meth:`~deephash.models.efficientnet_lite.EfficientNetLite.split`). The bottom is frozen (no
gradients, batch norm in inference mode), so its output for an image never changes during training:
:class:`FrozenBottomCache` computes it once per training image and per view (the clean image plus
``cache_views`` augmented copies, each drawn from its own seeded generator) and stores it as
float16 (about 3.6 KB per image and view for EfficientNet-Lite0 cut after stage 5 at 64 px). An
epoch then runs only the trainable top and the head on cached maps, picking one view per image and
step. The outputs equal the uncached network's up to float16 rounding of the cached maps.

Clean views also persist on disk in a :class:`~deephash.evaluation.feature_store.FeatureStore`,
content-addressed: one file per frozen bottom (keyed by a digest of its weights, its input size and
the input normalisation) holding the maps of every image it has seen, found again by a digest of the
image's pixels. A second seed, another recipe with the same frozen stages, the validation images and
the final evaluation's query and database all reuse what an earlier run computed, whatever the
split, order or protocol. Augmented views depend on the run's seed and stay in memory.

Encoding and serving run the whole network on images; validation and the final evaluation of a
run with frozen stages take the clean maps from the store, which is the same computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deephash.evaluation.feature_store import FeatureStore

__all__ = ["CachedTop", "FrozenBottomCache", "freeze_bottom", "set_bn_eval"]

Preprocess = Callable[..., torch.Tensor]


def freeze_bottom(net: nn.Module, stages: int) -> tuple[nn.Module, nn.Module]:
    """Cut ``net.backbone`` after ``stages`` stages; freeze the bottom; return ``(bottom, top)``.

    net: a :class:`~deephash.models.network.RetrievalNet` whose backbone has ``split(stages)``.
    The bottom's parameters get ``requires_grad=False`` (optimisers and L2-SP skip them).
    """
    backbone = net.get_submodule("backbone")
    split = getattr(backbone, "split", None)
    if not callable(split):
        raise ValueError(
            f"freeze_stages needs a backbone that can be cut after a stage (efficientnet-lite0/1/2); "
            f"{getattr(backbone, 'arch', None) or type(backbone).__name__} cannot"
        )
    bottom, top = split(stages)
    bottom.requires_grad_(False)
    return bottom, top


def set_bn_eval(module: nn.Module) -> None:
    """Put every batch-norm layer of ``module`` in inference mode (running statistics are used and
    not updated); the affine weights still train. Call after ``model.train()``."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


class CachedTop(nn.Module):
    """The network's output from cached bottom maps: what ``net(images)`` returns, in training
    mode (the head's output) and in eval mode (``net.from_features``: the head's output, or the
    normalised features with ``retrieve_from="backbone"``).

    net: the :class:`~deephash.models.network.RetrievalNet`; top: the trainable part of its
    backbone from :func:`freeze_bottom`. maps: float (B, c, h, w) -> (B, out_dim).
    """

    def __init__(self, net: nn.Module, top: nn.Module) -> None:
        super().__init__()
        self.top = top
        self.head = net.get_submodule("head")
        self._net = [net]  # not a sub-module: its parameters are the top's and the head's

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        features = self.top(maps)
        out: torch.Tensor = self._net[0].from_features(features, training=self.training)  # type: ignore[operator]
        return out


class FrozenBottomCache:
    """Outputs of a frozen bottom for every training image: (views, N, c, h, w) float16 on CPU.

    View 0 is the clean image; views 1..V augmented copies (view v's augmentation generator is
    seeded with ``seed * 1_000_003 + v``, so a cache is the same on every run with that seed).
    """

    def __init__(self, maps: torch.Tensor, seconds: float) -> None:
        self.maps = maps
        self.seconds = seconds

    @property
    def views(self) -> int:
        return int(self.maps.shape[0])

    @classmethod
    def build(
        cls,
        bottom: nn.Module,
        images: np.ndarray,
        *,
        clean: Preprocess,
        augment: Preprocess | None,
        views: int,
        seed: int,
        device: torch.device,
        batch_size: int = 500,
        progress: bool = True,
        store: FeatureStore | None = None,
    ) -> FrozenBottomCache:
        """Run ``bottom`` (in eval mode, no gradients; left in eval mode) over ``images`` once per
        view.

        images: uint8 (N, H, W[, C]); clean / augment: batch preprocessors (uint8 -> normalised
        float (B, C, H, W)), ``augment`` taking a ``generator`` keyword; views: augmented copies
        per image on top of the clean one (0: clean only; needs ``augment`` when > 0); store:
        where clean maps are looked up and saved (None: computed here, kept in memory).
        """
        if views < 0:
            raise ValueError(f"cache_views must be >= 0, got {views}")
        if views > 0 and augment is None:
            raise ValueError("augmented cache views need an augmenting preprocessor")
        t0 = time.perf_counter()
        bottom.eval()  # frozen: always in inference mode
        n = len(images)
        maps: torch.Tensor | None = None
        bar = tqdm(
            total=n * (views + 1),
            desc="caching frozen stages",
            unit="img",
            disable=None if progress else True,
            leave=False,
        )
        first_view = 0
        if store is not None and n:
            clean_maps = store.maps(
                bottom, images, clean, device=device, batch_size=batch_size, progress=progress
            )
            maps = torch.empty((views + 1, *clean_maps.shape), dtype=torch.float16)
            maps[0] = clean_maps
            first_view = 1
            bar.update(n)
        with torch.no_grad():
            for v in range(first_view, views + 1):
                gen = torch.Generator().manual_seed(seed * 1_000_003 + v)
                for s in range(0, n, batch_size):
                    chunk = images[s : s + batch_size]
                    if v == 0:
                        x = clean(chunk)
                    else:
                        assert augment is not None
                        x = augment(chunk, generator=gen)
                    out = bottom(x.to(device)).to("cpu", torch.float16)
                    if maps is None:
                        maps = torch.empty((views + 1, n, *out.shape[1:]), dtype=torch.float16)
                    maps[v, s : s + len(chunk)] = out
                    bar.update(len(chunk))
        bar.close()
        if maps is None:
            raise ValueError("cannot cache the frozen stages of an empty training split")
        return cls(maps, time.perf_counter() - t0)

    def batch(
        self, indices: np.ndarray, *, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """Maps of training images ``indices`` (B,), one view each: float32 (B, c, h, w).

        With a generator each image gets a uniformly drawn view; without one, the clean view."""
        idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
        if generator is None or self.views == 1:
            view = torch.zeros(len(idx), dtype=torch.int64)
        else:
            view = torch.randint(self.views, (len(idx),), generator=generator)
        return self.maps[view, idx].to(device=device, dtype=torch.float32)
