"""Concurrent searches share engine requests: each gets what the engine answers it alone, errors
reach every search of the request, and nothing waits forever around ``close``."""

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import pytest
from _largest_ties import LargestTiesEngine, brute

from deephash.collection.engine_batcher import EngineBatcher
from deephash.collection.engine_search import engine_candidates
from deephash.collection.view import View
from deephash.index import HammingIndex


class GatedEngine(HammingIndex):
    """An exact engine whose first request waits until ``gate`` opens, so that the searches sent
    meanwhile queue; records the query count of every request."""

    def __init__(self, bits: int) -> None:
        super().__init__(bits)
        self.gate = threading.Event()
        self.entered = threading.Event()  # a request is in flight
        self.sizes: list[int] = []
        self.fail: Exception | None = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        self.entered.set()
        self.gate.wait(10)
        self.sizes.append(len(queries))
        if self.fail is not None:
            raise self.fail
        return super().search(queries, k)


def engine_with(n: int, seed: int = 0) -> tuple[GatedEngine, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 4, (n, 2), dtype=np.uint8)  # few distinct codes: many ties
    engine = GatedEngine(16)
    engine.add(codes, np.arange(n))
    return engine, codes


def wait_queued(batcher: EngineBatcher, searches: int) -> None:
    for _ in range(1000):
        if batcher._queue.qsize() >= searches:
            return
        threading.Event().wait(0.005)
    raise AssertionError("the searches did not queue")


def one_in_flight_and_queued(
    pool: ThreadPoolExecutor,
    batcher: EngineBatcher,
    engine: GatedEngine,
    codes: np.ndarray,
    n: int,
    queued: int,
) -> list[Future[tuple[np.ndarray, np.ndarray]]]:
    """A search of codes[0] held in flight at the gate, then ``queued`` more queued behind it."""
    futures = [pool.submit(batcher.search, engine, codes[:1], n)]
    assert engine.entered.wait(10)
    futures += [pool.submit(batcher.search, engine, codes[[i]], n) for i in range(1, queued + 1)]
    wait_queued(batcher, queued)
    return futures


def test_queued_searches_share_one_request_and_get_their_own_rows() -> None:
    engine, codes = engine_with(300)
    batcher = EngineBatcher()
    wanted = [(codes[[i]], n) for i, n in zip(range(9), (1, 5, 40, 7, 300, 2, 11, 64, 3))]
    with ThreadPoolExecutor(len(wanted)) as pool:
        first = pool.submit(batcher.search, engine, *wanted[0])  # in flight, held at the gate
        assert engine.entered.wait(10)
        rest = [pool.submit(batcher.search, engine, q, n) for q, n in wanted[1:]]
        wait_queued(batcher, len(rest))
        engine.gate.set()
        answers = [first.result(), *(f.result() for f in rest)]
    assert engine.sizes == [1, len(rest)]  # the eight queued searches: one request
    assert batcher.requests == 2 and batcher.searches == len(wanted)
    for (q, n), (d, i) in zip(wanted, answers):
        want_d, want_i = HammingIndex.search(engine, q, n)  # the engine alone, exact, ties by id
        assert d.shape == (1, n) and i.shape == (1, n)
        np.testing.assert_array_equal(d, want_d)
        np.testing.assert_array_equal(i, want_i)
    batcher.close()


def test_several_query_rows_and_several_engines_in_one_batch() -> None:
    a, codes_a = engine_with(50, seed=1)
    b, codes_b = engine_with(70, seed=2)
    batcher = EngineBatcher()
    with ThreadPoolExecutor(4) as pool:
        held = pool.submit(batcher.search, a, codes_a[:1], 3)
        assert a.entered.wait(10)
        fa = pool.submit(batcher.search, a, codes_a[5:9], 6)
        fb = pool.submit(batcher.search, b, codes_b[:3], 4)
        wait_queued(batcher, 2)
        a.gate.set()
        b.gate.set()
        got = [held.result(), fa.result(), fb.result()]
    assert a.sizes == [1, 4] and b.sizes == [3]  # each engine asked for its own searches
    for (engine, q, n), (d, i) in zip(
        [(a, codes_a[:1], 3), (a, codes_a[5:9], 6), (b, codes_b[:3], 4)], got
    ):
        want_d, want_i = HammingIndex.search(engine, q, n)
        np.testing.assert_array_equal(d, want_d)
        np.testing.assert_array_equal(i, want_i)
    batcher.close()


def test_an_engine_error_reaches_every_search_of_the_request() -> None:
    engine, codes = engine_with(20)
    engine.fail = ConnectionError("engine down")
    batcher = EngineBatcher()
    with ThreadPoolExecutor(4) as pool:
        futures = one_in_flight_and_queued(pool, batcher, engine, codes, 2, 3)
        engine.gate.set()
        for f in futures:
            with pytest.raises(ConnectionError, match="engine down"):
                f.result()
    engine.fail = None
    d, _ = batcher.search(engine, codes[:1], 2)  # the worker lives on
    assert d.shape == (1, 2)
    batcher.close()


def test_close_answers_what_is_queued_and_later_searches_go_direct() -> None:
    engine, codes = engine_with(30)
    batcher = EngineBatcher()
    with ThreadPoolExecutor(4) as pool:
        futures = one_in_flight_and_queued(pool, batcher, engine, codes, 4, 2)
        closing = pool.submit(batcher.close)
        wait_queued(batcher, 3)  # the stop queued behind the two searches
        engine.gate.set()
        closing.result(timeout=10)
        assert all(f.result(timeout=10)[0].shape == (1, 4) for f in futures)
    requests = batcher.requests
    _, i = batcher.search(engine, codes[:2], 5)
    assert batcher.requests == requests  # asked directly, not through the stopped worker
    want = HammingIndex.search(engine, codes[:2], 5)
    np.testing.assert_array_equal(i, want[1])
    with pytest.raises(ValueError, match="max_queries"):
        EngineBatcher(max_queries=0)


def test_merged_candidates_through_the_batcher_equal_brute_force_from_many_threads() -> None:
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 4, (400, 2), dtype=np.uint8)
    engine = LargestTiesEngine(16)  # ties at the cut filled with the largest ids
    engine.add(codes, np.arange(400))
    view = View(np.arange(400), codes, {}, 400, main=engine)
    batcher, lock = EngineBatcher(), threading.Lock()
    cases = [(codes[i], k) for i in range(0, 400, 7) for k in (1, 10, 120)]

    def one(case: tuple[np.ndarray, int]) -> list[tuple[int, int]]:
        q, k = case
        d, i = engine_candidates(view, q[None], k, None, lock, batcher.search)
        return [(int(a), int(b)) for a, b in zip(i[0], d[0]) if a >= 0]

    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(one, cases))
    assert len(got) == len(cases) > 100
    for (q, k), hits in zip(cases, got):
        assert hits == brute(np.arange(400), codes, q, k)
    assert batcher.searches == len(cases)
    batcher.close()
