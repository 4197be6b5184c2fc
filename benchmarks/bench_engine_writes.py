"""What a stream of additions costs the Milvus server, written one row per insert or spaced.

    python benchmarks/bench_engine_writes.py        # 60,000 codes, then 100 additions/s for 10 s

A collection on a local Milvus standalone server (the ``milvus-server`` extra) is loaded with
60,000 clustered 48-bit codes; then additions arrive one at a time at ``--rate`` per second for
``--seconds``, with the engine writer's ``write_interval_s`` at 0 (every addition its own insert
as soon as the last one is done) and at the default, alternately, twice each. For each round:
the engine writes made and the CPU (share of one core) of the Milvus server and of this process.
Writes benchmarks/results/engine_writes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

from bench_milvus_scale import codes_for, cpu_seconds  # this folder is on sys.path when run
from deephash.collection import Collection, NewItem
from deephash.collection.engine_writer import EngineWriter
from deephash.index.milvus_server import LocalMilvusServer

ROOT = Path(__file__).resolve().parents[1]


def stream(col: Collection, codes: np.ndarray, rate: float) -> float:
    """Add each of codes one at a time, ``rate`` per second; the seconds it took until the
    engine applied them all."""
    t0 = time.perf_counter()
    for i, code in enumerate(codes):
        col.add([NewItem(code)])
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.perf_counter()))
    assert col.wait_for_engine(60.0)
    return time.perf_counter() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--items", type=int, default=60_000)
    p.add_argument("--rate", type=float, default=100.0, help="additions per second")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each round")
    p.add_argument("--run", default=str(ROOT / "runs/demo/best-hash-48"), help="run (its config)")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/engine_writes.json"))
    args = p.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-engine-writes-"))
    run = base / "run"  # the run's config at 48 bits: the collection reads its code width there
    run.mkdir()
    cfg = yaml.safe_load((Path(args.run) / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**cfg, "bits": 48}))
    per_round = int(args.rate * args.seconds)
    codes = codes_for(np.random.default_rng(0), args.items + 4 * per_round, 48)
    default = EngineWriter.__init__.__kwdefaults__["write_interval_s"]
    rounds = []
    server = LocalMilvusServer(base / "milvus")
    server.start()
    assert server.pid is not None
    try:
        col = Collection.create(base / "col", run, backend="milvus", uri=server.uri)
        for lo in range(0, args.items, 10_000):
            col.add([NewItem(c) for c in codes[lo : min(lo + 10_000, args.items)]])
        assert col.wait_for_engine(600.0, seen=True)
        time.sleep(8.0)
        writer = col._engine_writer
        assert writer is not None
        for r, interval in enumerate((0.0, default, 0.0, default)):
            writer.write_interval_s = interval
            lo = args.items + r * per_round
            b0, s0, c0 = writer.batches, cpu_seconds(server.pid), time.process_time()
            wall = stream(col, codes[lo : lo + per_round], args.rate)
            row = {
                "write_interval_s": interval,
                "additions": per_round,
                "engine_writes": writer.batches - b0,
                "server_cpu_share": round((cpu_seconds(server.pid) - s0) / wall, 3),
                "client_cpu_share": round((time.process_time() - c0) / wall, 3),
            }
            print(row, flush=True)
            rounds.append(row)
        col.close()
    finally:
        server.stop()
    result = {
        "items": args.items,
        "rate_per_s": args.rate,
        "rounds": rounds,
        "engine": "milvus 2.3.5 standalone server (local), BIN_FLAT",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
