"""How a run's network embeds images for validation and evaluation, and where its frozen stages'
maps persist (the run's :class:`~deephash.evaluation.feature_store.FeatureStore`)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deephash.data import ProtocolData
from deephash.evaluation.evaluator import embed_images
from deephash.evaluation.feature_store import FeatureStore, default_cache_dir
from deephash.training.config import TrainConfig
from deephash.training.frozen_cache import CachedTop, freeze_bottom

__all__ = ["frozen_store", "image_embedder"]


def frozen_store(
    cfg: TrainConfig, net: nn.Module, bottom: nn.Module, data: ProtocolData
) -> FeatureStore:
    """The on-disk store of this run's frozen stages (``cache_dir``, else the default)."""
    backbone = net.get_submodule("backbone")
    key = FeatureStore.key_for(
        bottom,
        backbone=cfg.backbone,
        stages=cfg.freeze_stages,
        input_size=getattr(backbone, "min_input_size", None),
        mean=data.mean,
        std=data.std,
    )
    directory = Path(cfg.cache_dir) if cfg.cache_dir else default_cache_dir() / "frozen"
    return FeatureStore(directory, key)


def image_embedder(
    cfg: TrainConfig, net: nn.Module, data: ProtocolData, device: torch.device
) -> Callable[..., np.ndarray]:
    """``embed(images, progress=False, desc="...")``: uint8 (N, H, W[, C]) -> float32 (N, D), the
    network in eval mode. With frozen stages, their maps come from the run's store (computed once
    per image), so that only the top runs."""
    pre = data.preprocessor(augment=False)
    if not cfg.freeze_stages:

        def embed(
            images: np.ndarray, progress: bool = False, desc: str = "embedding"
        ) -> np.ndarray:
            return embed_images(net, images, pre, device=device, progress=progress, desc=desc)

        return embed
    bottom, top = freeze_bottom(net, cfg.freeze_stages)
    store = frozen_store(cfg, net, bottom, data)
    cached = CachedTop(net, top)

    def embed_cached(
        images: np.ndarray, progress: bool = False, desc: str = "embedding"
    ) -> np.ndarray:
        maps = store.maps(
            bottom, images, pre, device=device, progress=progress, desc=f"{desc} (frozen stages)"
        )
        return embed_images(
            cached,
            maps.numpy(),
            lambda m: torch.from_numpy(m).float(),
            device=device,
            progress=progress,
            desc=desc,
        )

    return embed_cached
