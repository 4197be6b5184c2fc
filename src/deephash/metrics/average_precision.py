"""Mean average precision (mAP@all and mAP@k) for Hamming codes and float embeddings."""

from __future__ import annotations

import numpy as np

from deephash.checks import check_choice, check_positive_int
from deephash.metrics._inputs import _AP_DIVISORS, APDivisor, ArrayLike, Distance, prepare
from deephash.metrics._ranking import RankStats, compute_rank_stats

__all__ = ["average_precision_from_stats", "mean_average_precision"]


def average_precision_from_stats(
    stats: RankStats, k: int, num_database: int, ap_divisor: APDivisor = "retrieved"
) -> np.ndarray:
    """Per-query AP@k, float64 (nq,), from gathered ranking statistics (``k`` already clipped).

    ``k`` must be one of ``stats.ap_ks``. See :func:`mean_average_precision` for the definition.
    """
    t = int(np.searchsorted(stats.ap_ks, k))
    if t >= stats.ap_ks.size or stats.ap_ks[t] != k:
        raise ValueError(f"internal: AP depth {k} was not gathered (have {stats.ap_ks})")
    ap_sum = stats.ap_sum[:, t]
    if ap_divisor == "retrieved":
        divisor = stats.ap_hits[:, t]
    else:
        divisor = np.minimum(stats.n_relevant, min(k, num_database))
    return np.divide(ap_sum, divisor, out=np.zeros_like(ap_sum), where=divisor > 0)


def mean_average_precision(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    *,
    k: int | None = None,
    distance: Distance = "hamming",
    ap_divisor: APDivisor = "retrieved",
    leave_one_out: bool = False,
) -> float:
    """Mean over queries of the average precision of the ranked database (mAP@all or mAP@k).

    query: packed codes uint8 (nq, ceil(bits / 8)) in the :mod:`deephash.codes` (faiss) layout when
        ``distance="hamming"``, else float embeddings (nq, d); database: same, (n, ...).
    query_labels / database_labels: class ids (nq,) / (n,) of any integer values (relevant = same
        id), or multi-label indicator matrices (nq, C) / (n, C) (relevant = share at least one
        label; any non-zero entry counts as a label).
    k: ranking depth; None = the whole database (mAP@all). ``k > n`` is clipped to ``n``.
    distance: "hamming" (packed codes), "euclidean" or "cosine" (1 - cosine similarity).

    Ranking: increasing distance, ties broken by database order (a stable sort), so results are
    deterministic. Float distances are sequential sums over the dimensions in float32 (float64
    when either input is float64 or integer), bit for bit the same on any CPU and at any database
    position, so exact duplicates always tie; Euclidean ranks by squared distance. With ``rel_i``
    = 1 if the item at 1-based position ``i`` is relevant and
    ``P@i`` the precision of the top ``i``::

        AP@k = (1 / D) * sum_{i <= k} rel_i * P@i

    where the divisor ``D`` is, for ``ap_divisor="retrieved"`` (default; the DeepHash / DTSH
    evaluation code), the number of relevant items within the top k, and for
    ``ap_divisor="min_r_k"`` it is ``min(R, k)`` with ``R`` the number of relevant items in the
    whole database. For mAP@all both equal ``R``. A query with ``D = 0`` (no relevant item, or
    none in the top k) has AP = 0 and still counts in the mean.

    leave_one_out: the metric-learning shape "every item queries all the others": the queries are
    the first database items (query i is database item i, same vector and label, checked; usually
    the same array for both) and each query's own item is removed from its ranking and from its
    relevant count ``R``; the other items keep their positions relative to each other (ties by
    database order), so this equals ranking against the database without that item, and ``n`` is
    the database size minus one.

    Returns the mean AP as a float in [0, 1].
    """
    check_choice(ap_divisor, _AP_DIVISORS, "ap_divisor")
    if k is not None:
        check_positive_int(k, "k")
    prep = prepare(query, query_labels, database, database_labels, distance, leave_one_out)
    n = prep.num_ranked
    depth = n if k is None else min(int(k), n)
    stats = compute_rank_stats(prep, ap_ks=[depth])
    return float(average_precision_from_stats(stats, depth, n, ap_divisor).mean())
