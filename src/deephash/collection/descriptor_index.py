"""The in-process index of a collection's binary descriptors (kind ``instance``), whatever its
backing: a :class:`~deephash.collection.local_backing.LocalBacking` over the packed descriptors.

Its state is a view of its own, ``View.descriptor_view``: the collection's ids with the
descriptors as codes, a main index plus a delta of the additions since, minus the ids removed
since (the same scheme as a local code index, so a change costs O(its size)). It is rebuilt
with every change of the collection's view, in step with the code index, so both always hold
the same items. Its kernels run under the code backing's kernel lock (numba's workqueue layer
aborts when two threads launch kernels at once).
"""

from __future__ import annotations

import threading
from dataclasses import replace

import numpy as np

from deephash.collection.local_backing import LocalBacking, local_candidates
from deephash.collection.view import View

__all__ = ["DESCRIPTOR_INDEX", "DescriptorIndex"]

DESCRIPTOR_INDEX = "mih"  # the index kind of the descriptors (multi-index hashing, exact)


class DescriptorIndex:
    """An index of ``bits``-bit packed descriptors (a ``backend`` index), searched under
    ``kernel_lock``."""

    def __init__(
        self, bits: int, kernel_lock: threading.Lock, backend: str = DESCRIPTOR_INDEX
    ) -> None:
        self.bits = bits
        self._backing = LocalBacking(backend, bits)
        self._backing.kernel_lock = kernel_lock

    def built(self, view: View) -> View:
        """``view`` with a freshly built descriptor index over all its items."""
        side = View(view.ids, self._rows(view), {}, view.next_id)
        return replace(view, descriptor_view=self._backing.rebuilt(side))

    def with_additions(self, view: View, ids: np.ndarray, rows: np.ndarray) -> View:
        """``view`` (already holding the new items in ids, codes and descriptors) with the
        descriptor index holding them too: ids int64 (n,), rows uint8 (n, nbytes) the new
        descriptors."""
        side = self._side(view)
        return replace(view, descriptor_view=self._backing.with_additions(side, ids, rows))

    def with_removals(self, view: View, gone: np.ndarray) -> View:
        """``view`` (no longer holding ``gone`` int64 (m,)) with the descriptor index not
        holding them either."""
        side = self._side(view)
        return replace(view, descriptor_view=self._backing.with_removals(side, gone))

    def candidates(
        self, side: View, q: np.ndarray, k: int, radius: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest descriptors of side view ``side`` to each query row of q (uint8 (nq,
        nbytes)) by (Hamming distance, id): (distances int32 (nq, k), ids int64 (nq, k)), -1
        where a row has fewer (a :data:`~deephash.collection.view.Candidates`)."""
        return local_candidates(side, q, k, radius, self._backing.kernel_lock)

    def _side(self, view: View) -> View:
        """The descriptor side of ``view`` with its ids and rows brought up to date."""
        if view.descriptor_view is None:
            raise ValueError("the view has no descriptor index to change")
        return replace(view.descriptor_view, ids=view.ids, codes=self._rows(view))

    @staticmethod
    def _rows(view: View) -> np.ndarray:
        if view.descriptors is None or view.descriptors.dtype != np.uint8:
            raise ValueError("a descriptor index needs packed binary descriptors (uint8)")
        return view.descriptors
