"""Precision of the top-k ranked items and precision within a Hamming radius."""

from __future__ import annotations

from deephash.checks import check_choice, check_positive_int
from deephash.metrics._inputs import _NO_RETRIEVAL, ArrayLike, Distance, NoRetrieval, prepare
from deephash.metrics._ranking import RankStats, compute_rank_stats

__all__ = ["precision_at_k", "precision_within_radius", "radius_precision_from_stats"]


def precision_at_k(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    *,
    k: int = 100,
    distance: Distance = "hamming",
    leave_one_out: bool = False,
) -> float:
    """Mean over queries of the fraction of relevant items among the top ``k`` ranked items.

    Inputs as in :func:`deephash.metrics.mean_average_precision` (packed uint8 codes (n, bytes)
    for ``distance="hamming"``, float embeddings (n, d) otherwise; class ids (n,) or multi-label
    matrices (n, C)). Ranking ties are broken by database order. ``k > n`` is clipped to ``n``,
    so the divisor is ``min(k, n)``. ``k=1`` is precision@1 (the share of queries whose nearest
    item is relevant). Returns a float in [0, 1].
    leave_one_out: query i is database item i and is left out of its own ranking (see
    :func:`deephash.metrics.mean_average_precision`); depths are clipped to ``n - 1`` then.
    """
    check_positive_int(k, "k")
    prep = prepare(query, query_labels, database, database_labels, distance, leave_one_out)
    depth = min(int(k), prep.num_ranked)
    stats = compute_rank_stats(prep, ap_ks=[], cutoffs=[depth])
    return float((stats.hits_within(depth) / depth).mean())


def radius_precision_from_stats(
    stats: RankStats, radius: int, num_queries: int, no_retrieval: NoRetrieval = "zero"
) -> float:
    """Mean precision within Hamming ``radius`` from gathered statistics (radius clipped)."""
    if stats.radius_precision_sum is None or stats.radius_nonempty is None:
        raise ValueError("internal: radius statistics were not gathered")
    r = min(radius, stats.radius_precision_sum.size - 1)
    total = float(stats.radius_precision_sum[r])
    if no_retrieval == "zero":
        return total / num_queries
    nonempty = int(stats.radius_nonempty[r])
    return total / nonempty if nonempty else 0.0


def precision_within_radius(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    *,
    radius: int = 2,
    no_retrieval: NoRetrieval = "zero",
    leave_one_out: bool = False,
) -> float:
    """Mean precision of the database items within Hamming distance ``radius`` of each query.

    query: uint8 (nq, ceil(bits / 8)) packed codes; database: uint8 (n, ceil(bits / 8)); labels
    as in :func:`deephash.metrics.mean_average_precision`. Hamming only (a radius on float
    distances has no common protocol).

    For each query, precision = (relevant items with distance <= radius) / (items with distance
    <= radius). A query with no item inside the radius gets precision 0 and still counts
    (``no_retrieval="zero"``, the convention of DeepHash-style papers and their evaluation code,
    which penalises codes that scatter too much); ``no_retrieval="exclude"`` instead averages over
    the queries with at least one item inside the radius only (0.0 when there is none).
    Returns a float in [0, 1]. leave_one_out: query i is database item i and is not counted
    inside its own radius (see :func:`deephash.metrics.mean_average_precision`).
    """
    check_choice(no_retrieval, _NO_RETRIEVAL, "no_retrieval")
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be a non-negative integer, got {radius!r}")
    prep = prepare(query, query_labels, database, database_labels, "hamming", leave_one_out)
    stats = compute_rank_stats(prep, ap_ks=[], radius=True)
    return radius_precision_from_stats(stats, radius, prep.num_queries, no_retrieval)
