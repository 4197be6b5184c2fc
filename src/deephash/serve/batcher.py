"""Micro-batching in front of the model: concurrent requests share one forward pass.

Requests put their images on a queue and wait on a future; one worker thread takes everything that
is queued (up to ``max_batch`` images), runs the model once on the stack and hands each request its
rows. Under light load a batch is one request and adds no delay; under heavy load requests pile up
while the model runs, so the next pass takes many at once and the per-image cost falls.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future

import numpy as np

from deephash.queued import work_batches

__all__ = ["MicroBatcher"]


class MicroBatcher:
    """Run ``fn`` (N, ...) -> (N, ...) on batches gathered from concurrent :meth:`submit` calls.

    fn: maps a stack of inputs to a stack of outputs with one row per input. max_batch: most rows
    per call (a single larger submission still runs whole). max_wait_s: how long to wait for more
    requests after the first one (0: take only what is already queued).
    """

    def __init__(
        self,
        fn: Callable[[np.ndarray], np.ndarray],
        *,
        max_batch: int = 64,
        max_wait_s: float = 0.0,
        name: str = "micro-batcher",
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: queue.Queue[tuple[np.ndarray, Future[np.ndarray]] | None] = queue.Queue()
        self._closed = False
        self.batches = 0
        self.rows = 0
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, x: np.ndarray) -> Future[np.ndarray]:
        """Queue inputs x (n, ...); the future gives fn's n output rows (or its exception)."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        fut: Future[np.ndarray] = Future()
        if len(x) == 0:
            fut.set_result(self.fn(x))
            return fut
        self._queue.put((x, fut))
        return fut

    @property
    def mean_batch(self) -> float:
        """Average rows per model call so far."""
        return self.rows / self.batches if self.batches else 0.0

    def _work(self) -> None:
        work_batches(
            self._queue, self._run, lambda job: len(job[0]), self.max_batch, self.max_wait_s
        )

    def _run(self, batch: list[tuple[np.ndarray, Future[np.ndarray]]]) -> None:
        live = [(x, f) for x, f in batch if f.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            out = self.fn(np.concatenate([x for x, _ in live]))
        except BaseException as exc:  # every waiting request gets the error
            for _, f in live:
                f.set_exception(exc)
            return
        self.batches += 1
        self.rows += len(out)
        start = 0
        for x, f in live:
            f.set_result(out[start : start + len(x)])
            start += len(x)

    def close(self) -> None:
        """Finish what is queued, then stop the worker."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join(timeout=30)
