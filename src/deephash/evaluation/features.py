"""The backbone-feature baseline: features before the classifier, judged by the retrieval protocol."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deephash.atomic_io import atomic_save_npz, atomic_write_json
from deephash.device import resolve_device
from deephash.evaluation.evaluator import embed_images, retrieval_metrics
from deephash.run_folder import RunFolder

if TYPE_CHECKING:
    import torch
    from torch import nn

    from deephash.data import ProtocolData

__all__ = ["extract_baseline"]


def extract_baseline(
    *,
    dataset: str,
    backbone: str,
    out: Path,
    protocol: str | None = None,
    weights: str | None = None,
    data_dir: str | None = None,
    download: bool = False,
    seed: int = 0,
    batch_size: int = 512,
    knn_k: int = 10,
    precision_k: int = 100,
    map_k: int = 1000,
    tsne_samples: int = 2000,
    device: str = "auto",
    progress: bool = True,
    protocol_options: dict[str, Any] | None = None,
    normalize: bool = False,
    backbone_options: dict[str, Any] | None = None,
    cache: bool = False,
) -> dict[str, Any]:
    """Extract query/database features with a backbone and write metrics.json, features.npz, tsne.png.

    Returns the metrics dict (keys: map, map_at_k, precision_at_k, map_at_r, r_precision,
    precision_at_1, knn_accuracy, num_queries, num_database, protocol, backbone, weights,
    feature_dim, seconds).

    normalize: L2-normalise each feature vector (cosine retrieval; also what ITQ / LSH then fit).
    backbone_options: architecture options of the backbone (e.g. ``{"input_size": 96}``).
    cache: keep the features in the content-addressed store under
        ``$DEEPHASH_CACHE_DIR/features`` (default ``~/.cache/deephash/features``), keyed by the
        backbone's exact weights and found again by the images' pixels, so another seed, protocol
        or LSH / ITQ row over the same images does not extract them again.
    """
    import torch

    from deephash.data import default_protocol, load_protocol_data
    from deephash.models import backbone_input_stats

    torch.manual_seed(seed)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    data = load_protocol_data(
        default_protocol(protocol or dataset),
        data_dir=data_dir,
        download=download,
        seed=seed,
        # a pretrained backbone's own normalisation where it has one, else the dataset's
        normalization=backbone_input_stats(backbone),
        **(protocol_options or {}),
    )
    net = _backbone(backbone, weights, data.in_channels, backbone_options).to(dev).eval()
    embed = _feature_embedder(net, data, backbone, dev, batch_size, progress, cache)
    q = embed(data.query.images, "query features")
    loo = data.protocol.leave_one_out  # query and database are the same images
    db = q if loo else embed(data.database.images, "database features")
    if normalize:
        q = _unit_rows(q)
        db = q if loo else _unit_rows(db)
    metrics = retrieval_metrics(
        q,
        data.query.labels,
        db,
        data.database.labels,
        map_k=map_k,
        precision_k=precision_k,
        knn_k=knn_k,
        leave_one_out=loo,
    )
    metrics.update(
        protocol=data.protocol_name,
        dataset=dataset,
        backbone=backbone,
        weights=weights or "random",
        feature_dim=int(q.shape[1]),
        normalized=bool(normalize),
        seed=seed,
        seconds=round(time.perf_counter() - t0, 2),
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_outputs(out, data, q, db, metrics)
    if tsne_samples > 0:
        _plot_query_tsne(
            out, data, q, f"{backbone} features ({weights or 'random'} weights)", tsne_samples, seed
        )
    return metrics


def _feature_embedder(
    net: nn.Module,
    data: ProtocolData,
    backbone: str,
    dev: torch.device,
    batch_size: int,
    progress: bool,
    cache: bool,
) -> Callable[[np.ndarray, str], np.ndarray]:
    """``embed(images, desc)``: uint8 (N, H, W[, C]) -> float32 features (N, D) of ``net`` (in
    eval mode on ``dev``); with ``cache``, through the content-addressed feature store."""
    pre = data.preprocessor(augment=False)
    store = None
    if cache:
        import torch

        from deephash.evaluation.feature_store import FeatureStore, default_cache_dir

        key = FeatureStore.key_for(
            net,
            backbone=backbone,
            # what decides the output besides the weights (the options that change the
            # architecture show in the module itself, which the key covers)
            input_size=getattr(net, "min_input_size", None),
            mean=data.mean,
            std=data.std,
        )
        store = FeatureStore(default_cache_dir() / "features", key, dtype=torch.float32)

    def embed(images: np.ndarray, desc: str) -> np.ndarray:
        if store is not None:
            out = store.maps(
                net, images, pre, device=dev, batch_size=batch_size, progress=progress, desc=desc
            )
            return out.numpy()
        return embed_images(
            net, images, pre, device=dev, batch_size=batch_size, progress=progress, desc=desc
        )

    return embed


def _write_outputs(
    out: Path, data: ProtocolData, q: np.ndarray, db: np.ndarray, metrics: dict[str, Any]
) -> None:
    """``features.npz`` (query (Q, D), database (N, D) and their labels) and ``metrics.json``."""
    folder = RunFolder(out)
    atomic_save_npz(
        folder.features,
        query=q,
        query_labels=data.query.labels,
        database=db,
        database_labels=data.database.labels,
    )
    atomic_write_json(folder.metrics, metrics)


def _plot_query_tsne(
    out: Path, data: ProtocolData, q: np.ndarray, what: str, samples: int, seed: int
) -> None:
    """t-SNE of the query features q: float (nq, dim) by class, saved as out/tsne.png."""
    from deephash.viz import plot_tsne

    plot_tsne(
        q,
        data.query.labels,
        out / "tsne.png",
        class_names=list(data.query.class_names) or None,
        num_samples=samples,
        title=f"t-SNE of {what}",
        seed=seed,
    )


def _backbone(
    name: str, weights: str | None, in_channels: int, options: dict[str, Any] | None
) -> torch.nn.Module:
    """The backbone ``name`` with ``weights`` (None: random; see resolve_weights), on the CPU."""
    from deephash.models import create_backbone
    from deephash.models.weights import resolve_weights

    return create_backbone(
        name, weights=resolve_weights(weights), in_channels=in_channels, **(options or {})
    )


def _unit_rows(x: np.ndarray) -> np.ndarray:
    """float (n, d) rows scaled to unit L2 norm (a zero row stays zero)."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
