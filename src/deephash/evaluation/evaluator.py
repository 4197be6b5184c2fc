"""Embed a protocol's splits with a model and compute the one consistent set of retrieval metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from deephash import metrics
from deephash.codes import pack_bits, sign
from deephash.hashing.code_usage import code_usage

__all__ = ["embed_images", "retrieval_metrics"]


@torch.no_grad()
def embed_images(
    model: nn.Module,
    images: np.ndarray,
    preprocess: Callable[[np.ndarray], torch.Tensor],
    *,
    device: torch.device,
    batch_size: int = 512,
    progress: bool = False,
    desc: str = "embedding",
) -> np.ndarray:
    """Run ``model`` in eval mode over uint8 images in batches.

    images: uint8 (N, H, W) or (N, H, W, C); preprocess turns a uint8 batch into a float tensor
    (B, C, H, W). Returns float32 (N, D) on the CPU.
    """
    was_training = model.training
    model.eval()
    outs: list[np.ndarray] = []
    try:
        starts = range(0, len(images), batch_size)
        for s in tqdm(
            starts, desc=desc, disable=None if progress else True, leave=False, unit="batch"
        ):
            x = preprocess(images[s : s + batch_size]).to(device, non_blocking=True)
            outs.append(model(x).float().cpu().numpy())
    finally:
        model.train(was_training)
    if not outs:
        raise ValueError("no images to embed")
    return np.concatenate(outs).astype(np.float32, copy=False)


def retrieval_metrics(
    query: np.ndarray,
    query_labels: np.ndarray,
    database: np.ndarray,
    database_labels: np.ndarray,
    *,
    bits: int | None = None,
    map_k: int = 1000,
    precision_k: int = 100,
    knn_k: int = 10,
    distance: str = "euclidean",
    leave_one_out: bool = False,
) -> dict[str, Any]:
    """The standard metrics dict for float embeddings, or for hash codes when ``bits`` is set.

    query, database: float (n, D) embeddings, or relaxed codes (n, bits) when ``bits`` is given, in
    which case the Hamming metrics of their signs are the headline numbers and the float metrics of
    the relaxed codes go under ``"float"``. Labels: int (n,). Keys: map (mAP@all), map_at_k,
    precision_at_k, map_at_r, r_precision, precision_at_1, knn_accuracy (and, for codes,
    precision_hamming2 and ``code_usage``: buckets, largest bucket, the queries' tie band at
    distance 0, entropies; see :class:`deephash.hashing.CodeUsage`), num_queries, num_database,
    leave_one_out, seconds.

    leave_one_out: the metric-learning shape of an unseen-class protocol: query and database are
    the same images (query i is database item i) and each query is left out of its own ranking.
    """
    t0 = time.perf_counter()
    ql = np.asarray(query_labels)
    dl = np.asarray(database_labels)
    settings: dict[str, Any] = {
        "map_k": map_k,
        "precision_k": precision_k,
        "knn_k": knn_k,
        "leave_one_out": leave_one_out,
    }
    out: dict[str, Any]
    if bits is not None:
        q_codes = pack_bits(sign(query[:, :bits]))
        d_codes = pack_bits(sign(database[:, :bits]))
        out = dict(
            metrics.retrieval_report(
                q_codes, ql, d_codes, dl, distance="hamming", **settings
            ).to_dict()
        )
        out["bits"] = int(bits)
        out["code_usage"] = code_usage(
            d_codes, q_codes, bits=bits, leave_one_out=leave_one_out
        ).to_dict()
        out["float"] = metrics.retrieval_report(
            query, ql, database, dl, distance=distance, **settings
        ).to_dict()
    else:
        out = dict(
            metrics.retrieval_report(
                query, ql, database, dl, distance=distance, **settings
            ).to_dict()
        )
    out["metric_seconds"] = round(time.perf_counter() - t0, 3)
    return out
