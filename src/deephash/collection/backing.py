"""Where a collection's codes are searched: its backing, one interface with two implementations.

- :class:`~deephash.collection.local_backing.LocalBacking` (backends ``mih`` and ``flat``): an
  index in this process, a main index plus a small delta of the changes since it was built.
- :class:`~deephash.collection.engine_backing.EngineBacking` (backend ``milvus``): an external
  engine, written off the request path, with a pending delta for read-your-writes.

The collection owns the state (an immutable :class:`~deephash.collection.view.View`, published
under its write lock); a backing turns a changed view into the view to publish (building its
index structures) and searches a view.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import numpy as np

from deephash.collection.items import Hit
from deephash.collection.view import Candidates, Query, View, ViewUpdate, search_view

__all__ = ["ENGINES", "Backing", "snapshot_kind"]

ENGINES = ("milvus",)  # backends that are an external engine; the others are local indexes


def snapshot_kind(backend: str) -> str:
    """The index kind of the snapshot (``index.dhx``) of a collection with ``backend``: an
    external engine's collection keeps a flat one."""
    return "flat" if backend in ENGINES else backend


class Backing(ABC):
    """What a collection asks of its backing of ``bits``-bit codes."""

    def __init__(self, backend: str, bits: int) -> None:
        self.backend = backend
        self.bits = bits
        # numba's workqueue threading layer aborts the process if two threads launch kernels at
        # once: the index kernels of this backing's views run under this lock
        self.kernel_lock = threading.Lock()

    @property
    def snapshot_kind(self) -> str:
        """The index kind of the collection's snapshot."""
        return snapshot_kind(self.backend)

    @abstractmethod
    def start(self, view: View, current: Callable[[], View], update: ViewUpdate) -> View:
        """The view to publish first, for the view read from the folder. ``current`` returns
        the collection's current view; ``update`` changes it (both for work off the request
        path)."""

    @abstractmethod
    def with_additions(self, view: View, ids: np.ndarray, codes: np.ndarray) -> View:
        """The view to publish after an addition: ``view`` already holds the new items in its
        ids, codes and descriptors; ids int64 (n,) and codes uint8 (n, nbytes) are the new ones."""

    @abstractmethod
    def with_removals(self, view: View, gone: np.ndarray) -> View:
        """The view to publish after a removal: ``view`` no longer holds ids int64 (m,) ``gone``
        in its ids, codes and descriptors."""

    @abstractmethod
    def candidates(
        self, view: View, q: np.ndarray, k: int, radius: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest live items of ``view`` to each query code of q (uint8 (nq, nbytes)) by
        (Hamming distance, id), within ``radius`` when given: (distances int32 (nq, k), ids
        int64 (nq, k)), -1 where a row has fewer (see :data:`~deephash.collection.view.Candidates`)."""

    def search(
        self, view: View, query: Query, descriptor_candidates: Candidates | None = None
    ) -> list[list[Hit]]:
        """One list of hits per query code, best first (see
        :func:`~deephash.collection.view.search_view`; ``descriptor_candidates``: the ranking of
        the view's binary descriptors, for a binary kind)."""
        return search_view(view, query, self.candidates, descriptor_candidates)

    def pending(self, view: View) -> dict[str, int] | None:
        """Changes an external engine may not show yet; None for a local index."""
        return None

    def requests(self) -> dict[str, float] | None:
        """How an external engine's search requests were shared (requests sent, searches they
        answered, searches per request); None for a local index."""
        return None

    def info(self, view: View) -> dict[str, Any]:
        """What ``collection info`` and ``/stats`` report of the backing besides the counts."""
        return {}

    def wait(self, timeout: float, seen: bool) -> bool:
        """Wait until every acknowledged change is applied (``seen``: and read back); False when
        ``timeout`` s passed first. True at once for a local index."""
        return True

    def close(self) -> None:  # noqa: B027  (a local index has nothing to stop)
        """Stop any work off the request path."""
