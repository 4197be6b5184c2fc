"""Fine-tuning that fits a CPU: freeze a backbone's first stages and compute their outputs once.

With ``freeze_stages: N`` a recipe cuts the backbone after its N-th stage
(:meth:`~deephash.models.efficientnet_lite.EfficientNetLite.split`). The bottom is frozen (no
gradients, batch norm in inference mode), so its output for an image never changes during training:
:class:`FrozenBottomCache` computes it once per training image and per view (the clean image plus
``cache_views`` augmented copies, each drawn from its own seeded generator) and stores it as
float16 (about 3.6 KB per image and view for EfficientNet-Lite0 cut after stage 5 at 64 px). An
epoch then runs only the trainable top and the head on cached maps, picking one view per image and
step. The outputs equal the uncached network's up to float16 rounding of the cached maps.

Clean views also persist on disk in a :class:`FrozenMapStore`, content-addressed: one file per
frozen bottom (keyed by a digest of its weights, its input size and the input normalisation) holding
the maps of every image it has seen, found again by a digest of the image's pixels. A second seed,
another recipe with the same frozen stages, the validation images and the final evaluation's query
and database all reuse what an earlier run computed, whatever the split, order or protocol. The
store is written atomically (temporary file + rename), so an interrupted run never leaves a torn
file; two runs writing at once can only lose each other's additions, which are recomputed later.
Augmented views depend on the run's seed and stay in memory.

Encoding and serving run the whole network on images; validation and the final evaluation of a
run with frozen stages take the clean maps from the store, which is the same computation.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = [
    "CachedTop",
    "FrozenBottomCache",
    "FrozenMapStore",
    "default_cache_dir",
    "freeze_bottom",
    "image_digests",
    "set_bn_eval",
]

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


def default_cache_dir() -> Path:
    """``$DEEPHASH_CACHE_DIR``, else ``~/.cache/deephash``; frozen maps go to its ``frozen/``."""
    env = os.environ.get("DEEPHASH_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "deephash"


def image_digests(images: np.ndarray) -> np.ndarray:
    """A 16-byte BLAKE2b digest of each image's pixels (and shape): bytes ``|S16`` (N,)."""
    flat = np.ascontiguousarray(images).reshape(len(images), -1)
    shape = repr(tuple(images.shape[1:])).encode()
    return np.array(
        [hashlib.blake2b(row.tobytes() + shape, digest_size=16).digest() for row in flat],
        dtype="S16",
    )


class FrozenMapStore:
    """Clean-image outputs of one frozen bottom on disk, found again by the image's pixels.

    directory: where the store files live (one ``<key>.pt`` per frozen bottom); key: from
    :meth:`key_for`. :meth:`maps` returns the maps of any uint8 images, computing and saving only
    those it has not seen.
    """

    def __init__(self, directory: str | os.PathLike[str], key: str) -> None:
        self.path = Path(directory) / f"{key}.pt"

    @staticmethod
    def key_for(bottom: nn.Module, **identity: Any) -> str:
        """A digest of the bottom's weights and buffers and of ``identity`` (the architecture,
        the cut, the input size, the normalisation): two bottoms share a store only when they
        compute the same function."""
        h = hashlib.sha256(repr(sorted(identity.items())).encode())
        h.update(repr(bottom).encode())
        for name, tensor in bottom.state_dict().items():
            h.update(name.encode())
            h.update(tensor.detach().to("cpu").contiguous().numpy().tobytes())
        return h.hexdigest()[:32]

    def _load(self) -> tuple[np.ndarray, torch.Tensor | None]:
        if not self.path.is_file():
            return np.empty(0, dtype="S16"), None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
            return np.asarray(state["digests"].numpy()).view("S16").ravel(), state["maps"]
        except Exception:  # an unreadable store is only a cache: start it again
            return np.empty(0, dtype="S16"), None

    def maps(
        self,
        bottom: nn.Module,
        images: np.ndarray,
        preprocess: Preprocess,
        *,
        device: torch.device,
        batch_size: int = 500,
        progress: bool = True,
        desc: str = "caching frozen stages",
    ) -> torch.Tensor:
        """Maps of ``images`` (uint8 (N, H, W[, C])): float16 (N, c, h, w) on the CPU.

        preprocess: the clean (non-augmenting) batch preprocessor of the run."""
        digests = image_digests(images)
        known, stored = self._load()
        row = {d: i for i, d in enumerate(known.tolist())}
        todo = [i for i, d in enumerate(digests.tolist()) if d not in row]
        # identical images need computing once
        first: dict[bytes, int] = {}
        for i in todo:
            first.setdefault(digests[i].tobytes(), i)
        new_idx = np.fromiter(first.values(), dtype=np.int64, count=len(first))
        if len(new_idx):
            fresh = _run_bottom(
                bottom, images, new_idx, preprocess, device, batch_size, progress, desc
            )
            stored = fresh if stored is None else torch.cat([stored, fresh])
            for j, i in enumerate(new_idx.tolist()):
                row[digests[i].tobytes()] = len(known) + j
            known = np.concatenate([known, digests[new_idx]])
            self._save(known, stored)
        assert stored is not None
        rows = torch.as_tensor([row[d] for d in digests.tolist()], dtype=torch.int64)
        return stored[rows]

    def _save(self, digests: np.ndarray, maps: torch.Tensor) -> None:
        from deephash.atomic_io import atomic_write

        self.path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "digests": torch.from_numpy(digests.view(np.uint8).reshape(-1, 16).copy()),
            "maps": maps,
        }
        atomic_write(self.path, lambda f: torch.save(state, f))


def _run_bottom(
    bottom: nn.Module,
    images: np.ndarray,
    idx: np.ndarray,
    preprocess: Preprocess,
    device: torch.device,
    batch_size: int,
    progress: bool,
    desc: str,
) -> torch.Tensor:
    bottom.eval()  # frozen: always in inference mode
    out: list[torch.Tensor] = []
    bar = tqdm(
        total=len(idx), desc=desc, unit="img", disable=None if progress else True, leave=False
    )
    with torch.no_grad():
        for s in range(0, len(idx), batch_size):
            x = preprocess(images[idx[s : s + batch_size]])
            out.append(bottom(x.to(device)).to("cpu", torch.float16))
            bar.update(len(out[-1]))
    bar.close()
    return torch.cat(out)


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
        store: FrozenMapStore | None = None,
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
