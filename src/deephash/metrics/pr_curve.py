"""Precision–recall curves: per Hamming radius for codes, per rank cut-off for any distance."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from deephash.checks import check_choice
from deephash.codes import check_padding_bits
from deephash.metrics._inputs import _NO_RETRIEVAL, ArrayLike, Distance, NoRetrieval, prepare
from deephash.metrics._ranking import compute_rank_stats

__all__ = ["PrecisionRecallCurve", "default_rank_cutoffs", "precision_recall_curve"]

# Points on the default rank-cut-off curve.
DEFAULT_RANK_POINTS = 100


@dataclass(frozen=True)
class PrecisionRecallCurve:
    """Mean precision and recall over queries at each threshold.

    precision, recall: float64 (m,); thresholds: int64 (m,), Hamming radii (``kind="radius"``)
    or numbers of top-ranked items (``kind="rank"``), ascending.
    """

    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray
    kind: Literal["radius", "rank"]

    def to_dict(self) -> dict[str, Any]:
        """Plain lists, ready for JSON."""
        return {
            "kind": self.kind,
            "thresholds": [int(t) for t in self.thresholds],
            "precision": [float(p) for p in self.precision],
            "recall": [float(r) for r in self.recall],
        }


def default_rank_cutoffs(num_database: int, points: int = DEFAULT_RANK_POINTS) -> np.ndarray:
    """Up to ``points`` evenly spaced rank cut-offs from 1 to ``num_database``, int64 ascending."""
    grid = np.linspace(1, num_database, num=min(num_database, points))
    return np.unique(np.rint(grid).astype(np.int64))


def _check_bits(bits: int | None, nbytes: int, query: ArrayLike, database: ArrayLike) -> int:
    if bits is None:
        return 8 * nbytes
    if (
        isinstance(bits, bool)
        or not isinstance(bits, int)
        or not 8 * (nbytes - 1) < bits <= 8 * nbytes
    ):
        raise ValueError(
            f"bits={bits!r} does not match codes of {nbytes} bytes (need {8 * (nbytes - 1) + 1}.."
            f"{8 * nbytes})"
        )
    for name, arr in (("query", query), ("database", database)):
        check_padding_bits(np.asarray(arr), bits, f"{name} codes")
    return bits


def precision_recall_curve(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    *,
    distance: Distance = "hamming",
    cutoffs: Sequence[int] | np.ndarray | None = None,
    bits: int | None = None,
    no_retrieval: NoRetrieval = "zero",
    leave_one_out: bool = False,
) -> PrecisionRecallCurve:
    """Precision–recall curve averaged over queries.

    Inputs as in :func:`deephash.metrics.mean_average_precision`.

    Hamming radius curve (``distance="hamming"`` and ``cutoffs=None``): one point per radius
    ``r = 0..bits`` (``bits`` defaults to 8 * bytes per code). At radius ``r`` a query retrieves
    every item within Hamming distance ``r``; precision = relevant retrieved / retrieved (0 for a
    query that retrieves nothing, or such queries left out with ``no_retrieval="exclude"``, as in
    :func:`deephash.metrics.precision_within_radius`); recall = relevant retrieved / relevant in
    the database (0 for a query with no relevant item; such queries are counted).

    Rank cut-off curve (float distances, or ``cutoffs`` given): one point per cut-off ``k``
    (default: up to 100 evenly spaced values in 1..n; values above n are clipped to n); a query
    retrieves its top ``k`` ranked items, ties broken by database order; precision = relevant
    retrieved / k, recall = relevant retrieved / relevant in the database (0 when there is none).

    leave_one_out: query i is database item i and is left out of its own ranking and radius
    (see :func:`deephash.metrics.mean_average_precision`); n is then the database size minus one.
    """
    check_choice(no_retrieval, _NO_RETRIEVAL, "no_retrieval")
    prep = prepare(query, query_labels, database, database_labels, distance, leave_one_out)
    n = prep.num_ranked
    if prep.hamming and cutoffs is None:
        nbytes = prep.max_distance // 8
        max_r = _check_bits(bits, nbytes, query, database)
        stats = compute_rank_stats(prep, ap_ks=[], radius=True)
        assert stats.radius_precision_sum is not None and stats.radius_nonempty is not None
        assert stats.radius_recall_sum is not None
        psum = stats.radius_precision_sum[: max_r + 1]
        if no_retrieval == "zero":
            precision = psum / prep.num_queries
        else:
            nonempty = stats.radius_nonempty[: max_r + 1]
            precision = np.divide(psum, nonempty, out=np.zeros_like(psum), where=nonempty > 0)
        recall = stats.radius_recall_sum[: max_r + 1] / prep.num_queries
        return PrecisionRecallCurve(
            precision=precision,
            recall=recall,
            thresholds=np.arange(max_r + 1, dtype=np.int64),
            kind="radius",
        )
    if cutoffs is None:
        ks = default_rank_cutoffs(n)
    else:
        raw = np.asarray(cutoffs)
        if raw.ndim != 1 or raw.size == 0 or not np.issubdtype(raw.dtype, np.integer):
            raise ValueError(
                f"cutoffs must be a non-empty 1-D sequence of integers, got {cutoffs!r}"
            )
        if np.any(raw < 1):
            raise ValueError(f"cutoffs must be positive ranks, got {raw.tolist()}")
        ks = np.unique(np.minimum(raw.astype(np.int64), n))
    stats = compute_rank_stats(prep, ap_ks=[], cutoffs=ks)
    hits = stats.cut_hits.astype(np.float64)
    rel = stats.n_relevant[:, None].astype(np.float64)
    recall = np.divide(
        hits, rel, out=np.zeros_like(hits), where=np.broadcast_to(rel > 0, hits.shape)
    )
    return PrecisionRecallCurve(
        precision=(hits / ks[None, :]).mean(axis=0),
        recall=recall.mean(axis=0),
        thresholds=stats.cutoffs,
        kind="rank",
    )
