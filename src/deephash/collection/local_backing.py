"""The local backing (backends ``mih`` and ``flat``): an index in this process.

A view searches a main index plus a small flat index of the additions since it was built, minus
the ids removed since, so a change costs O(its size); main is rebuilt once those changes exceed
1/16 of the collection (at least :attr:`LocalBacking.rebuild_min`). The index kernels are
numba-parallel, and numba's workqueue threading layer aborts the process if two threads launch
kernels at once, so the kernel calls are serialised by a mutex (a search takes about 0.1 ms for
60,000 codes and uses every core).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from deephash.collection.backing import Backing
from deephash.collection.view import View, ViewUpdate
from deephash.index import create_index

__all__ = ["LocalBacking", "local_candidates"]


class LocalBacking(Backing):
    """A ``backend`` index (``mih`` or ``flat``) of ``bits``-bit codes in this process."""

    rebuild_min = 1024  # changes the delta may hold before the main index is rebuilt

    def start(self, view: View, current: Callable[[], View], update: ViewUpdate) -> View:
        return self.rebuilt(view)

    def with_additions(self, view: View, ids: np.ndarray, codes: np.ndarray) -> View:
        old = view.delta
        delta_ids = ids if old is None else np.concatenate([old.ids, ids])
        delta_codes = codes if old is None else np.concatenate([old.codes, codes])
        return self._published(replace(view, delta=None), delta_ids, delta_codes)

    def with_removals(self, view: View, gone: np.ndarray) -> View:
        nbytes = view.codes.shape[1]
        delta_ids = np.zeros(0, np.int64) if view.delta is None else view.delta.ids
        delta_codes = np.zeros((0, nbytes), np.uint8) if view.delta is None else view.delta.codes
        in_delta = np.isin(delta_ids, gone)
        from_main = set(gone.tolist()) - set(delta_ids[in_delta].tolist())
        return self._published(
            replace(view, delta=None, removed=view.removed | from_main),
            delta_ids[~in_delta],
            delta_codes[~in_delta],
        )

    def _published(self, view: View, delta_ids: np.ndarray, delta_codes: np.ndarray) -> View:
        """``view`` with a delta index over ``delta_ids``; with a rebuilt ``main`` instead when
        the changes since it was built exceed 1/16 of the collection (at least
        :attr:`rebuild_min`)."""
        changes = len(delta_ids) + len(view.removed)
        if view.main is None or changes > max(self.rebuild_min, len(view.ids) // 16):
            return self.rebuilt(view)
        delta = None
        if len(delta_ids):
            delta = create_index("flat", self.bits)
            delta.add(delta_codes, delta_ids)
        return replace(view, delta=delta)

    def candidates(
        self, view: View, q: np.ndarray, k: int, radius: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        return local_candidates(view, q, k, radius, self.kernel_lock)

    def rebuilt(self, view: View) -> View:
        """The view with a fresh ``main`` index over every item, ready to search."""
        if not len(view.ids):
            return replace(view, main=None, delta=None, removed=frozenset())
        index = create_index(self.backend, self.bits)
        index.add(view.codes, view.ids)
        with self.kernel_lock:
            index.search(view.codes[:1], 1)  # builds lazy structures (MIH tables) now
        return replace(view, main=index, delta=None, removed=frozenset())


def local_candidates(
    view: View, q: np.ndarray, k: int, radius: int | None, kernel_lock: threading.Lock
) -> tuple[np.ndarray, np.ndarray]:
    """The k nearest live items of each query code of q (uint8 (nq, nbytes)) by (Hamming
    distance, id) from ``main`` and ``delta`` minus ``removed``, only those within ``radius``
    when given: (distances int32 (nq, k), ids int64 (nq, k)), each row sorted, -1 where a row
    has fewer. ``kernel_lock`` serialises the numba kernels."""
    dist_out = np.full((len(q), k), -1, dtype=np.int32)
    ids_out = np.full((len(q), k), -1, dtype=np.int64)
    parts: list[tuple[np.ndarray, np.ndarray]] = []
    with kernel_lock:
        if view.main is not None and view.main.ntotal:
            # removed ids may take places in main's answer: ask for that many more
            parts.append(view.main.search(q, min(k + len(view.removed), view.main.ntotal)))
        if view.delta is not None:
            parts.append(view.delta.search(q, min(k, view.delta.ntotal)))
    if not parts:
        return dist_out, ids_out
    if len(parts) == 1 and radius is None and not view.removed:
        # main alone, nothing to drop: its rows are already sorted by (distance, id)
        width = parts[0][0].shape[1]
        dist_out[:, :width], ids_out[:, :width] = parts[0]
        return dist_out, ids_out
    dist = np.concatenate([d for d, _ in parts], axis=1)
    ids = np.concatenate([i for _, i in parts], axis=1)
    removed = np.fromiter(view.removed, np.int64, len(view.removed))
    for row, (d_row, i_row) in enumerate(zip(dist, ids)):
        ok = i_row >= 0
        if radius is not None:
            ok &= d_row <= radius
        if len(removed):
            ok &= ~np.isin(i_row, removed)
        d_row, i_row = d_row[ok], i_row[ok]
        order = np.lexsort((i_row, d_row))[:k]  # by distance, ties by the smaller id
        dist_out[row, : len(order)] = d_row[order]
        ids_out[row, : len(order)] = i_row[order]
    return dist_out, ids_out
