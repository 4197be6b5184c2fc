"""The collection's immutable state (:class:`View`) and the search over one."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from deephash.collection.items import Hit, Item
from deephash.index import BinaryIndex

__all__ = ["View", "search_view"]


@dataclass(frozen=True)
class View:
    """An immutable state of the collection.

    ids (ascending) and codes are the live items. ``items`` maps ids to metadata; it is shared
    between views and only grows between compactions (an id's entry is written before a view
    holding the id is published), so membership is ``ids``, never ``items``. Search runs over
    ``main`` (an index built once) plus ``delta`` (a flat index of the additions since), skipping
    ``removed`` (ids of ``main`` removed since): an addition or removal costs O(its size), and
    ``main`` is rebuilt when the changes outgrow a share of the collection. For an external engine
    ``main`` is the engine itself and there is no delta.
    """

    ids: np.ndarray
    codes: np.ndarray
    items: dict[int, Item]
    next_id: int
    main: BinaryIndex | None = None
    delta: BinaryIndex | None = None
    removed: frozenset[int] = frozenset()

    def contains(self, item_id: int) -> bool:
        pos = int(np.searchsorted(self.ids, item_id))
        return pos < len(self.ids) and int(self.ids[pos]) == item_id


def search_view(
    view: View,
    q: np.ndarray,
    k: int,
    radius: int | None,
    *,
    external: bool,
    kernel_lock: threading.Lock,
) -> list[list[Hit]]:
    """The k nearest items of each query code of q (uint8 (nq, nbytes)) in ``view`` by
    (Hamming distance, id), within ``radius`` when given. ``external``: ``main`` is an external
    engine (searched without ``kernel_lock``, which serialises the local numba kernels)."""
    if not len(view.ids) or not len(q):
        return [[] for _ in range(len(q))]
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    if external:
        if view.main is not None:
            parts.append(view.main.search(q, min(k, len(view.ids))))
    else:
        with kernel_lock:
            if view.main is not None and view.main.ntotal:
                # removed ids may take places in main's answer: ask for that many more
                parts.append(view.main.search(q, min(k + len(view.removed), view.main.ntotal)))
            if view.delta is not None:
                parts.append(view.delta.search(q, min(k, view.delta.ntotal)))
    if not parts:
        return [[] for _ in range(len(q))]
    dist = np.concatenate([d for d, _ in parts], axis=1)
    ids = np.concatenate([i for _, i in parts], axis=1)
    removed = np.fromiter(view.removed, np.int64, len(view.removed))
    out = []
    for d_row, i_row in zip(dist, ids):
        ok = i_row >= 0
        if radius is not None:
            ok &= d_row <= radius
        if len(removed):
            ok &= ~np.isin(i_row, removed)
        d_row, i_row = d_row[ok], i_row[ok]
        order = np.lexsort((i_row, d_row))[:k]  # by distance, ties by the smaller id
        out.append(
            [Hit(int(i), int(d), view.items[int(i)]) for d, i in zip(d_row[order], i_row[order])]
        )
    return out
