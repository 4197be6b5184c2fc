"""The per-epoch validation pass: validation queries against a fixed sample of the training split
(never the test queries), its mAP and distance spread, and the warning when embeddings collapse."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from deephash.data import ProtocolData
from deephash.training.config import TrainConfig

__all__ = ["CollapseWarning", "check_collapse", "validate"]


class CollapseWarning(UserWarning):
    """Embeddings collapsed: all distances nearly equal, the loss stuck at the margin."""


def validate(
    cfg: TrainConfig,
    data: ProtocolData,
    val_idx: tuple[np.ndarray, np.ndarray],
    embed: Callable[..., np.ndarray],
) -> dict[str, Any]:
    """``{"val_map", "val_distance_spread"}`` of the network ``embed`` runs, on the validation
    sample ``val_idx`` (query indices (Q,) into ``data.validation``, database indices (N,) into
    ``data.val_database``)."""
    q_idx, db_idx = val_idx
    # Class-disjoint validation: the queries are the first sampled held-out images and retrieve
    # the other sampled ones (leave-one-out), as the unseen-class test does.
    loo = data.protocol.class_disjoint_validation
    db = embed(data.val_database.images[db_idx])
    q = db[: len(q_idx)] if loo else embed(data.validation.images[q_idx])
    ql, dl = data.validation.labels[q_idx], data.val_database.labels[db_idx]
    from deephash import metrics

    if cfg.bits is not None:
        from deephash.codes import pack_bits, sign

        val_map = metrics.mean_average_precision(
            pack_bits(sign(q)), ql, pack_bits(sign(db)), dl, distance="hamming", leave_one_out=loo
        )
    else:
        val_map = metrics.mean_average_precision(
            q, ql, db, dl, distance="euclidean", leave_one_out=loo
        )
    # Distance spread on a small sample, to detect collapse.
    sample = torch.as_tensor(q[:256])
    d = torch.cdist(sample, sample)
    off = d[~torch.eye(len(sample), dtype=torch.bool)]
    spread = float(off.std() / off.mean().clamp_min(1e-12)) if off.numel() else 0.0
    return {"val_map": float(val_map), "val_distance_spread": spread}


def check_collapse(val: dict[str, Any], record: dict[str, Any]) -> None:
    """Warn (:class:`CollapseWarning`) when the epoch's ``record`` and its validation ``val``
    look collapsed: distances nearly all equal, or every term active at a poor mAP."""
    if val["val_distance_spread"] < 0.02 or (
        record["active_fraction"] > 0.99 and val["val_map"] < 0.2
    ):
        warnings.warn(
            f"epoch {record['epoch']}: embeddings look collapsed (relative distance spread "
            f"{val['val_distance_spread']:.4f}, active fraction {record['active_fraction']:.2f}, "
            f"validation mAP {val['val_map']:.3f}). Hint: lower the learning rate, use a semi-hard "
            "miner or the soft-margin batch-hard loss, or a smaller margin.",
            CollapseWarning,
            stacklevel=2,
        )
