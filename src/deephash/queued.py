"""Taking a batch off a work queue: the first item and whatever else is queued behind it.

Both batchers of the service (the model's and the search engine's) let one worker thread take
everything that queued while it was busy, so that work arriving under load is done together.
``None`` on the queue is the stop mark.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["gather", "work_batches"]

T = TypeVar("T")


def gather(
    q: queue.Queue[T | None] | queue.SimpleQueue[T | None],
    first: T,
    size: Callable[[T], int],
    most: int,
    wait_s: float = 0.0,
) -> tuple[list[T], bool]:
    """``first`` and the items queued behind it, up to ``most`` in total ``size`` (a larger first
    item still goes whole), waiting up to ``wait_s`` for more (0: only what is already queued).
    Returns the batch and whether the stop mark was taken (the worker should stop after it)."""
    batch, total = [first], size(first)
    deadline = time.monotonic() + wait_s
    while total < most:
        try:
            wait = deadline - time.monotonic()
            item = q.get(timeout=wait) if wait > 0 else q.get_nowait()
        except queue.Empty:
            break
        if item is None:
            return batch, True
        batch.append(item)
        total += size(item)
    return batch, False


def work_batches(
    q: queue.Queue[T | None] | queue.SimpleQueue[T | None],
    handle: Callable[[list[T]], None],
    size: Callable[[T], int],
    most: int,
    wait_s: float = 0.0,
) -> None:
    """A worker thread's loop: take each batch off ``q`` (see :func:`gather`) and ``handle`` it,
    until the stop mark; what was queued before the mark is handled first."""
    while True:
        first = q.get()
        if first is None:
            return
        batch, stop = gather(q, first, size, most, wait_s)
        handle(batch)
        if stop:
            return
