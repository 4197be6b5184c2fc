"""A content-addressed store of a module's outputs for images, on disk.

Frozen network parts (the frozen stages of a fine-tuned backbone, or a whole pretrained backbone
used as a feature baseline) compute the same output for an image every time. :class:`FeatureStore`
keeps one file per module, keyed by a digest of its weights and buffers and of what else decides
its output (input size, normalisation), holding the outputs of every image it has seen, found again
by a digest of the image's pixels. Other seeds, recipes, protocols and splits over the same images
reuse them, whatever their order. The file is written atomically (temporary file + rename), so an
interrupted run never leaves a torn file; two processes writing at once can only lose each other's
additions, which are computed again later; an unreadable file is started again, never trusted.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

__all__ = ["FeatureStore", "default_cache_dir", "image_digests"]

Preprocess = Callable[..., torch.Tensor]


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


class FeatureStore:
    """A module's outputs for clean images on disk, found again by the image's pixels.

    directory: where the store files live (one ``<key>.pt`` per module); key: from
    :meth:`key_for`; dtype: the stored precision (float16 for feature maps, float32 for final
    features). :meth:`maps` returns the outputs for any uint8 images, computing and saving only
    those it has not seen.
    """

    def __init__(
        self, directory: str | os.PathLike[str], key: str, *, dtype: torch.dtype = torch.float16
    ) -> None:
        self.path = Path(directory) / f"{key}.pt"
        self.dtype = dtype

    @staticmethod
    def key_for(bottom: nn.Module, **identity: Any) -> str:
        """A digest of the module's weights and buffers and of ``identity`` (the architecture,
        the cut, the input size, the normalisation): two modules share a store only when they
        compute the same function. Numbers and sequences of numbers count by value (a numpy
        float and the Python float it equals give one key)."""
        plain = {k: _plain(v) for k, v in identity.items()}
        h = hashlib.sha256(repr(sorted(plain.items())).encode())
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
            if state["maps"].dtype != self.dtype:
                raise ValueError("stored in another precision")
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
        """Outputs of ``bottom`` (run in eval mode) for ``images`` (uint8 (N, H, W[, C])):
        ``dtype`` (N, ...) on the CPU.

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
            ).to(self.dtype)
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


def _plain(value: Any) -> Any:
    """Numbers as Python floats / ints and sequences of numbers as tuples, for a stable repr."""
    if isinstance(value, np.ndarray | list | tuple):
        return tuple(_plain(v) for v in value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


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
            out.append(bottom(x.to(device)).float().cpu())
            bar.update(len(out[-1]))
    bar.close()
    return torch.cat(out)
