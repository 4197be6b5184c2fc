"""Several retrieval metrics from one ranking pass: what the evaluator records per run."""

from __future__ import annotations

from dataclasses import dataclass

from deephash.checks import check_choice, check_positive_int
from deephash.metrics._inputs import _AP_DIVISORS, APDivisor, ArrayLike, Distance, prepare
from deephash.metrics._ranking import compute_rank_stats
from deephash.metrics.average_precision import average_precision_from_stats
from deephash.metrics.knn import knn_accuracy_from_stats
from deephash.metrics.map_at_r import map_at_r_from_stats, r_precision_from_stats
from deephash.metrics.precision import radius_precision_from_stats

__all__ = ["RetrievalReport", "retrieval_report"]


@dataclass(frozen=True)
class RetrievalReport:
    """Retrieval metrics of one (query, database) evaluation; see :func:`retrieval_report`.

    precision_hamming is None for float embeddings; knn_accuracy is None for multi-label inputs.
    leave_one_out: query i is database item i and ranks the other ``num_database - 1`` items.
    """

    distance: str
    num_queries: int
    num_database: int
    ap_divisor: str
    map_all: float
    map_at_k: float
    map_k: int
    precision_at_k: float
    precision_k: int
    precision_hamming: float | None
    hamming_radius: int
    knn_accuracy: float | None
    knn_k: int
    map_at_r: float
    r_precision: float
    precision_at_1: float
    leave_one_out: bool = False

    def to_dict(self) -> dict[str, float | int | str]:
        """Flat JSON-ready dict. Metric keys: ``map``, ``map_at_k``, ``precision_at_k``,
        ``map_at_r``, ``r_precision``, ``precision_at_1``, ``precision_hamming{radius}`` (codes
        only, e.g. ``precision_hamming2``) and ``knn_accuracy`` (single-label only); the settings
        are stored beside them, ``leave_one_out`` included."""
        out: dict[str, float | int | str] = {
            "map": self.map_all,
            "map_at_k": self.map_at_k,
            "precision_at_k": self.precision_at_k,
            "map_at_r": self.map_at_r,
            "r_precision": self.r_precision,
            "precision_at_1": self.precision_at_1,
        }
        if self.precision_hamming is not None:
            out[f"precision_hamming{self.hamming_radius}"] = self.precision_hamming
        if self.knn_accuracy is not None:
            out["knn_accuracy"] = self.knn_accuracy
        out.update(
            {
                "map_k": self.map_k,
                "precision_k": self.precision_k,
                "knn_k": self.knn_k,
                "distance": self.distance,
                "ap_divisor": self.ap_divisor,
                "num_queries": self.num_queries,
                "num_database": self.num_database,
                "leave_one_out": self.leave_one_out,
            }
        )
        if self.precision_hamming is not None:
            out["hamming_radius"] = self.hamming_radius
        return out


def retrieval_report(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    *,
    distance: Distance = "hamming",
    map_k: int = 1000,
    precision_k: int = 100,
    radius: int = 2,
    knn_k: int = 10,
    ap_divisor: APDivisor = "retrieved",
    leave_one_out: bool = False,
) -> RetrievalReport:
    """mAP@all, mAP@``map_k``, P@``precision_k``, MAP@R, R-precision, P@1, precision within
    Hamming ``radius`` (codes only) and kNN accuracy (``knn_k`` neighbours; single-label only),
    all from one ranking pass.

    Inputs and definitions are those of :func:`deephash.metrics.mean_average_precision`,
    :func:`deephash.metrics.precision_at_k` (P@1 is its ``k=1``),
    :func:`deephash.metrics.map_at_r`, :func:`deephash.metrics.r_precision`,
    :func:`deephash.metrics.precision_within_radius` (queries with an empty radius ball count as
    precision 0) and :func:`deephash.metrics.knn_accuracy`; every value equals what those
    functions return. Depths larger than the database are clipped to its size (the report keeps
    the requested ones). leave_one_out: query i is database item i and is left out of its own
    ranking (the metric-learning shape; see :func:`deephash.metrics.mean_average_precision`);
    depths are then clipped to the database size minus one.
    """
    check_choice(ap_divisor, _AP_DIVISORS, "ap_divisor")
    for value, name in ((map_k, "map_k"), (precision_k, "precision_k"), (knn_k, "knn_k")):
        check_positive_int(value, name)
    if isinstance(radius, bool) or not isinstance(radius, int) or radius < 0:
        raise ValueError(f"radius must be a non-negative integer, got {radius!r}")
    prep = prepare(query, query_labels, database, database_labels, distance, leave_one_out)
    n = prep.num_ranked
    depth_map = min(map_k, n)
    depth_p = min(precision_k, n)
    stats = compute_rank_stats(
        prep,
        ap_ks=[depth_map, n],
        cutoffs=[depth_p, 1],
        knn_k=0 if prep.multilabel else min(knn_k, n),
        radius=prep.hamming,
    )
    return RetrievalReport(
        distance=distance,
        num_queries=prep.num_queries,
        num_database=prep.num_database,
        ap_divisor=ap_divisor,
        map_all=float(average_precision_from_stats(stats, n, n, ap_divisor).mean()),
        map_at_k=float(average_precision_from_stats(stats, depth_map, n, ap_divisor).mean()),
        map_k=int(map_k),
        precision_at_k=float((stats.hits_within(depth_p) / depth_p).mean()),
        precision_k=int(precision_k),
        precision_hamming=(
            radius_precision_from_stats(stats, radius, prep.num_queries) if prep.hamming else None
        ),
        hamming_radius=int(radius),
        knn_accuracy=None if prep.multilabel else knn_accuracy_from_stats(stats),
        knn_k=int(knn_k),
        map_at_r=float(map_at_r_from_stats(stats).mean()),
        r_precision=float(r_precision_from_stats(stats).mean()),
        precision_at_1=float(stats.hits_within(1).mean()),
        leave_one_out=prep.leave_one_out,
    )
