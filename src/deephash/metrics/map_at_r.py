"""MAP@R and R-precision: metrics at each query's own depth R (Musgrave, Belongie & Lim 2020)."""

from __future__ import annotations

import numpy as np

from deephash.metrics._inputs import ArrayLike, Distance, prepare
from deephash.metrics._ranking import RankStats, compute_rank_stats

__all__ = ["map_at_r", "map_at_r_from_stats", "r_precision", "r_precision_from_stats"]


def _per_r(numerator: np.ndarray, stats: RankStats) -> np.ndarray:
    r = stats.n_relevant
    return np.divide(numerator, r, out=np.zeros(r.shape), where=r > 0)


def map_at_r_from_stats(stats: RankStats) -> np.ndarray:
    """Per-query AP@R, float64 (nq,), from gathered ranking statistics (0 where R = 0)."""
    return _per_r(stats.r_ap_sum, stats)


def r_precision_from_stats(stats: RankStats) -> np.ndarray:
    """Per-query R-precision, float64 (nq,), from gathered ranking statistics (0 where R = 0)."""
    return _per_r(stats.r_hits.astype(np.float64), stats)


def map_at_r(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    *,
    distance: Distance = "hamming",
    leave_one_out: bool = False,
) -> float:
    """Mean over queries of MAP@R, the metric of Musgrave, Belongie & Lim, "A Metric Learning
    Reality Check" (ECCV 2020).

    Inputs, ranking (ties broken by database order) and relevance as in
    :func:`deephash.metrics.mean_average_precision`. With ``R`` the number of relevant items in
    the database for the query, ``rel_i`` = 1 if the item at 1-based position ``i`` is relevant and
    ``P@i`` the precision of the top ``i``::

        MAP@R = (1 / R) * sum_{i <= R} rel_i * P@i

    i.e. AP truncated at depth R and divided by R: 1 exactly when the R relevant items come first.
    A query with ``R = 0`` scores 0 and still counts in the mean (as for mAP; pytorch-metric-
    learning leaves such queries out instead).

    leave_one_out: "every item queries all the others": query i is database item i (see
        :func:`deephash.metrics.mean_average_precision`) and is left out of its own ranking and
        of its R, which counts the relevant items other than the query itself.

    Returns a float in [0, 1].
    """
    prep = prepare(query, query_labels, database, database_labels, distance, leave_one_out)
    return float(map_at_r_from_stats(compute_rank_stats(prep, ap_ks=[])).mean())


def r_precision(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    *,
    distance: Distance = "hamming",
    leave_one_out: bool = False,
) -> float:
    """Mean over queries of R-precision (Musgrave, Belongie & Lim, ECCV 2020): the
    share of relevant items among the top ``R`` ranked items, ``R`` = relevant items in the
    database for the query (ties broken by database order). A query with ``R = 0`` scores 0 and
    still counts. Inputs, relevance and ``leave_one_out`` as in :func:`map_at_r`.

    Returns a float in [0, 1].
    """
    prep = prepare(query, query_labels, database, database_labels, distance, leave_one_out)
    return float(r_precision_from_stats(compute_rank_stats(prep, ap_ks=[])).mean())
