"""Two-stage search: Hamming candidates from any index, re-ranked by stored real-valued descriptors.

Stage one asks a Hamming index (flat, MIH, faiss, Milvus) for candidates: the k' nearest codes, or
every code within a radius. Stage two scores each candidate with the descriptors (faiss's
``IndexRefine`` does the same with stored vectors): the final order is

1. re-rank score, highest first: ``score = 1 - ||q - x||^2 / 2`` of the descriptors as stored,
   which for unit vectors is their cosine similarity (1 for the same image);
2. then Hamming distance, smallest first;
3. then id, smallest first,

so results are deterministic. Descriptors are stored rounded to float16 (half the bytes, and the
ranking of unit vectors barely moves: the rounding error, about 5e-4 of each component, is far
below the gap between an image and its nearest other image); queries are rounded the same way
before scoring, so an exact copy of a stored image scores exactly 1 (every difference is 0).

:func:`rerank` is the stage-two function on candidates already found;
:class:`RerankIndex` pairs a Hamming index with the descriptors of its items and keeps them in
step through additions and removals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from deephash.checks import check_positive_int
from deephash.index._rerank_kernel import candidate_sq_distances
from deephash.index.base import BinaryIndex

__all__ = [
    "DESCRIPTOR_DTYPE",
    "RerankIndex",
    "RerankResult",
    "as_descriptors",
    "check_new_ids",
    "hamming_candidates",
    "merge_by_id",
    "rerank",
]

DESCRIPTOR_DTYPE = np.float16  # how descriptors are stored (on disk, in logs)


@dataclass(frozen=True)
class RerankResult:
    """Re-ranked results, each row best first.

    scores float32 (nq, k) (NaN where a row has fewer than k results), distances int32 (nq, k)
    Hamming distances (-1 there), ids int64 (nq, k) (-1 there).
    """

    scores: np.ndarray
    distances: np.ndarray
    ids: np.ndarray


def as_descriptors(x: np.ndarray, dim: int, *, name: str = "descriptors") -> np.ndarray:
    """Check and round descriptors: any float (n, dim) or (dim,) -> float32 (n, dim) holding the
    stored (float16) values. A wrong width or a non-finite value is a ``ValueError``."""
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != dim or arr.dtype.kind != "f":
        raise ValueError(
            f"{name} must be floats of shape (n, {dim}) for this index's {dim}-wide descriptors, "
            f"got {arr.dtype} {arr.shape}"
        )
    stored = arr.astype(DESCRIPTOR_DTYPE)
    if not np.all(np.isfinite(stored)):
        raise ValueError(f"{name} hold NaN or infinite values (or values beyond float16's range)")
    return stored.astype(np.float32)


def rerank(
    query_descriptors: np.ndarray,
    database_descriptors: np.ndarray,
    rows: np.ndarray,
    candidate_ids: np.ndarray,
    candidate_distances: np.ndarray,
    k: int,
) -> RerankResult:
    """Stage two: order each query's candidates by (score desc, Hamming distance, id) and keep k.

    query_descriptors: float32 (nq, D) (see :func:`as_descriptors`); database_descriptors: float32
    (n, D); rows: int64 (nq, k') row of each candidate in ``database_descriptors``, -1 for no
    candidate (padding); candidate_ids: int64 (nq, k'); candidate_distances: int (nq, k') Hamming
    distances. Returns a :class:`RerankResult` of width k.
    """
    q = np.ascontiguousarray(query_descriptors, dtype=np.float32)
    db = np.ascontiguousarray(database_descriptors, dtype=np.float32)
    rows = np.ascontiguousarray(rows, dtype=np.int64)
    nq, kp = rows.shape
    if q.shape[0] != nq or candidate_ids.shape != rows.shape:
        raise ValueError(
            f"{q.shape[0]} query descriptors, rows {rows.shape} and candidate ids "
            f"{candidate_ids.shape} must agree"
        )
    if q.ndim != 2 or db.ndim != 2 or q.shape[1] != db.shape[1]:
        raise ValueError(f"query descriptors {q.shape} and stored ones {db.shape} differ in width")
    if kp and (rows.max(initial=-1) >= len(db)):
        raise ValueError("a candidate row lies beyond the stored descriptors")
    scores = np.full((nq, k), np.nan, dtype=np.float32)
    dist = np.full((nq, k), -1, dtype=np.int32)
    ids = np.full((nq, k), -1, dtype=np.int64)
    if nq == 0 or kp == 0:
        return RerankResult(scores, dist, ids)
    sq = candidate_sq_distances(q, db, rows)
    valid = rows >= 0
    ham = np.where(valid, candidate_distances, np.iinfo(np.int32).max).astype(np.int64)
    cid = np.where(valid, candidate_ids, np.iinfo(np.int64).max)
    if kp > 4 * k:
        # only the k smallest distances and whatever ties the k-th need the full sort
        kth = np.partition(sq, k - 1, axis=1)[:, k - 1 : k]
        keep = np.argsort(sq > kth, axis=1, kind="stable")  # those <= kth first, in order
        width_keep = int((sq <= kth).sum(1).max())
        sub = keep[:, :width_keep]
        sub_order = np.lexsort(
            (
                np.take_along_axis(cid, sub, 1),
                np.take_along_axis(ham, sub, 1),
                np.take_along_axis(sq, sub, 1),
            ),
            axis=-1,
        )[:, :k]
        order = np.take_along_axis(sub, sub_order, 1)
    else:
        order = np.lexsort((cid, ham, sq), axis=-1)[:, :k]  # last key first: sq, ham, id
    width = order.shape[1]
    take_valid = np.take_along_axis(valid, order, 1)
    sq_k = np.take_along_axis(sq, order, 1)
    scores[:, :width] = np.where(take_valid, 1.0 - sq_k / 2.0, np.nan)
    dist[:, :width] = np.where(take_valid, np.take_along_axis(ham, order, 1), -1)
    ids[:, :width] = np.where(take_valid, np.take_along_axis(cid, order, 1), -1)
    return RerankResult(scores, dist, ids)


def check_new_ids(ids: np.ndarray, new_ids: np.ndarray) -> None:
    """``ValueError`` unless new_ids int64 (n,) are distinct and none is in ids (m,)."""
    if len(np.unique(new_ids)) != len(new_ids) or np.isin(new_ids, ids).any():
        raise ValueError("ids must be new and distinct")


def merge_by_id(
    ids: np.ndarray, new_ids: np.ndarray, *rows: tuple[np.ndarray, np.ndarray]
) -> tuple[np.ndarray, ...]:
    """ids int64 (m,) ascending and new_ids (n,), with arrays aligned to each given as (rows of
    ids (m, ...), rows of new_ids (n, ...)): all of them merged in ascending id order, ids first."""
    merged = np.concatenate([ids, new_ids])
    order = np.argsort(merged, kind="stable")
    return (merged[order], *(np.concatenate([old, new])[order] for old, new in rows))


def hamming_candidates(
    index: BinaryIndex, queries: np.ndarray, candidates: int, radius: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stage one: the ``candidates`` nearest codes of each query (ties by id), only those at
    Hamming distance <= ``radius`` when given: (distances int32 (nq, w), ids int64 (nq, w)) with
    w = min(candidates, ntotal), -1 where a row has fewer."""
    d, i = index.search(queries, max(1, min(candidates, max(index.ntotal, 1))))
    if radius is not None:
        out = d > radius
        d, i = np.where(out, -1, d), np.where(out, -1, i)
    return d, i


class RerankIndex:
    """A Hamming index plus one stored descriptor per item: two-stage search.

    index: any :class:`~deephash.index.base.BinaryIndex` (empty; this class adds to it).
    dim: descriptor width D. candidates: default k' (how many Hamming neighbours are re-ranked).
    """

    def __init__(self, index: BinaryIndex, dim: int, *, candidates: int = 1000) -> None:
        check_positive_int(dim, "dim (the descriptor width)")
        check_positive_int(candidates, "candidates")
        if index.ntotal:
            raise ValueError("RerankIndex needs an empty index (it holds the descriptors of all)")
        self.index = index
        self.dim = dim
        self.candidates = candidates
        self.ids_ = np.zeros(0, dtype=np.int64)  # ascending
        self.descriptors_ = np.zeros((0, dim), dtype=np.float32)  # aligned with ids_
        self.next_id_ = 0  # ids are never reused, even after a removal

    @property
    def ntotal(self) -> int:
        return len(self.ids_)

    def add(
        self,
        codes: np.ndarray,
        descriptors: np.ndarray,
        ids: np.ndarray | Sequence[int] | None = None,
    ) -> None:
        """Add codes uint8 (n, ceil(bits / 8)) with their descriptors float (n, D) under ``ids``
        int64 (n,) (default: after the largest id ever added)."""
        desc = as_descriptors(descriptors, self.dim)
        codes = np.asarray(codes)
        if len(desc) != len(codes):
            raise ValueError(f"{len(codes)} codes but {len(desc)} descriptors")
        if ids is None:
            new_ids = np.arange(self.next_id_, self.next_id_ + len(codes), dtype=np.int64)
        else:
            new_ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(new_ids) != len(codes):
            raise ValueError(f"{len(codes)} codes but {len(new_ids)} ids")
        check_new_ids(self.ids_, new_ids)
        self.index.add(codes, new_ids)
        if len(new_ids):
            self.next_id_ = max(self.next_id_, int(new_ids.max()) + 1)
        self.ids_, self.descriptors_ = merge_by_id(self.ids_, new_ids, (self.descriptors_, desc))

    def remove_ids(self, ids: np.ndarray | Sequence[int]) -> int:
        """Remove items (codes and descriptors) by id; unknown ids are ignored. Returns the count."""
        gone = np.asarray(ids, dtype=np.int64).reshape(-1)
        keep = ~np.isin(self.ids_, gone)
        removed = int((~keep).sum())
        if removed:
            self.index.remove_ids(self.ids_[~keep])
            self.ids_, self.descriptors_ = self.ids_[keep], self.descriptors_[keep]
        return removed

    def search(
        self,
        queries: np.ndarray,
        query_descriptors: np.ndarray,
        k: int,
        *,
        candidates: int | None = None,
        radius: int | None = None,
    ) -> RerankResult:
        """The k best of each query's Hamming candidates (top ``candidates``, default the index's
        k', or those within ``radius``), re-ranked by descriptor.

        queries: uint8 (nq, ceil(bits / 8)); query_descriptors: float (nq, D).
        """
        q_desc = as_descriptors(query_descriptors, self.dim, name="query descriptors")
        if len(q_desc) != len(np.atleast_2d(queries)):
            raise ValueError(f"{len(np.atleast_2d(queries))} queries but {len(q_desc)} descriptors")
        check_positive_int(k, "k")
        kp = max(k, candidates if candidates is not None else self.candidates)
        dist, cids = hamming_candidates(self.index, queries, kp, radius)
        rows = np.searchsorted(self.ids_, np.maximum(cids, 0))
        rows = np.where(cids >= 0, rows, -1)
        return rerank(q_desc, self.descriptors_, rows, cids, dist, k)
