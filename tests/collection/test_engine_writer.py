"""The engine writer seals the engine's recent rows (a Milvus flush) once enough were written or
it went idle, off the request path; a seal that fails changes nothing else. The engine here is a
flat index that records each flush (the number of rows it held then)."""

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deephash.collection.engine_writer import EngineWriter
from deephash.index import HammingIndex


class SealedEngine(HammingIndex):
    def __init__(self, bits: int, *, fail: bool = False) -> None:
        super().__init__(bits)
        self.fail = fail
        self.flushes: list[int] = []

    def flush(self) -> None:
        if self.fail:
            raise ConnectionError("the engine refused to flush")
        self.flushes.append(self.ntotal)


def writer(engine: SealedEngine, tmp_path: Path, **options: float) -> EngineWriter:
    return EngineWriter(
        engine, tmp_path, view=lambda: None, drain=lambda a, r: None, settle_s=0.01, **options
    )


def codes(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 256, (n, 2), dtype=np.uint8)


def wait_for(cond: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_seals_once_seal_rows_were_written_without_waiting_to_be_idle(tmp_path: Path) -> None:
    engine = SealedEngine(16)
    w = writer(engine, tmp_path, seal_rows=100, seal_idle_s=3600.0)
    w.add(np.arange(60), codes(60))
    assert w.wait_drained(10.0)
    assert engine.flushes == []  # 60 (+1 for what an earlier run left) < 100, and not idle
    w.add(np.arange(60, 120), codes(60))
    assert wait_for(lambda: w.seals == 1)
    assert engine.flushes == [120]
    w.close()


def test_seals_after_an_idle_spell(tmp_path: Path) -> None:
    engine = SealedEngine(16)
    w = writer(engine, tmp_path, seal_rows=10**6, seal_idle_s=0.2)
    w.add(np.arange(5), codes(5))
    assert wait_for(lambda: engine.flushes and engine.flushes[-1] == 5)
    seals = w.seals
    time.sleep(0.5)
    assert w.seals == seals  # nothing new written: no further seal
    w.close()


def test_a_failed_seal_changes_nothing_else(tmp_path: Path) -> None:
    engine = SealedEngine(16, fail=True)
    w = writer(engine, tmp_path, seal_rows=1, seal_idle_s=0.05)
    w.add(np.arange(30), codes(30))
    assert w.wait_drained(10.0)
    time.sleep(0.3)  # a few failed seals
    assert engine.ids.tolist() == list(range(30))
    assert w.batches == 1 and w.seals == 0  # no re-sync, no repeated write
    w.close()


class CountingEngine(SealedEngine):
    """Records the rows of every insert."""

    def __init__(self, bits: int) -> None:
        super().__init__(bits)
        self.inserts: list[int] = []

    def add(self, codes: np.ndarray, ids: Any = None, metadata: Any = None) -> None:
        self.inserts.append(len(codes))
        super().add(codes, ids, metadata)


def test_a_steady_stream_of_additions_is_written_in_spaced_groups(tmp_path: Path) -> None:
    engine = CountingEngine(16)
    w = writer(engine, tmp_path, write_interval_s=0.25, seal_rows=10**6, seal_idle_s=3600.0)
    stream = codes(60)
    t0 = time.monotonic()
    for i in range(60):  # one addition every 10 ms for 0.6 s
        w.add(np.array([i]), stream[i : i + 1])
        time.sleep(0.01)
    assert w.wait_applied(10.0)
    elapsed = time.monotonic() - t0
    assert sum(engine.inserts) == 60 and engine.ids.tolist() == list(range(60))
    # at most one write per 0.25 s (and one at once, the writer having been idle)
    assert 2 <= len(engine.inserts) <= 2 + int(elapsed / 0.25), (engine.inserts, elapsed)
    w.close()


def test_an_idle_writer_writes_a_lone_addition_at_once(tmp_path: Path) -> None:
    engine = CountingEngine(16)
    w = writer(engine, tmp_path, write_interval_s=0.5, seal_rows=10**6, seal_idle_s=3600.0)
    time.sleep(0.6)  # idle for longer than the interval
    t0 = time.monotonic()
    w.add(np.array([0]), codes(1))
    assert w.wait_applied(2.0)
    assert time.monotonic() - t0 < 0.25 and engine.inserts == [1]
    w.close()
