"""Recipes that are not trained end to end: the backbone-feature baseline and classical hashing
(LSH, ITQ) on backbone features, so that they sit in the same ``compare`` tables.

A baseline recipe is a mapping with ``method: features | lsh | itq`` plus ``dataset``,
``backbone``, ``weights`` (``imagenet``, a file, a run folder, or ``@NAME`` for the run folder of
recipe NAME in the same study and seed), ``normalize`` (L2-normalised features: cosine retrieval,
and what LSH / ITQ fit), ``cache`` (keep the features in the content-addressed feature store, see
:func:`~deephash.evaluation.features.extract_baseline`) and, for hashing, ``bits``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from deephash.atomic_io import atomic_save_npz, atomic_write_json
from deephash.run_folder import RunFolder

__all__ = [
    "BASELINE_KEYS",
    "BASELINE_METHODS",
    "features_from_run",
    "run_baseline",
    "saves_model",
]

BASELINE_METHODS = ("features", "lsh", "itq")
BASELINE_KEYS = {
    "method",
    "dataset",
    "protocol",
    "data_dir",
    "backbone",
    "backbone_options",
    "weights",
    "bits",
    "seed",
    "device",
    "protocol_options",
    "normalize",
    "cache",
    "map_k",
    "precision_k",
    "knn_k",
}


def features_from_run(values: dict[str, Any], run_dir: Path) -> dict[str, Any] | None:
    """The baseline's features taken from a trained run's ``embeddings.npz`` instead of extracted
    again, when they are the same thing; else ``None``.

    They are when ``weights`` is a run folder that retrieved with its L2-normalised backbone
    features (``retrieve_from: backbone``), the baseline asks for normalised features of the same
    backbone (same options) and the same protocol, seed and dataset. Writes ``run_dir/features.npz``
    and returns the metrics :func:`~deephash.evaluation.features.extract_baseline` would.
    """
    import yaml

    from deephash.evaluation.evaluator import retrieval_metrics

    weights = values.get("weights")
    if not weights or not bool(values.get("normalize", False)):
        return None
    src = RunFolder(str(weights))
    if not all(f.is_file() for f in (src.embeddings, src.config, src.metrics)):  # a finished run
        return None
    cfg = yaml.safe_load(src.config.read_text()) or {}
    same = (
        cfg.get("retrieve_from") == "backbone"
        and cfg.get("backbone") == values.get("backbone", "small-cnn")
        and (cfg.get("backbone_options") or {}) == (values.get("backbone_options") or {})
        and cfg.get("dataset") == values.get("dataset", "fashion-mnist")
        and (cfg.get("protocol") or cfg.get("dataset"))
        == (values.get("protocol") or cfg.get("dataset"))
        and (cfg.get("protocol_options") or {}) == (values.get("protocol_options") or {})
        and int(cfg.get("seed", 0)) == int(values.get("seed", 0))
    )
    if not same:
        return None
    t0 = time.perf_counter()
    e = np.load(src.embeddings)
    q, db = e["query"], e["database"]
    loo = bool(json.loads(src.metrics.read_text()).get("leave_one_out", False))
    metrics = retrieval_metrics(
        q,
        e["query_labels"],
        db,
        e["database_labels"],
        map_k=int(values.get("map_k", 1000)),
        precision_k=int(values.get("precision_k", 100)),
        knn_k=int(values.get("knn_k", 10)),
        leave_one_out=loo,
    )
    metrics.update(
        {
            "protocol": cfg.get("protocol") or cfg.get("dataset"),
            "dataset": cfg.get("dataset"),
            "backbone": cfg.get("backbone"),
            "weights": str(weights),
            "feature_dim": int(q.shape[1]),
            "normalized": True,
            "seed": int(values.get("seed", 0)),
            "features_from": str(src.embeddings),
            "seconds": round(time.perf_counter() - t0, 2),
        }
    )
    atomic_save_npz(
        RunFolder(run_dir).features,
        query=q,
        query_labels=e["query_labels"],
        database=db,
        database_labels=e["database_labels"],
    )
    return metrics


def _data_info(values: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """What preprocessing needs for the images the baseline's features came from: the trained
    run's own ``data_info`` when its embeddings were reused, else the protocol data's, loaded as
    :func:`~deephash.evaluation.features.extract_baseline` loads it."""
    from deephash.atomic_io import load_checkpoint

    source = metrics.get("features_from")
    if source:
        ckpt = RunFolder(Path(source).parent).checkpoint()
        info: dict[str, Any] = load_checkpoint(ckpt)["data_info"]
        return info
    from deephash.data import default_protocol, load_protocol_data
    from deephash.models import backbone_input_stats
    from deephash.training import recipe

    backbone = values.get("backbone", "small-cnn")
    data = load_protocol_data(
        default_protocol(values.get("protocol") or values.get("dataset", "fashion-mnist")),
        data_dir=values.get("data_dir"),
        seed=int(values.get("seed", 0)),
        normalization=backbone_input_stats(backbone),
        **(values.get("protocol_options") or {}),
    )
    return recipe.data_info(data)


def saves_model(values: dict[str, Any]) -> bool:
    """Whether the baseline saves a servable model (a run folder): hashing rows (LSH, ITQ) of a
    backbone with named weights, or of pixels; not random weights, which the folder could not
    name again."""
    named = values.get("weights") is not None or values.get("backbone") == "pixels"
    return values.get("method") in ("lsh", "itq") and named


def _save_model(
    values: dict[str, Any],
    run_dir: Path,
    hasher: Any,
    metrics: dict[str, Any],
    *,
    num_fitted: int,
) -> None:
    """Save the backbone and the fitted projection as a run folder (config.yaml, best.pt) that
    ``encode``, ``evaluate``, ``collection create --run`` and ``serve`` take."""
    from deephash.training.fitted_run import fitted_config, save_fitted_run

    if not saves_model(values):
        return
    cfg = fitted_config(values, name=run_dir.parent.name)
    save_fitted_run(
        run_dir,
        cfg,
        hasher,
        _data_info(values, metrics),
        normalize=bool(values.get("normalize", False)),
        fitted={"method": values["method"], "fit_on": "database", "images": int(num_fitted)},
    )


def run_baseline(values: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Run a baseline recipe and write ``run_dir/metrics.json``; returns the metrics.

    LSH and ITQ fit on the database's features, without labels (unsupervised on the retrieval set,
    as in the literature).
    """
    unknown = sorted(set(values) - BASELINE_KEYS)
    if unknown:
        raise ValueError(f"unknown baseline key(s) {unknown}; valid: {sorted(BASELINE_KEYS)}")
    method = values["method"]
    if method not in BASELINE_METHODS:
        raise ValueError(f"method must be one of {BASELINE_METHODS}, got {method!r}")
    from deephash.evaluation.features import extract_baseline

    t0 = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = features_from_run(values, run_dir) or extract_baseline(
        dataset=values.get("dataset", "fashion-mnist"),
        protocol=values.get("protocol"),
        backbone=values.get("backbone", "small-cnn"),
        weights=values.get("weights"),
        out=run_dir,
        data_dir=values.get("data_dir"),
        seed=int(values.get("seed", 0)),
        device=values.get("device", "auto"),
        tsne_samples=0,
        progress=False,
        protocol_options=values.get("protocol_options"),
        normalize=bool(values.get("normalize", False)),
        backbone_options=values.get("backbone_options"),
        cache=bool(values.get("cache", False)),
        map_k=int(values.get("map_k", 1000)),
        precision_k=int(values.get("precision_k", 100)),
        knn_k=int(values.get("knn_k", 10)),
    )
    if method != "features":
        from deephash.codes import pack_bits, sign
        from deephash.evaluation.evaluator import retrieval_metrics
        from deephash.hashing import ITQ, LSH

        bits = int(values["bits"])
        extracted = metrics
        f = np.load(RunFolder(run_dir).features)
        model = (ITQ if method == "itq" else LSH)(bits, seed=int(values.get("seed", 0)))
        model.fit(f["database"])
        q, db = model.project(f["query"]), model.project(f["database"])
        metrics = {
            **retrieval_metrics(
                q,
                f["query_labels"],
                db,
                f["database_labels"],
                bits=bits,
                map_k=int(values.get("map_k", 1000)),
                precision_k=int(values.get("precision_k", 100)),
                knn_k=int(values.get("knn_k", 10)),
                leave_one_out=bool(metrics.get("leave_one_out", False)),
            ),
            **{k: metrics[k] for k in ("protocol", "dataset", "backbone", "weights", "normalized")},
            "method": method,
        }
        atomic_save_npz(
            RunFolder(run_dir).codes,
            query=pack_bits(sign(q)),
            database=pack_bits(sign(db)),
            query_labels=f["query_labels"],
            database_labels=f["database_labels"],
        )
        _save_model(values, run_dir, model, extracted, num_fitted=len(f["database"]))
    metrics["method"] = method
    metrics["train_seconds"] = round(time.perf_counter() - t0, 2)
    atomic_write_json(RunFolder(run_dir).metrics, metrics)
    return metrics
