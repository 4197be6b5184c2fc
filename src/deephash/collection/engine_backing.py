"""The external-engine backing (backend ``milvus``): the codes live in a Milvus collection.

The engine is never called under the collection's write mutex: a change is acknowledged once it
is in the log and in the view's pending delta (:mod:`.freshness`), and
:class:`~deephash.collection.engine_writer.EngineWriter` applies it to the engine from its own
thread (group commit), draining the delta once the engine shows it; a search asks the engine at
Bounded consistency (no wait for the server's clock) and merges the delta in
(:mod:`.engine_search`). The count is the collection's own (``len(ids)``, no engine request): it
is the only writer of its engine, a second ``deephash`` process on the folder is refused by the
OS lock, and another process writing the same Milvus collection is detected by the writer's idle
audit (counts differ) and undone by a re-sync.

An engine that cannot be reached (:class:`~deephash.index.EngineUnavailableError`) fails
searches (503) but not writes: they go to the log and the view's pending delta and stay queued;
once the engine answers, the engine writer re-syncs it from the collection (removing what it
holds that the collection does not, adding what it lacks, :mod:`.external_engine`) and applies
the queue, while searches are already answered from engine plus delta.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from deephash.collection.backing import Backing
from deephash.collection.engine_batcher import EngineBatcher
from deephash.collection.engine_search import engine_candidates
from deephash.collection.engine_writer import EngineWriter
from deephash.collection.external_engine import engine_spec, resync_engine
from deephash.collection.freshness import drained, pending_counts, with_additions, with_removals
from deephash.collection.items import Hit
from deephash.collection.view import Candidates, Query, View, ViewUpdate
from deephash.index import EngineUnavailableError, create_index

__all__ = ["EngineBacking"]


class EngineBacking(Backing):
    """The external engine of the collection in ``directory`` with ``settings``. A reader
    (``read_only``) does not connect; ``settle_s``: the engine's staleness bound."""

    def __init__(
        self, directory: Path, settings: dict[str, Any], *, read_only: bool, settle_s: float
    ) -> None:
        super().__init__(str(settings["backend"]), int(settings["bits"]))
        self.directory = directory
        self.settings = settings
        self.read_only = read_only
        self.settle_s = settle_s
        self.writer: EngineWriter | None = None  # applies changes to the engine
        self.batcher: EngineBatcher | None = None  # concurrent searches share engine requests

    def start(self, view: View, current: Callable[[], View], update: ViewUpdate) -> View:
        """Connect to the engine, make it hold exactly the collection's items (see
        :func:`~deephash.collection.external_engine.resync_engine`) and start the thread that
        applies later changes to it."""
        if self.read_only:  # a reader (``collection info``) does not touch the engine
            return view
        name, options = engine_spec(self.settings)
        index = create_index(name, self.bits, **options)
        resync_engine(index, view)

        def drain(seen_added: np.ndarray, seen_removed: np.ndarray) -> None:
            # drop from the pending delta what the engine was seen to show (no engine call)
            update(lambda v: drained(v, seen_added, seen_removed, self.bits))

        self.writer = EngineWriter(
            index, self.directory, view=current, drain=drain, settle_s=self.settle_s
        )
        self.batcher = EngineBatcher()
        return replace(view, main=index)

    def with_additions(self, view: View, ids: np.ndarray, codes: np.ndarray) -> View:
        """Pending in the delta; the engine writer applies it later."""
        out = with_additions(view, ids, codes, self.bits)
        if self.writer is not None:
            self.writer.add(ids, codes)
        return out

    def with_removals(self, view: View, gone: np.ndarray) -> View:
        """Tombstoned; the engine writer applies it later."""
        out = with_removals(view, gone, self.bits)
        if self.writer is not None:
            self.writer.remove(gone)
        return out

    def candidates(
        self, view: View, q: np.ndarray, k: int, radius: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The engine's answer merged with the pending delta (see :mod:`.engine_search`); the
        engine request is shared with the searches beside it (:mod:`.engine_batcher`)."""
        if self.batcher is None:
            return engine_candidates(view, q, k, radius, self.kernel_lock)
        return engine_candidates(view, q, k, radius, self.kernel_lock, self.batcher.search)

    def search(
        self, view: View, query: Query, descriptor_candidates: Candidates | None = None
    ) -> list[list[Hit]]:
        try:
            return super().search(view, query, descriptor_candidates)
        except EngineUnavailableError:
            # it may have lost or missed writes while down: re-sync it once it answers
            if self.writer is not None:
                self.writer.mark_stale()
            raise

    def pending(self, view: View) -> dict[str, int] | None:
        return pending_counts(view)

    def requests(self) -> dict[str, float] | None:
        b = self.batcher
        if b is None:
            return None
        return {"requests": b.requests, "searches": b.searches, "mean": round(b.mean_searches, 3)}

    def info(self, view: View) -> dict[str, Any]:
        return {"uri": self.settings["uri"], **pending_counts(view)}

    def wait(self, timeout: float, seen: bool) -> bool:
        writer = self.writer
        if writer is None:
            return True
        return writer.wait_drained(timeout) if seen else writer.wait_applied(timeout)

    def close(self) -> None:
        """Apply the queued changes (for a few seconds at most; the next open re-syncs what is
        left)."""
        if self.batcher is not None:
            self.batcher.close()
        if self.writer is not None:
            self.writer.close()
