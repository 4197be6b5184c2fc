"""Taking a batch off a work queue: what is queued, up to a size, the stop mark honoured."""

import queue
import threading
import time

from deephash.queued import gather, work_batches


def filled(*items: list[int] | None) -> queue.SimpleQueue[list[int] | None]:
    q: queue.SimpleQueue[list[int] | None] = queue.SimpleQueue()
    for item in items:
        q.put(item)
    return q


def test_takes_what_is_queued_up_to_the_size() -> None:
    q = filled([2, 3], [4], [5, 6, 7], [8])
    batch, stop = gather(q, [1], len, 4)
    assert batch == [[1], [2, 3], [4]] and not stop  # 4 rows: the next item waits
    assert q.get_nowait() == [5, 6, 7]
    batch, stop = gather(q, [9, 9, 9, 9, 9], len, 4)  # a large first item goes whole, alone
    assert batch == [[9, 9, 9, 9, 9]] and not stop and q.get_nowait() == [8]


def test_stops_at_the_mark_and_at_an_empty_queue() -> None:
    batch, stop = gather(filled([2], None, [3]), [1], len, 10)
    assert batch == [[1], [2]] and stop
    batch, stop = gather(filled(), [1], len, 10)
    assert batch == [[1]] and not stop


def test_waits_for_late_items_only_when_asked() -> None:
    q = filled()
    threading.Timer(0.05, q.put, args=([2],)).start()
    assert gather(q, [1], len, 10) == ([[1]], False)  # no waiting: only what was there
    t0 = time.monotonic()
    batch, _ = gather(q, [1], len, 10, wait_s=0.5)
    assert [2] in batch and time.monotonic() - t0 >= 0.04


def test_the_worker_loop_handles_every_batch_until_the_stop_mark() -> None:
    q = filled([1], [2, 3], [4], None, [5])
    handled: list[list[list[int]]] = []
    work_batches(q, handled.append, len, 2)
    assert handled == [[[1], [2, 3]], [[4]]]  # batches of at most 2 rows; the stop ends it
    assert q.get_nowait() == [5]  # what came after the mark stays queued
