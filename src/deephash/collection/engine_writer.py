"""Applying a collection's changes to its external engine off the request path.

The collection acknowledges a change once its log record is fsynced and its pending delta holds
it (:mod:`.freshness`); it then queues the change here and returns, without calling the engine
and without waiting for it. One thread, :class:`EngineWriter`, applies the queue in order:
consecutive additions go to the engine as one insert (group commit: every addition that arrived
while the previous insert ran, or within ``write_interval_s`` of it, goes in the next one),
removals as one delete. An engine request costs the engine much the same for one row as for a
hundred, and searches never wait for the engine to show a change (the delta serves it), so under a
steady stream of additions the writes are spaced rather than sent one row at a time. The
engine is the only one this thread writes to, and no collection lock is held while it does, so a
slow or unreachable engine delays neither acknowledgements nor searches.

Draining. A change applied at time t is confirmed ``settle_s`` later (default 5 s: Milvus's
``common.gracefulTime``, the staleness a Bounded read may have) by one read at the searches' own
consistency level (do the added ids show, are the removed ones gone?); what is confirmed is
dropped from the collection's pending delta through ``drain``. Until then every search merges
the delta in, so the very next search after an acknowledgement sees the change whatever the
engine shows.

Failures. A failed write stays queued and is retried every ``retry_s`` with upserts (an insert
whose answer was lost may have been applied), and the engine is re-synced from the collection
(:func:`~deephash.collection.external_engine.resync_engine`) before the queue goes on; the same
happens after a search found the engine unreachable (:meth:`mark_stale`), after an addition
was not seen long after its write (the engine lost it), and when an idle audit (every
``audit_s``: the engine's count, at Strong consistency, against the collection's) finds another
writer changed the engine. Nothing acknowledged is lost: the log has it, the delta serves it.

Sealing. Milvus keeps fresh rows in growing segments, which every search scans by brute force
(on the local server, 60,000 growing 64-bit codes cost ~22 ms of server CPU per query, sealed and
indexed ~1.5 ms; it seals by itself only when a segment grows to hundreds of MB). So once
``seal_rows`` rows were written since the last seal, or ``seal_idle_s`` after the last write, the
thread asks the engine to seal them (a Milvus flush, about a second, off the request path).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deephash.collection.external_engine import (
    delete_rows,
    insert_rows,
    resync_engine,
    seal,
    stored_ids,
)
from deephash.collection.view import View
from deephash.index import BinaryIndex

__all__ = ["EngineWriter"]

_log = logging.getLogger(__name__)
_LOST_AFTER_S = 60.0  # an applied addition still unseen this long after settling: lost
_RECHECK_S = 0.5  # between reads of changes that did not show yet


@dataclass
class _Change:
    """A queued change: ``ids`` int64 (n,), ``codes`` uint8 (n, nbytes) for an addition, None
    for a removal."""

    ids: np.ndarray
    codes: np.ndarray | None


@dataclass
class _Applied:
    """Changes the engine acknowledged at ``at`` (monotonic s), not yet seen by a read."""

    at: float
    added: np.ndarray
    removed: np.ndarray


class EngineWriter:
    """The queue of changes for ``engine`` and the thread that applies them.

    view: returns the collection's current view (read by re-syncs and audits). drain: called
    with (added ids, removed ids) int64 the engine was seen to show; the collection drops them
    from its pending delta. settle_s, retry_s, audit_s: seconds (see the module docstring).
    max_batch: changes applied per round. write_interval_s: least time between two engine
    writes.
    """

    def __init__(
        self,
        engine: BinaryIndex,
        directory: Path,
        *,
        view: Callable[[], View],
        drain: Callable[[np.ndarray, np.ndarray], None],
        settle_s: float = 5.0,
        retry_s: float = 1.0,
        audit_s: float = 60.0,
        seal_rows: int = 4096,
        seal_idle_s: float = 2.0,
        max_batch: int = 4096,
        write_interval_s: float = 0.2,
    ) -> None:
        self.engine = engine
        self.directory = directory
        self.settle_s = settle_s
        self.retry_s = retry_s
        self.audit_s = audit_s
        self.max_batch = max_batch
        self.write_interval_s = write_interval_s
        self.seal_rows = seal_rows
        self.seal_idle_s = seal_idle_s
        self._view = view
        self._drain = drain
        self._cond = threading.Condition()
        self._queue: deque[_Change] = deque()
        self._applied: list[_Applied] = []
        self._stale = False
        self._replace = False  # retries and re-synced queues use upserts
        self._failing = False
        self._closing = False
        self._audit_at = time.monotonic() + audit_s
        self._recheck_at = 0.0
        self._unsealed = 1  # rows written since the last seal; 1: what an earlier run left growing
        self._last_write = time.monotonic()
        self.batches = 0  # engine writes made (for tests and benchmarks)
        self.seals = 0  # seals asked for (for tests and benchmarks)
        self._thread = threading.Thread(target=self._run, name="deephash-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the collection's side
    def add(self, ids: np.ndarray, codes: np.ndarray) -> None:
        """Queue an addition: ids int64 (n,), codes uint8 (n, nbytes). Never blocks on the engine."""
        self._put(_Change(ids, codes))

    def remove(self, ids: np.ndarray) -> None:
        """Queue a removal of ids int64 (m,)."""
        self._put(_Change(ids, None))

    def mark_stale(self) -> None:
        """The engine may have missed or lost writes (it was unreachable): re-sync it."""
        with self._cond:
            self._stale = True
            self._cond.notify()

    def wait_applied(self, timeout: float) -> bool:
        """Wait until every queued change is applied (not necessarily seen); False on timeout."""
        return self._wait(lambda: not self._queue and not self._stale, timeout)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until every change is applied and seen (the pending delta empty)."""
        return self._wait(
            lambda: not self._queue and not self._stale and not self._applied, timeout
        )

    def close(self, timeout: float = 10.0) -> None:
        """Apply what is queued (for at most ``timeout`` s; what is left is in the log and the
        next open re-syncs it), then stop the thread."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout)

    def _put(self, change: _Change) -> None:
        with self._cond:
            self._queue.append(change)
            self._cond.notify()

    def _wait(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not done():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # ------------------------------------------------------------------ the thread
    def _next_due(self) -> float:
        """Seconds until the next write, confirmation or audit is due (0: now)."""
        due = [self._audit_at]
        if self._queue:
            due.append(self._last_write + self.write_interval_s)
        if self._unsealed:
            due.append(self._last_write + self.seal_idle_s)
        if self._applied:
            due.append(max(self._applied[0].at + self.settle_s, self._recheck_at))
        return max(0.0, min(due) - time.monotonic())

    def _run(self) -> None:
        while True:
            with self._cond:
                while not (self._stale or self._closing) and self._next_due() > 0:
                    self._cond.wait(self._next_due())
                if self._closing and not self._queue:
                    return
                batch = list(self._queue)[: self.max_batch]
                stale, closing = self._stale, self._closing
            try:
                if stale:
                    self._resync()
                self._apply(batch)
                if not closing:
                    self._seal()
                    self._confirm()
                    self._audit()
                if self._failing:
                    _log.warning("%s: the search engine is back and in step", self.directory)
                self._failing = False
            except Exception as exc:  # any failure: the queue and the delta keep the changes
                if not self._failing:
                    _log.warning(
                        "%s: the search engine missed changes (%s: %s); they stay queued and "
                        "pending, retried every %.0f s",
                        self.directory,
                        type(exc).__name__,
                        exc,
                        self.retry_s,
                    )
                with self._cond:
                    self._failing = self._stale = self._replace = True
                    if self._closing:
                        return
                    self._cond.wait(self.retry_s)

    def _apply(self, batch: list[_Change]) -> None:
        """Apply ``batch`` (the head of the queue) in order, consecutive changes of one kind in
        one request; each group leaves the queue once the engine acknowledged it."""
        start = 0
        while start < len(batch):
            adding = batch[start].codes is not None
            end = start
            while end < len(batch) and (batch[end].codes is not None) == adding:
                end += 1
            ids = np.concatenate([c.ids for c in batch[start:end]])
            if adding:
                codes = np.concatenate([c.codes for c in batch[start:end] if c.codes is not None])
                insert_rows(self.engine, codes, ids, self._replace)
            else:
                delete_rows(self.engine, ids)
            self.batches += 1
            now = time.monotonic()
            self._unsealed += len(ids)
            self._last_write = now
            with self._cond:
                for _ in range(end - start):
                    self._queue.popleft()
                if not adding:  # an addition removed since needs no confirming any more
                    for a in self._applied:
                        a.added = a.added[~np.isin(a.added, ids)]
                empty = np.zeros(0, np.int64)
                self._applied.append(
                    _Applied(now, ids if adding else empty, empty if adding else ids)
                )
                if not self._queue:
                    self._replace = False
                self._cond.notify_all()
            start = end

    def _seal(self) -> None:
        """Seal the engine's recent rows once ``seal_rows`` were written or it was idle for
        ``seal_idle_s``; a failed seal is tried again after the next idle spell."""
        idle = time.monotonic() >= self._last_write + self.seal_idle_s
        if not self._unsealed or (self._unsealed < self.seal_rows and not idle):
            return
        try:
            seal(self.engine)
        except Exception as exc:  # searches stay correct, only slower: no re-sync for this
            _log.info("%s: sealing the engine's recent rows failed (%s)", self.directory, exc)
            self._last_write = time.monotonic()
            return
        self._unsealed = 0
        self.seals += 1

    def _confirm(self) -> None:
        """Read whether the settled changes show, and drain those that do."""
        now = time.monotonic()
        with self._cond:
            due = [a for a in self._applied if a.at + self.settle_s <= now]
        if not due or now < self._recheck_at:
            return
        added = np.concatenate([a.added for a in due])
        removed = np.concatenate([a.removed for a in due])
        seen = stored_ids(self.engine, np.concatenate([added, removed]))
        ok_added, ok_removed = added[np.isin(added, seen)], removed[~np.isin(removed, seen)]
        if len(ok_added) or len(ok_removed):
            self._drain(ok_added, ok_removed)
        lost = False
        with self._cond:
            for a in due:
                a.added = a.added[~np.isin(a.added, ok_added)]
                a.removed = a.removed[~np.isin(a.removed, ok_removed)]
                lost |= bool(len(a.added)) and now > a.at + self.settle_s + _LOST_AFTER_S
            self._applied = [a for a in self._applied if len(a.added) or len(a.removed)]
            self._recheck_at = now + _RECHECK_S
            self._cond.notify_all()
        if lost:
            raise RuntimeError("additions acknowledged by the engine a minute ago do not show")

    def _audit(self) -> None:
        """When idle, every ``audit_s``: does the engine hold as many rows as the collection?
        (Another process writing to the same Milvus collection shows here.)"""
        if time.monotonic() < self._audit_at:
            return
        self._audit_at = time.monotonic() + self.audit_s
        view = self._view()
        with self._cond:
            busy = bool(self._queue or self._applied)
        if busy or view.delta is not None or view.removed:
            return
        held = self.engine.ntotal
        if self._view() is view and held != len(view.ids):
            raise RuntimeError(
                f"the engine holds {held} rows, the collection {len(view.ids)}: another process "
                "changed it; re-syncing"
            )

    def _resync(self) -> None:
        """Make the engine hold the current view's items; their pending changes count as
        applied now (confirmed once settled); the queue is then replayed with upserts."""
        view = self._view()
        resync_engine(self.engine, view)
        empty = np.zeros(0, np.int64)
        pending = empty if view.delta is None else np.asarray(view.delta.ids, np.int64)
        removed = np.fromiter(view.removed, np.int64, len(view.removed))
        with self._cond:
            self._applied = [_Applied(time.monotonic(), pending, removed)]
            self._stale = False
            self._replace = bool(self._queue)
            self._cond.notify_all()
        _log.warning("%s: the search engine was re-synced from the collection", self.directory)
