"""The engine's answer merged with the pending delta, ties at the cut settled from the
collection's own codes: equal to brute force over the live items even when the engine fills a
tie with the largest ids (Milvus orders equal distances as it likes)."""

import threading

import numpy as np
from _largest_ties import LargestTiesEngine, brute

from deephash.collection.engine_search import engine_candidates, smallest_ids_at
from deephash.collection.freshness import with_additions, with_removals
from deephash.collection.view import View


def test_ties_at_the_cut_are_the_smallest_ids_with_pending_changes() -> None:
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 256, (2, 2), dtype=np.uint8)
    codes = centres[rng.integers(0, 2, 400)] ^ (rng.random((400, 2)) < 0.05).astype(np.uint8)
    engine = LargestTiesEngine(16)
    engine.add(codes[:300], np.arange(300))
    live = np.setdiff1d(np.arange(400), [0, 1, 2, 350])
    view = with_additions(
        View(np.arange(400), codes, {}, 400, main=engine), np.arange(300, 400), codes[300:], 16
    )
    view = with_removals(
        View(live, codes[live], {}, 400, main=engine, delta=view.delta),
        np.array([0, 1, 2, 350]),
        16,
    )
    checked = 0
    for q in codes[[0, 5, 310]]:
        for k in (1, 3, 10, 150, 500):
            d, i = engine_candidates(view, q[None], k, None, threading.Lock())
            got = [(int(a), int(b)) for a, b in zip(i[0], d[0]) if a >= 0]
            assert got == brute(live, codes[live], q, k), (k, q)
            checked += 1
        d, i = engine_candidates(view, q[None], 50, 1, threading.Lock())
        want = [p for p in brute(live, codes[live], q, 50) if p[1] <= 1]
        assert [(int(a), int(b)) for a, b in zip(i[0], d[0]) if a >= 0] == want
    assert checked == 15


def test_smallest_ids_at_scans_in_id_order_across_blocks() -> None:
    ids = np.arange(0, 30_000, 3)
    codes = np.zeros((len(ids), 1), np.uint8)
    codes[[5, 9000, 9990], 0] = 0b111  # distance 3 from the zero code: ids 15, 27000, 29970
    view = View(ids, codes, {}, 30_000)
    q = np.zeros(1, np.uint8)
    assert smallest_ids_at(view, q, 3, 2).tolist() == [15, 27000]
    assert smallest_ids_at(view, q, 3, 10).tolist() == [15, 27000, 29970]
    assert smallest_ids_at(view, q, 0, 4).tolist() == [0, 3, 6, 9]
    assert smallest_ids_at(view, q, 5, 4).tolist() == []


def test_smallest_ids_at_equals_brute_force() -> None:
    rng = np.random.default_rng(7)
    codes = rng.integers(0, 256, (3000, 6), dtype=np.uint8) & 0x31  # few bits: many ties
    ids = np.sort(rng.choice(100_000, 3000, replace=False)).astype(np.int64)
    view = View(ids, codes, {}, 100_000)
    checked = 0
    for q in codes[:20]:
        dist = np.unpackbits(codes ^ q, axis=1).sum(axis=1)
        for distance in range(0, 10):
            for n in (1, 7, 5000):
                want = ids[dist == distance][:n]
                assert smallest_ids_at(view, q, distance, n).tolist() == want.tolist()
                checked += 1
    assert checked == 600
