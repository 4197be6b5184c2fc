"""Concurrent searches of one external engine share one request (request coalescing).

An engine request costs mostly what every request costs, whatever it asks: on the local Milvus
server (60,000 48-bit codes, BIN_FLAT) a request of 8 queries cost the server 0.81 ms of CPU per
query where 8 requests of one query cost 5.4 ms each, and this process's gRPC work 0.15 ms per
query instead of 1.16. So searches of a collection that arrive while a request is in flight wait
in a queue, and one worker thread sends everything queued (up to ``max_queries`` query codes) as
the next request, asking every query for the most rows any of them wants, and hands each search
its own rows. Under light load a request is one search and waits for nothing; under load the
requests grow as they take longer, and the engine's cost per query falls.

A search asked for n rows gets the first n of the larger answer: the n nearest by distance,
exactly what the engine would have answered alone (for an exact engine, up to which ids it
keeps inside a tie at the cut, its own choice either way; the collection settles such ties from
its own codes, see :mod:`.engine_search`).
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from deephash.index import BinaryIndex
from deephash.queued import work_batches

__all__ = ["EngineBatcher"]

Answer = tuple[np.ndarray, np.ndarray]
"""Distances int32 (nq, n) and ids int64 (nq, n), as :meth:`BinaryIndex.search` returns them."""


@dataclass
class _Search:
    """One caller's search: its engine, query codes uint8 (nq, nbytes), rows wanted, answer."""

    index: BinaryIndex
    q: np.ndarray
    n: int
    answer: Future[Answer] = field(default_factory=Future)


class EngineBatcher:
    """Send concurrent :meth:`search` calls to their engine as shared requests of at most
    ``max_queries`` query codes (a single larger search still goes whole), from one worker."""

    def __init__(self, *, max_queries: int = 256, name: str = "engine-batcher") -> None:
        if max_queries < 1:
            raise ValueError(f"max_queries must be >= 1, got {max_queries}")
        self.max_queries = max_queries
        self.requests = 0  # engine requests sent
        self.searches = 0  # searches they answered
        self._queue: queue.SimpleQueue[_Search | None] = queue.SimpleQueue()
        self._closed = False
        self._gate = threading.Lock()  # nothing is queued behind the worker's stop
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def search(self, index: BinaryIndex, q: np.ndarray, n: int) -> Answer:
        """``index.search(q, n)`` (q: uint8 (nq, nbytes)), in a request shared with the searches
        queued beside it; raises what the engine raised. After :meth:`close`, asks directly."""
        job = _Search(index, q, n)
        with self._gate:
            queued = not self._closed and len(q) > 0
            if queued:
                self._queue.put(job)
        return job.answer.result() if queued else index.search(q, n)

    @property
    def mean_searches(self) -> float:
        """Searches per engine request so far."""
        return self.searches / self.requests if self.requests else 0.0

    def _work(self) -> None:
        work_batches(self._queue, self._send_all, lambda job: len(job.q), self.max_queries)

    def _send_all(self, batch: list[_Search]) -> None:
        """One request per engine for the searches of ``batch``."""
        for index in {id(job.index): job.index for job in batch}.values():
            self._send(index, [job for job in batch if job.index is index])

    def _send(self, index: BinaryIndex, jobs: list[_Search]) -> None:
        """One request to ``index`` for every search of ``jobs``; each gets its rows, or the
        engine's exception."""
        try:
            dist, ids = index.search(np.concatenate([j.q for j in jobs]), max(j.n for j in jobs))
        except BaseException as exc:  # every waiting search gets the error
            for job in jobs:
                job.answer.set_exception(exc)
            return
        self.requests += 1
        self.searches += len(jobs)
        start = 0
        for job in jobs:
            stop = start + len(job.q)
            job.answer.set_result((dist[start:stop, : job.n], ids[start:stop, : job.n]))
            start = stop

    def close(self) -> None:
        """Answer what is queued, then stop the worker; later searches ask the engine directly."""
        with self._gate:
            if self._closed:
                return
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=30)
