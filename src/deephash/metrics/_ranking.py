"""One pass over the queries that gathers what every retrieval metric needs.

The ranking of the database for a query is by increasing distance, ties broken by database order
(stable). For packed codes the ranking is a counting sort (:mod:`._hamming_kernel`); for float
embeddings it is a stable radix sort of distances that are computed in a fixed order, bit for bit
the same on any CPU (:mod:`._float_kernel`). Both paths reduce the ranking to the same per-query
statistics (:class:`RankStats`), from which the public metrics are simple averages, so all
metrics share one definition of the ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np

from deephash.metrics._float_kernel import float_rank_stats, normalize_rows, tile_database
from deephash.metrics._hamming_kernel import hamming_rank_stats
from deephash.metrics._inputs import Prepared

# Queries per Hamming kernel call: working memory stays bounded however many queries there are.
HAMMING_QUERY_CHUNK = 2048
# Float kernel blocking: queries that share one pass over a block of database items while it is
# in cache. Speed only: no result depends on either (tests vary both).
FLOAT_QUERY_BLOCK = 32
FLOAT_DB_BLOCK = 512


@dataclass
class RankStats:
    """Per-query ranking statistics (nq queries, n database items).

    ap_ks: int64 (a,) the ranking depths AP was accumulated to (each in 1..n).
    ap_sum: float64 (nq, a) sum over relevant items ranked within the top k of
        (rank among the relevant items / ranking position), both 1-based.
    ap_hits: int64 (nq, a) relevant items within the top k.
    n_relevant: int64 (nq,) relevant items in the whole database (R).
    cutoffs: int64 (m,) rank cut-offs (each in 1..n); cut_hits int64 (nq, m) relevant items
        within each cut-off.
    r_ap_sum: float64 (nq,) the ap_sum at each query's own depth R = n_relevant (MAP@R);
        r_hits: int64 (nq,) relevant items within the top R (R-precision). Always gathered.
    knn_pred: int64 (nq,) majority-vote class (remapped id) or None when not requested;
        query_classes: int64 (nq,) remapped query labels (single-label inputs only).
    radius_*: float64/int64 (D,) summed over queries, D = max distance + 1 (Hamming only):
        precision_sum[r] = sum of precision within radius r (0 for an empty ball),
        nonempty[r] = queries with at least one item within radius r,
        recall_sum[r] = sum of recall within radius r (0 for queries with R = 0).
    """

    ap_ks: np.ndarray
    ap_sum: np.ndarray
    ap_hits: np.ndarray
    n_relevant: np.ndarray
    cutoffs: np.ndarray
    cut_hits: np.ndarray
    r_ap_sum: np.ndarray
    r_hits: np.ndarray
    knn_pred: np.ndarray | None
    query_classes: np.ndarray | None
    radius_precision_sum: np.ndarray | None
    radius_nonempty: np.ndarray | None
    radius_recall_sum: np.ndarray | None

    def hits_within(self, k: int) -> np.ndarray:
        """int64 (nq,) relevant items within the top ``k``; ``k`` must be one of ``cutoffs``."""
        t = int(np.searchsorted(self.cutoffs, k))
        if t >= self.cutoffs.size or self.cutoffs[t] != k:
            raise ValueError(f"internal: cut-off {k} was not gathered (have {self.cutoffs})")
        return self.cut_hits[:, t]


def majority_vote(neighbor_labels: np.ndarray) -> np.ndarray:
    """Majority class of each row of ranked neighbour labels.

    neighbor_labels: int64 (c, t), column 0 the nearest neighbour. Ties between classes with the
    same number of votes go to the class of the nearest neighbour among the tied classes.
    Returns int64 (c,).
    """
    c, t = neighbor_labels.shape
    pred = np.empty(c, dtype=np.int64)
    rows_per = max(1, (1 << 24) // max(1, t * t))
    for lo in range(0, c, rows_per):
        lab = neighbor_labels[lo : lo + rows_per]
        # votes[i, a] = how many of the t neighbours share neighbour a's class.
        votes = (lab[:, :, None] == lab[:, None, :]).sum(axis=2)
        best = votes.max(axis=1, keepdims=True)
        first = np.argmax(votes == best, axis=1)
        pred[lo : lo + rows_per] = lab[np.arange(lab.shape[0]), first]
    return pred


def _radius_sums(hist: np.ndarray, relhist: np.ndarray) -> tuple[np.ndarray, ...]:
    retrieved = np.cumsum(hist, axis=1)
    rel_retrieved = np.cumsum(relhist, axis=1)
    total_rel = rel_retrieved[:, -1:]
    precision = np.divide(
        rel_retrieved, retrieved, out=np.zeros(retrieved.shape), where=retrieved > 0
    )
    recall = np.divide(
        rel_retrieved,
        total_rel,
        out=np.zeros(rel_retrieved.shape),
        where=np.broadcast_to(total_rel > 0, rel_retrieved.shape),
    )
    return precision.sum(axis=0), (retrieved > 0).sum(axis=0), recall.sum(axis=0)


def _relevance_inputs(prep: Prepared) -> tuple[np.ndarray, ...]:
    """(q_lab, db_lab, q_mask, db_mask) for the kernels: both pairs, one of them dummy."""
    nq, n = prep.num_queries, prep.num_database
    if prep.multilabel:
        q_lab = np.zeros(nq, dtype=np.int64)
        db_lab = np.zeros(n, dtype=np.int64)
        return q_lab, db_lab, prep.query_labels, prep.database_labels
    q_mask = np.zeros((nq, 0), dtype=np.uint64)
    db_mask = np.zeros((n, 0), dtype=np.uint64)
    return prep.query_labels, prep.database_labels, q_mask, db_mask


@dataclass
class _Sums:
    """The per-query accumulators both kernels fill in place (shapes as in :class:`RankStats`;
    topk: int64 (nq, t) the t nearest database rows, t = 0 without kNN)."""

    ap_sum: np.ndarray
    ap_hits: np.ndarray
    n_relevant: np.ndarray
    cut_hits: np.ndarray
    r_ap_sum: np.ndarray
    r_hits: np.ndarray
    topk: np.ndarray

    @classmethod
    def zeros(cls, nq: int, n_depths: int, n_cutoffs: int, top_t: int) -> _Sums:
        return cls(
            ap_sum=np.zeros((nq, n_depths)),
            ap_hits=np.zeros((nq, n_depths), dtype=np.int64),
            n_relevant=np.zeros(nq, dtype=np.int64),
            cut_hits=np.zeros((nq, n_cutoffs), dtype=np.int64),
            r_ap_sum=np.zeros(nq),
            r_hits=np.zeros(nq, dtype=np.int64),
            topk=np.zeros((nq, top_t), dtype=np.int64),
        )

    def rows(self, lo: int, hi: int) -> tuple[np.ndarray, ...]:
        """Views of queries lo..hi-1, in the kernels' argument order (topk apart)."""
        return (
            self.ap_sum[lo:hi],
            self.ap_hits[lo:hi],
            self.n_relevant[lo:hi],
            self.cut_hits[lo:hi],
            self.r_ap_sum[lo:hi],
            self.r_hits[lo:hi],
        )


def _check_request(prep: Prepared, knn_k: int, radius: bool, *depths: np.ndarray) -> None:
    if knn_k and prep.multilabel:
        raise ValueError(
            "kNN accuracy needs single-label inputs (n,) class ids; multi-label matrices "
            "have no majority vote"
        )
    if radius and not prep.hamming:
        raise ValueError("precision within a Hamming radius needs distance='hamming'")
    n = prep.num_ranked
    for arr in depths:
        if arr.size and (arr[0] < 1 or arr[-1] > n):
            raise ValueError(f"internal: ranking depths must lie in 1..{n}, got {arr}")


def _hamming_pass(
    prep: Prepared, ap_ks: np.ndarray, cutoffs: np.ndarray, sums: _Sums, radius: bool
) -> tuple[np.ndarray, ...] | None:
    """Fill ``sums`` for packed codes, a chunk of queries at a time; returns the Hamming-radius
    sums (precision, nonempty, recall), each (D,), when ``radius`` is asked for, else None."""
    nd = prep.max_distance + 1
    if nd > np.iinfo(np.uint16).max:
        raise ValueError(f"codes longer than {np.iinfo(np.uint16).max - 1} bits are not supported")
    totals = [np.zeros(nd), np.zeros(nd, dtype=np.int64), np.zeros(nd)]
    threads = numba.get_num_threads()
    q_lab, db_lab, q_mask, db_mask = _relevance_inputs(prep)
    for lo in range(0, prep.num_queries, HAMMING_QUERY_CHUNK):
        hi = min(prep.num_queries, lo + HAMMING_QUERY_CHUNK)
        hist = np.empty((hi - lo, nd), dtype=np.int64)
        relhist = np.empty((hi - lo, nd), dtype=np.int64)
        hamming_rank_stats(
            prep.query[lo:hi],
            prep.database,
            q_lab[lo:hi],
            db_lab,
            q_mask[lo:hi],
            db_mask,
            prep.multilabel,
            ap_ks,
            cutoffs,
            *sums.rows(lo, hi),
            sums.topk[lo:hi],
            hist,
            relhist,
            min(hi - lo, 8 * threads),
            lo if prep.leave_one_out else -1,
        )
        if radius:
            for total, part in zip(totals, _radius_sums(hist, relhist), strict=True):
                total += part
    return tuple(totals) if radius else None


def _float_pass(prep: Prepared, ap_ks: np.ndarray, cutoffs: np.ndarray, sums: _Sums) -> None:
    """Fill ``sums`` for float embeddings (euclidean or cosine) in one kernel call."""
    cosine = prep.distance == "cosine"
    query = normalize_rows(prep.query) if cosine else prep.query
    database = normalize_rows(prep.database) if cosine else prep.database
    float_rank_stats(
        query,
        tile_database(database, FLOAT_DB_BLOCK),
        prep.num_database,
        cosine,
        *_relevance_inputs(prep),
        prep.multilabel,
        ap_ks,
        cutoffs,
        *sums.rows(0, prep.num_queries),
        sums.topk,
        FLOAT_QUERY_BLOCK,
        0 if prep.leave_one_out else -1,
    )


def compute_rank_stats(
    prep: Prepared,
    *,
    ap_ks: Sequence[int] | np.ndarray,
    cutoffs: Sequence[int] | np.ndarray = (),
    knn_k: int = 0,
    radius: bool = False,
) -> RankStats:
    """Rank the database for every query and gather :class:`RankStats`.

    ap_ks / cutoffs: depths in 1..n (clipped by the caller), any order; knn_k: neighbours to vote
    over (0 = no kNN, clipped to n); radius: gather Hamming-radius sums (Hamming inputs only).
    With ``prep.leave_one_out`` each query's own item is not ranked at all (n = num_ranked): the
    other items keep their order, so positions, ties and every statistic (R included) are those of
    the database without that item.
    """
    ap_ks_arr = np.unique(np.asarray(ap_ks, dtype=np.int64))
    cut_arr = np.unique(np.asarray(cutoffs, dtype=np.int64))
    _check_request(prep, knn_k, radius, ap_ks_arr, cut_arr)
    top_t = min(int(knn_k), prep.num_ranked)
    sums = _Sums.zeros(prep.num_queries, ap_ks_arr.size, cut_arr.size, top_t)
    radius_sums = None
    if prep.hamming:
        radius_sums = _hamming_pass(prep, ap_ks_arr, cut_arr, sums, radius)
    else:
        _float_pass(prep, ap_ks_arr, cut_arr, sums)
    return RankStats(
        ap_ks=ap_ks_arr,
        ap_sum=sums.ap_sum,
        ap_hits=sums.ap_hits,
        n_relevant=sums.n_relevant,
        cutoffs=cut_arr,
        cut_hits=sums.cut_hits,
        r_ap_sum=sums.r_ap_sum,
        r_hits=sums.r_hits,
        knn_pred=majority_vote(prep.database_labels[sums.topk]) if top_t else None,
        query_classes=None if prep.multilabel else prep.query_labels,
        radius_precision_sum=None if radius_sums is None else radius_sums[0],
        radius_nonempty=None if radius_sums is None else radius_sums[1],
        radius_recall_sum=None if radius_sums is None else radius_sums[2],
    )
