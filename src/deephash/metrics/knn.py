"""k-nearest-neighbour classification accuracy over the ranked database."""

from __future__ import annotations

from deephash.checks import check_positive_int
from deephash.metrics._inputs import ArrayLike, Distance, prepare
from deephash.metrics._ranking import RankStats, compute_rank_stats

__all__ = ["knn_accuracy", "knn_accuracy_from_stats"]


def knn_accuracy_from_stats(stats: RankStats) -> float:
    """Share of queries whose majority-vote prediction equals their label."""
    if stats.knn_pred is None or stats.query_classes is None:
        raise ValueError("internal: kNN predictions were not gathered")
    return float((stats.knn_pred == stats.query_classes).mean())


def knn_accuracy(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    *,
    k: int = 10,
    distance: Distance = "hamming",
    leave_one_out: bool = False,
) -> float:
    """Accuracy of a k-nearest-neighbour majority vote that classifies each query.

    query/database: packed uint8 codes (n, bytes) for ``distance="hamming"``, float embeddings
    (n, d) otherwise; query_labels (nq,), database_labels (n,): class ids of any integer values
    (single-label only; a multi-label matrix raises ValueError).

    The neighbours are the top ``k`` ranked database items (ties in distance broken by database
    order; ``k > n`` is clipped to ``n``). Each neighbour casts one vote for its class; the class
    with most votes is predicted. A tie between classes goes to the class of the nearest neighbour
    among the tied classes. Returns the fraction of queries predicted correctly, in [0, 1].
    leave_one_out: query i is database item i and is left out of its own ranking (see
    :func:`deephash.metrics.mean_average_precision`); depths are clipped to ``n - 1`` then.
    """
    check_positive_int(k, "k")
    prep = prepare(query, query_labels, database, database_labels, distance, leave_one_out)
    stats = compute_rank_stats(prep, ap_ks=[], knn_k=min(int(k), prep.num_ranked))
    return knn_accuracy_from_stats(stats)
