"""A collection of 1M codes on a local Milvus server: load time, search-by-id latency, memory.

    python benchmarks/bench_milvus_scale.py                 # 1,000,000 64-bit codes
    python benchmarks/bench_milvus_scale.py --items 100000  # a shorter run

Starts the local Milvus 2.3.5 standalone server (the milvus-server extra) in a temporary folder,
creates a ``--backend milvus`` collection (BIN_FLAT, exact ties) for ``--bits``-bit codes and adds
``--items`` clustered codes (4,096 random centres, 6 bits flipped) in additions of ``--batch``
through :meth:`Collection.add` (each fsynced in the log, then queued for the engine). Reports:
the time until every addition is acknowledged, until the engine has applied them all and until it
shows them all (the pending delta empty); then ``--queries`` searches by id (k = 10) from 1 and
from 8 threads, latency per search (p50/p99, ms) and searches/s, through the collection and through
the engine alone (the Milvus index's own search for k + 1 rows), with the CPU milliseconds per
search of the Milvus server and of this process; the resident memory of the Milvus
server and of this process (the collection: its codes, ids and metadata in memory). Writes
benchmarks/results/milvus_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from deephash.collection import Collection, NewItem
from deephash.index.milvus_server import LocalMilvusServer
from soak_serve import rss_mb  # this folder is on sys.path when run

ROOT = Path(__file__).resolve().parents[1]


def codes_for(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    centres = rng.integers(0, 2, (4096, bits), dtype=np.uint8)
    x = centres[rng.integers(0, 4096, n)]
    flips = rng.random((n, bits)).argsort(axis=1)[:, :6]
    np.put_along_axis(x, flips, 1 - np.take_along_axis(x, flips, axis=1), axis=1)
    return np.packbits(x, axis=1, bitorder="little")


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and every process below it."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        parent[child] = int(fields[1])
        used[child] = (int(fields[11]) + int(fields[12])) / tick
    tree, frontier = {pid}, [pid]
    while frontier:
        here = frontier.pop()
        kids = [c for c, p in parent.items() if p == here and c not in tree]
        tree.update(kids)
        frontier.extend(kids)
    return sum(used.get(p, 0.0) for p in tree)


def latencies(
    search: Callable[[int], object], ids: np.ndarray, threads: int, server_pid: int
) -> dict[str, float]:
    """Run ``search(id)`` for every id from ``threads`` threads: searches/s, latency p50/p99 (ms),
    and the CPU milliseconds per search of the Milvus server and of this process."""
    out: list[float] = []
    lock = threading.Lock()

    def worker(part: np.ndarray) -> None:
        mine = []
        for i in part.tolist():
            t = time.perf_counter()
            search(i)
            mine.append((time.perf_counter() - t) * 1000.0)
        with lock:
            out.extend(mine)

    server0, own0 = cpu_seconds(server_pid), time.process_time()
    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(p,)) for p in np.array_split(ids, threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    server_cpu, own_cpu = cpu_seconds(server_pid) - server0, time.process_time() - own0
    lat = np.array(out)
    return {
        "threads": threads,
        "searches": len(out),
        "searches_per_s": round(len(out) / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2),
        "p99_ms": round(float(np.percentile(lat, 99)), 2),
        "server_cpu_ms_per_search": round(1000.0 * server_cpu / len(out), 2),
        "client_cpu_ms_per_search": round(1000.0 * own_cpu / len(out), 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--bits", type=int, default=64)
    p.add_argument("--batch", type=int, default=10_000)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument(
        "--settle", type=float, default=60.0, help="seconds to wait after loading, before searching"
    )
    p.add_argument("--run", default=str(ROOT / "runs/demo/best-hash-48"), help="run (its config)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/milvus_scale.json"))
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-milvus-scale-"))
    run = base / "run"  # the run's config with --bits: the collection reads its code width there
    run.mkdir()
    cfg = yaml.safe_load((Path(args.run) / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "bits": args.bits}))
    server = LocalMilvusServer(base / "milvus")
    server.start()
    assert server.pid is not None
    result: dict[str, object] = {"items": args.items, "bits": args.bits, "batch": args.batch}
    try:
        rss0 = rss_mb(server.pid)
        col = Collection.create(
            base / "col", run, backend="milvus", uri=server.uri, milvus_collection="scale"
        )
        codes = codes_for(np.random.default_rng(0), args.items, args.bits)
        t0 = time.perf_counter()
        for lo in range(0, args.items, args.batch):
            col.add([NewItem(c) for c in codes[lo : lo + args.batch]])
        acked = time.perf_counter() - t0
        assert col.wait_for_engine(3600.0)
        applied = time.perf_counter() - t0
        assert col.wait_for_engine(3600.0, seen=True)
        seen = time.perf_counter() - t0
        print(f"acknowledged {acked:.1f} s, applied {applied:.1f} s, shown {seen:.1f} s")
        result.update(
            acknowledged_s=round(acked, 1),
            engine_applied_s=round(applied, 1),
            engine_shows_all_s=round(seen, 1),
            engine_writes=col._engine_writer.batches if col._engine_writer else None,
        )
        time.sleep(args.settle)  # let the server seal, index and compact what it was sent
        cpu0 = cpu_seconds(server.pid)
        time.sleep(10.0)
        idle = (cpu_seconds(server.pid) - cpu0) / 10.0
        print(f"server CPU while idle: {1000 * idle:.0f} ms per second", flush=True)
        result.update(settle_s=args.settle, server_idle_cpu_ms_per_s=round(1000 * idle, 1))
        ids = np.random.default_rng(1).integers(0, args.items, args.queries)
        col.search_by_id(0, 10)  # warm
        engine = col._view.main  # the Milvus index alone: one engine request, k + 1 rows
        assert engine is not None
        searches: dict[str, Callable[[int], object]] = {
            "search_by_id": lambda i: col.search_by_id(i, 10),
            "engine_only": lambda i: engine.search(col.code_of(i)[None, :], 11),
        }
        for name, search in searches.items():
            for threads in (1, 8):
                r = latencies(search, ids, threads, server.pid)
                print(name, r, flush=True)
                result[f"{name}_{threads}"] = r
        result.update(
            milvus_rss_mib_empty=rss0,
            milvus_rss_mib_loaded=rss_mb(server.pid),
            deephash_rss_mib=rss_mb(os.getpid()),
        )
        t = time.perf_counter()
        col.close()
        result["close_s"] = round(time.perf_counter() - t, 1)
        t = time.perf_counter()
        col = Collection.open(base / "col", load_model=False)
        result["open_s"] = round(time.perf_counter() - t, 1)  # replay + engine re-sync (id scan)
        col.close()
    finally:
        server.stop()
    result.update(
        engine="milvus 2.3.5 standalone server (local), BIN_FLAT",
        machine={"cpus": os.cpu_count(), "platform": platform.platform()},
        command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    )
    print(json.dumps(result, indent=2))
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
