"""The final evaluation of a run: its chosen checkpoint on query vs database, ``metrics.json``,
``embeddings.npz`` and the plots (history, t-SNE, precision-recall)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deephash.atomic_io import atomic_save_npz, atomic_write_json, load_checkpoint
from deephash.data import ProtocolData
from deephash.evaluation.evaluator import retrieval_metrics
from deephash.evaluation.hash_report import hash_report
from deephash.run_folder import RunFolder
from deephash.training.config import TrainConfig
from deephash.training.embedding import image_embedder

__all__ = ["evaluate_network", "finalize_run"]


def finalize_run(
    run_dir: Path,
    cfg: TrainConfig,
    net: nn.Module,
    data: ProtocolData,
    device: torch.device,
    history: list[dict[str, Any]],
    train_seconds: float,
) -> dict[str, Any]:
    """Load the best checkpoint, evaluate on query vs database, write metrics.json and plots."""
    folder = RunFolder(run_dir)
    net.load_state_dict(load_checkpoint(folder.checkpoint(), map_location=device)["model"])
    metrics = evaluate_network(cfg, net, data, device, run_dir=run_dir)
    metrics["train_seconds"] = round(train_seconds, 2)
    metrics["epochs_run"] = len(history)
    validated = [h for h in history if "val_map" in h]
    # Without validation (a final fit on train + validation) the last epoch is the model.
    chosen = max(validated, key=lambda h: h["val_map"]) if validated else (history or [{}])[-1]
    metrics["best_epoch"] = int(chosen.get("epoch", 0))
    metrics["best_val_map"] = max((h["val_map"] for h in validated), default=None)
    atomic_write_json(folder.metrics, metrics)
    if history:
        from deephash.viz import plot_training_history

        plot_training_history(history, run_dir / "history.png")
    return metrics


def evaluate_network(
    cfg: TrainConfig,
    net: nn.Module,
    data: ProtocolData,
    device: torch.device,
    *,
    run_dir: Path | None = None,
) -> dict[str, Any]:
    """Embed query and database splits, compute the metrics; with ``run_dir``, also write plots and
    ``embeddings.npz`` (arrays query, query_labels, database, database_labels)."""
    embed = image_embedder(cfg, net, data, device)
    loo = data.protocol.leave_one_out  # query and database are the same images
    q = embed(data.query.images, progress=cfg.progress, desc="query")
    db = q if loo else embed(data.database.images, progress=cfg.progress, desc="database")
    metrics = retrieval_metrics(
        q,
        data.query.labels,
        db,
        data.database.labels,
        bits=cfg.bits,
        map_k=cfg.map_k,
        precision_k=cfg.precision_k,
        knn_k=cfg.knn_k,
        leave_one_out=loo,
    )
    metrics.update(
        {
            "protocol": data.protocol_name,
            "dataset": cfg.dataset,
            "backbone": cfg.backbone,
            "loss": cfg.loss,
            "miner": cfg.miner,
            "seed": cfg.seed,
            # what retrieval used (the backbone's width with retrieve_from=backbone)
            "embedding_dim": int(q.shape[1]),
        }
    )
    if run_dir is not None:
        _write_outputs(cfg, data, q, db, run_dir, metrics)
    return metrics


def _write_outputs(
    cfg: TrainConfig,
    data: ProtocolData,
    q: np.ndarray,
    db: np.ndarray,
    run_dir: Path,
    metrics: dict[str, Any],
) -> None:
    """Write ``embeddings.npz`` and the plots of query embeddings ``q`` (Q, D) and database
    embeddings ``db`` (N, D) into ``run_dir``; a hashing run's report joins ``metrics``."""
    from deephash.viz import plot_tsne

    loo = data.protocol.leave_one_out
    atomic_save_npz(
        RunFolder(run_dir).embeddings,
        compressed=True,
        query=q,
        query_labels=data.query.labels,
        database=db,
        database_labels=data.database.labels,
    )
    names = list(data.query.class_names) if data.query.class_names else None
    plots = [(q, "tsne.png", "query embeddings" if cfg.bits is None else "relaxed codes")]
    if cfg.bits is not None:
        plots.append((np.sign(q), "tsne_codes.png", "binary codes"))
    for points, filename, what in plots if cfg.tsne_samples > 0 else []:
        plot_tsne(
            points,
            data.query.labels,
            run_dir / filename,
            class_names=names,
            num_samples=cfg.tsne_samples,
            title=f"t-SNE of {what}",
            seed=cfg.seed,
        )
    if cfg.bits is not None:
        metrics.update(
            hash_report(
                q,
                data.query.labels,
                db,
                data.database.labels,
                bits=cfg.bits,
                label=f"{cfg.loss} {cfg.bits} bits",
                plot_path=run_dir / "pr_curve.png",
                leave_one_out=loo,
            )
        )
