import threading
import time

import numpy as np
import pytest

from deephash.serve.batcher import MicroBatcher


def test_concurrent_requests_share_a_pass_and_get_their_own_rows() -> None:
    calls: list[int] = []

    def slow_double(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        time.sleep(0.02)  # while the model runs, more requests queue up
        return x * 2

    batcher = MicroBatcher(slow_double, max_batch=64)
    results: dict[int, np.ndarray] = {}

    def request(i: int) -> None:
        x = np.full((1 + i % 3, 4), i, dtype=np.int64)
        results[i] = batcher.submit(x).result(timeout=10)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for i in range(30):  # each request got exactly its rows, transformed
        np.testing.assert_array_equal(results[i], np.full((1 + i % 3, 4), 2 * i))
    assert sum(calls) == sum(1 + i % 3 for i in range(30))
    assert len(calls) < 30 and max(calls) > 3  # batched
    assert batcher.mean_batch == pytest.approx(sum(calls) / len(calls))


def test_max_batch_and_errors() -> None:
    seen: list[int] = []

    def fn(x: np.ndarray) -> np.ndarray:
        seen.append(len(x))
        if np.any(x < 0):
            raise ValueError("negative input")
        return x

    batcher = MicroBatcher(fn, max_batch=2, max_wait_s=0.05)
    futures = [batcher.submit(np.array([i])) for i in range(5)]
    assert [int(f.result(timeout=10)[0]) for f in futures] == list(range(5))
    assert max(seen) <= 2
    bad = batcher.submit(np.array([-1]))
    with pytest.raises(ValueError, match="negative input"):
        bad.result(timeout=10)
    assert int(batcher.submit(np.array([7])).result(timeout=10)[0]) == 7  # still serving
    batcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.submit(np.array([1]))
