"""Read-your-writes over an external engine that lags: the pending delta and tombstones merged
with the engine's answer equal brute force over the collection (distances, ties by the smaller
id, radius), whatever the engine shows yet; and a slow engine delays neither additions nor
searches. The engine here is a stand-in: a flat index whose writes wait at a gate."""

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from _brute_hits import brute, pairs

import deephash.collection.engine_backing as engine_module
from deephash.collection import Collection, NewItem
from deephash.collection.freshness import drained, with_additions, with_removals
from deephash.collection.view import View
from deephash.index import BinaryIndex, HammingIndex


class GatedEngine(HammingIndex):
    """A flat index whose writes block until ``gate`` is set (a slow or stalled engine)."""

    def __init__(self, bits: int) -> None:
        super().__init__(bits)
        self.gate = threading.Event()
        self.gate.set()
        self.writes = 0

    def add(self, codes: np.ndarray, ids: Any = None, metadata: Any = None) -> None:
        assert self.gate.wait(60.0)
        self.writes += 1
        super().add(codes, ids, metadata)

    def remove_ids(self, ids: Any) -> int:
        assert self.gate.wait(60.0)
        self.writes += 1
        return super().remove_ids(ids)


@pytest.fixture()
def engine(monkeypatch: pytest.MonkeyPatch) -> GatedEngine:
    """The one engine every milvus collection of the test gets; confirmations after 0.05 s."""
    the_engine = GatedEngine(16)
    real = engine_module.create_index

    def fake_create_index(name: str, bits: int, **options: Any) -> BinaryIndex:
        return the_engine if name.startswith("milvus:") else real(name, bits, **options)

    monkeypatch.setattr(engine_module, "create_index", fake_create_index)
    monkeypatch.setattr(Collection, "engine_settle_s", 0.05)
    return the_engine


def clustered(rng: np.random.Generator, n: int) -> np.ndarray:
    """16-bit codes near 3 centres: many exact ties and duplicates."""
    centres = rng.integers(0, 256, (3, 2), dtype=np.uint8)
    return centres[rng.integers(0, 3, n)] ^ (rng.random((n, 2)) < 0.08).astype(np.uint8)


def check_equal(col: Collection, queries: np.ndarray) -> int:
    checked = 0
    for q in queries:
        for k in (1, 5, 40, 400):
            assert pairs(col.search(q, k)[0]) == brute(col, q, k)
            checked += 1
        assert pairs(col.search(q, 300, radius=3)[0]) == brute(col, q, 300, radius=3)
    return checked


def test_pending_changes_merge_like_flat_while_the_engine_lags(
    engine: GatedEngine, tiny_hash_run: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    codes = clustered(rng, 300)
    col = Collection.create(tmp_path / "c", tiny_hash_run, backend="milvus", uri="http://x:1")
    col.add([NewItem(c) for c in codes[:150]])
    assert col.wait_for_engine(10.0, seen=True)
    assert col.info()["pending_additions"] == 0 and engine.ntotal == 150
    engine.gate.clear()  # the engine stalls: nothing below reaches it
    try:
        col.add([NewItem(c) for c in codes[150:]])  # pending additions, ties with the engine's
        col.remove([0, 1, 2, 160, 161])  # engine rows and pending rows
        info = col.info()
        assert info["pending_additions"] == 148 and info["pending_removals"] == 5
        assert info["count"] == 295 == col.count  # the collection's own count
        assert col.engine_pending == {"pending_additions": 148, "pending_removals": 5}
        assert check_equal(col, codes[[0, 3, 151, 299]]) == 16
    finally:
        engine.gate.set()
    assert col.wait_for_engine(10.0, seen=True)
    info = col.info()
    assert info["pending_additions"] == 0 and info["pending_removals"] == 0
    assert engine.ids.tolist() == col.ids.tolist()
    assert check_equal(col, codes[[0, 3, 151, 299]]) == 16
    col.close()


def test_a_stalled_engine_blocks_neither_additions_nor_searches(
    engine: GatedEngine, tiny_hash_run: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    codes = clustered(rng, 100)
    col = Collection.create(tmp_path / "c", tiny_hash_run, backend="milvus", uri="http://x:1")
    col.add([NewItem(c) for c in codes[:50]])
    assert col.wait_for_engine(10.0)
    engine.gate.clear()
    try:
        added = []
        t0 = time.monotonic()
        for c in codes[50:]:  # each acknowledged, and found by the very next search
            (new_id,) = col.add([NewItem(c)])
            added.append(new_id)
            hits = col.search(c, 100, radius=0)[0]
            assert new_id in [h.id for h in hits]
        col.remove([added[0], 3])
        assert {added[0], 3}.isdisjoint(h.id for h in col.search(codes[3], 100)[0])
        assert time.monotonic() - t0 < 10.0  # 50 additions, 51 searches, while the engine hangs
        assert engine.writes == 1 and engine.ntotal == 50  # only the first batch got there
    finally:
        engine.gate.set()
    assert col.wait_for_engine(10.0)
    # group commit: what queued behind the stalled write went in a few writes, not one each
    assert engine.writes <= 4
    col.close()
    with Collection.open(tmp_path / "c", load_model=False) as again:
        assert again.count == 98 and engine.ids.tolist() == again.ids.tolist()


def test_an_unreachable_engine_is_re_synced_and_loses_nothing(
    engine: GatedEngine, tiny_hash_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(2)
    codes = clustered(rng, 80)
    col = Collection.create(tmp_path / "c", tiny_hash_run, backend="milvus", uri="http://x:1")
    col.add([NewItem(c) for c in codes[:40]])
    assert col.wait_for_engine(10.0, seen=True)
    writer = col._engine_writer
    assert writer is not None
    monkeypatch.setattr(writer, "retry_s", 0.05)
    monkeypatch.setattr(writer, "write_interval_s", 0.0)  # each change tried at once
    down = threading.Event()
    down.set()
    failures = []
    real_add = GatedEngine.add

    def failing_add(self: GatedEngine, *args: Any, **kwargs: Any) -> None:
        if down.is_set():
            failures.append(1)
            raise ConnectionError("the engine is down")
        real_add(self, *args, **kwargs)

    monkeypatch.setattr(GatedEngine, "add", failing_add)
    col.add([NewItem(c) for c in codes[40:]])  # acknowledged: the log has it
    col.remove([7])
    assert check_equal(col, codes[[1, 45]]) == 8  # the pending changes are served meanwhile
    engine.remove_ids(np.array([5]))  # and the engine loses a row it had shown
    down.clear()
    assert col.wait_for_engine(10.0, seen=True)
    assert len(failures) >= 1
    assert engine.ids.tolist() == col.ids.tolist()  # re-synced: 5 back, 7 gone, 40.. in
    assert check_equal(col, codes[[1, 45]]) == 8
    col.close()


def test_delta_functions_keep_view_and_pending_consistent() -> None:
    bits = 16
    codes = np.arange(12, dtype=np.uint8).reshape(6, 2)
    view = with_additions(View(np.arange(6), codes, {}, 6), np.array([4, 5]), codes[4:], bits)
    assert view.delta is not None and view.delta.ids.tolist() == [4, 5]
    live = np.array([0, 2, 3, 5])
    view = with_removals(View(live, codes[live], {}, 6, delta=view.delta), np.array([4, 1]), bits)
    assert view.delta is not None and view.delta.ids.tolist() == [5]
    assert view.removed == {1, 4}  # pending or not, the engine may hold them
    view = drained(view, np.array([5]), np.array([4]), bits)
    assert view.delta is None and view.removed == {1}
