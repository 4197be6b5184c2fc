"""The collection's immutable state (:class:`View`) and the search over one: Hamming ranking,
Hamming candidates re-ranked by the stored float descriptors (:mod:`deephash.index.rerank`), or
the union of code and binary-descriptor candidates ranked by descriptor distance
(:mod:`deephash.index.binary_rerank`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from deephash.collection.items import Hit, Item
from deephash.index import BinaryIndex
from deephash.index.binary_rerank import rank_union
from deephash.index.rerank import RerankResult, rerank

__all__ = ["Candidates", "Query", "View", "ViewUpdate", "search_view"]


@dataclass(frozen=True)
class View:
    """An immutable state of the collection.

    ids (ascending) and codes are the live items. ``items`` maps ids to metadata; it is shared
    between views and only grows between compactions (an id's entry is written before a view
    holding the id is published), so membership is ``ids``, never ``items``. Search runs over
    ``main`` (an index built once) plus ``delta`` (a flat index of the additions since), skipping
    ``removed`` (ids of ``main`` removed since): an addition or removal costs O(its size), and
    ``main`` is rebuilt when the changes outgrow a share of the collection. For an external engine
    ``main`` is the engine itself, ``delta`` the additions it may not show yet and ``removed``
    the removals it may not show yet (see :mod:`.freshness`). ``descriptors`` (re-ranking collections)
    holds each live item's descriptor, row for row with ``ids`` (the stored float16 values as
    float32, or a binary kind's packed bits, uint8). ``descriptor_view`` (binary kinds only) is
    the in-process index of those bits: a view of the same ids whose codes are the descriptors,
    with its own main, delta and removed (see :mod:`.descriptor_index`).
    """

    ids: np.ndarray
    codes: np.ndarray
    items: dict[int, Item]
    next_id: int
    main: BinaryIndex | None = None
    delta: BinaryIndex | None = None
    removed: frozenset[int] = frozenset()
    descriptors: np.ndarray | None = None  # (len(ids), width) aligned with ids, or None
    descriptor_view: View | None = None

    def contains(self, item_id: int) -> bool:
        pos = int(np.searchsorted(self.ids, item_id))
        return pos < len(self.ids) and int(self.ids[pos]) == item_id


ViewUpdate = Callable[[Callable[[View], View]], None]
"""Applies a change to the collection's current view and publishes it (under its write lock)."""


@dataclass(frozen=True)
class Query:
    """A checked search request: ``codes`` uint8 (nq, nbytes), the ``k`` best wanted, within
    Hamming ``radius`` when given; for a two-stage search ``descriptors`` float32 (nq, D)
    (stored precision) and the ``candidates`` nearest codes to re-rank; for a binary kind
    ``descriptors`` uint8 (nq, ceil(descriptor_bits / 8)) and, besides the ``candidates``
    nearest codes, the ``descriptor_candidates`` nearest descriptors."""

    codes: np.ndarray
    k: int
    radius: int | None = None
    descriptors: np.ndarray | None = None
    candidates: int = 0
    descriptor_candidates: int = 0
    descriptor_bits: int = 0
    copy_radius: int | None = None


Candidates = Callable[[View, np.ndarray, int, int | None], tuple[np.ndarray, np.ndarray]]
"""A backing's first stage: (view, q uint8 (nq, nbytes), k, radius) -> the k nearest live items
of each query code by (Hamming distance, id), within ``radius`` when given: (distances int32
(nq, k), ids int64 (nq, k)), each row sorted, -1 where a row has fewer."""


def search_view(
    view: View,
    query: Query,
    candidates: Candidates,
    descriptor_candidates: Candidates | None = None,
) -> list[list[Hit]]:
    """One list of hits per query code, best first; ``candidates``: the backing's Hamming
    ranking of ``view``; ``descriptor_candidates``: the Hamming ranking of its
    ``descriptor_view`` (binary kinds).

    Without ``query.descriptors``: the k nearest by (Hamming distance, id). With float ones (the
    view must hold descriptors): the ``max(k, candidates)`` nearest codes (within ``radius`` when
    given) re-ranked by (score, Hamming distance, id), the k best kept, each hit with its
    ``score``. With packed bits: the union of the ``max(k, candidates)`` nearest codes and the
    ``max(k, descriptor_candidates)`` nearest descriptors ranked by (descriptor distance, code
    distance, id), within code distance ``radius`` when given, ``score = 1 - 2 d / bits``.
    """
    q, k, radius, query_descriptors = query.codes, query.k, query.radius, query.descriptors

    def nearest(k: int) -> tuple[np.ndarray, np.ndarray]:
        if not len(view.ids) or not len(q):
            return np.full((len(q), k), -1, np.int32), np.full((len(q), k), -1, np.int64)
        return candidates(view, q, k, radius)

    if query_descriptors is None:
        dist, ids = nearest(k)
        return [
            [Hit(int(i), int(d), view.items[int(i)]) for d, i in zip(d_row, i_row) if i >= 0]
            for d_row, i_row in zip(dist, ids)
        ]
    if view.descriptors is None:
        raise ValueError("this view holds no descriptors to re-rank with")
    if query_descriptors.dtype == np.uint8:
        if descriptor_candidates is None or view.descriptor_view is None:
            raise ValueError("this view holds no index of binary descriptors")
        _, code_ids = nearest(max(k, query.candidates))
        kd = max(k, query.descriptor_candidates)
        desc_ids = np.full((len(q), kd), -1, np.int64)
        if len(view.ids) and len(q):
            _, desc_ids = descriptor_candidates(view.descriptor_view, query_descriptors, kd, None)
        res = _rank_union(view, query, code_ids, desc_ids)
        return _hits(view, res)
    dist, ids = nearest(max(k, query.candidates))
    rows = np.where(ids >= 0, np.searchsorted(view.ids, np.maximum(ids, 0)), -1)
    return _hits(view, rerank(query_descriptors, view.descriptors, rows, ids, dist, k))


def _rank_union(
    view: View, query: Query, code_ids: np.ndarray, desc_ids: np.ndarray
) -> RerankResult:
    """The query's k best of the union of code candidates and descriptor candidates (int64
    (nq, w) each, -1 for none) by (descriptor distance, code distance, id), copies first when
    the query sets a copy radius (:func:`~deephash.index.binary_rerank.rank_union`)."""
    assert query.descriptors is not None and view.descriptors is not None  # checked by caller
    return rank_union(
        (query.codes, query.descriptors),
        (view.ids, view.codes, view.descriptors),
        code_ids,
        desc_ids,
        query.k,
        query.descriptor_bits,
        query.radius,
        query.copy_radius,
    )


def _hits(view: View, res: RerankResult) -> list[list[Hit]]:
    """A re-ranked result as hits with their scores."""
    return [
        [
            Hit(int(i), int(d), view.items[int(i)], float(s))
            for s, d, i in zip(s_row, d_row, i_row)
            if i >= 0
        ]
        for s_row, d_row, i_row in zip(res.scores, res.distances, res.ids)
    ]
