"""Approximate search with measured recall: BIN_IVF_FLAT on a Milvus server, faiss IndexBinaryIVF
and the exact indexes (flat, mih), on 1M clustered 64-bit codes.

    python benchmarks/bench_ivf.py                 # 1M codes, 1,000 queries (a few minutes)
    python benchmarks/bench_ivf.py --quick         # smoke run: 100k codes
    python benchmarks/bench_ivf.py --uri http://host:19530   # an existing Milvus server

Data: ``--centres`` random 64-bit centres, each code a centre with ``--flips`` random bits flipped
(learned codes cluster by class like this); the queries are drawn the same way (not in the
database). Ground truth: the exact k nearest by the flat index. Recall@k is tie-aware: with d_k
the true k-th distance, a returned list scores (#returned at distance < d_k + min(#returned at
d_k, k - #true at distance < d_k)) / k, so any exact answer scores 1 whichever tied ids it holds
(every returned distance is the true one for these indexes). Queries/s: all queries in one
batch, best of ``--repeat``, one thread for the in-process indexes (numba, faiss); the Milvus
server uses its own threads on the same machine and is reached over gRPC on 127.0.0.1. A local
Milvus server (the milvus-server extra) is started in a temporary folder unless ``--uri`` is given.
Writes benchmarks/results/ivf_recall.json and prints the table.
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
from typing import Any

import numba
import numpy as np

from deephash.index import HammingIndex, MultiIndexHashing, create_index

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_index import timed  # same folder: one timer for the index benchmarks

ROOT = Path(__file__).resolve().parents[1]
NPROBES = (1, 2, 4, 8, 16, 32, 64, 128)


def clustered(rng: np.random.Generator, centres: np.ndarray, n: int, flips: int) -> np.ndarray:
    """uint8 (n, 8): a random centre per code with ``flips`` random bits flipped."""
    words = centres[rng.integers(0, centres.shape[0], n)].copy()
    for _ in range(flips):
        words[:, 0] ^= np.left_shift(np.uint64(1), rng.integers(0, 64, n).astype(np.uint64))
    return words.view(np.uint8).reshape(n, 8)


def recall_at_k(true_d: np.ndarray, got_d: np.ndarray) -> float:
    """Tie-aware recall@k (see the module docstring); distances int (nq, k), -1 = missing."""
    k = true_d.shape[1]
    dk = true_d[:, -1:]
    need_lt = (true_d < dk).sum(1)
    ok = got_d >= 0
    lt = ((got_d < dk) & ok).sum(1)
    eq = ((got_d == dk) & ok).sum(1)
    return float(np.mean((lt + np.minimum(eq, k - need_lt)) / k))


def row(name: str, nprobe: int | None, seconds: float, nq: int, recall: float) -> dict[str, Any]:
    r = {
        "index": name,
        "nprobe": nprobe,
        "recall_at_k": round(recall, 4),
        "queries_per_s": round(nq / seconds, 1),
        "seconds": round(seconds, 4),
    }
    print(
        f"{name:<26} {'' if nprobe is None else nprobe:>6} {r['recall_at_k']:>9.4f} "
        f"{r['queries_per_s']:>11.1f}",
        flush=True,
    )
    return r


def milvus_rows(
    uri: str, x: np.ndarray, q: np.ndarray, true_d: np.ndarray, k: int, nlist: int, repeat: int
) -> tuple[list[dict[str, Any]], dict[str, float]]:
    index = create_index(
        f"milvus:{uri}",
        64,
        collection=f"bench_ivf_{os.getpid()}",
        index_type="BIN_IVF_FLAT",
        nlist=nlist,
        timeout=120.0,
    )
    t0 = time.perf_counter()
    for lo in range(0, x.shape[0], 100_000):
        index.add(x[lo : lo + 100_000], np.arange(lo, min(lo + 100_000, x.shape[0])))
    insert_s = time.perf_counter() - t0
    # seal the segments and wait for the IVF index on them (growing segments are scanned)
    t0 = time.perf_counter()
    client = index._connected()
    client.flush(index.collection, timeout=600)
    while True:
        info = client.describe_index(index.collection, "code")
        if int(info.get("indexed_rows", 0)) >= x.shape[0] and not info.get("pending_index_rows"):
            break
        time.sleep(1.0)
    # reload, so that the query node serves the indexed segments (not the brute-force copies it
    # searched while they were growing)
    client.release_collection(index.collection, timeout=600)
    client.load_collection(index.collection, timeout=600)
    build_s = time.perf_counter() - t0
    rows = []
    for nprobe in [p for p in NPROBES if p <= nlist]:
        index.nprobe = nprobe
        index.search(q[:8], k)  # warm
        seconds, (d, _) = timed(lambda: index.search(q, k), repeat)
        rows.append(
            row(f"milvus BIN_IVF_FLAT {nlist}", nprobe, seconds, q.shape[0], recall_at_k(true_d, d))
        )
    client.drop_collection(index.collection)
    index.close()
    return rows, {"insert_s": round(insert_s, 2), "flush_and_index_s": round(build_s, 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-n", type=int, default=1_000_000, help="database codes")
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--centres", type=int, default=4096)
    p.add_argument("--flips", type=int, default=6, help="bits flipped from the centre")
    p.add_argument("--nlist", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--uri", help="a running Milvus server (default: start one locally)")
    p.add_argument("--no-milvus", action="store_true", help="skip the Milvus server rows")
    p.add_argument("--quick", action="store_true", help="100k codes, 200 queries")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ivf_recall.json"))
    args = p.parse_args()
    if args.quick:
        args.n, args.queries = min(args.n, 100_000), min(args.queries, 200)
    numba.set_num_threads(1)
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    centres = rng.integers(0, 2**63, (args.centres, 1), dtype=np.uint64)
    x = clustered(rng, centres, args.n, args.flips)
    q = clustered(rng, centres, args.queries, args.flips)
    k = args.k
    print(f"{args.n:,} x 64-bit codes ({args.centres} centres, {args.flips} flipped bits), "
          f"{args.queries} queries, k = {k}", flush=True)  # fmt: skip
    print(f"{'index':<26} {'nprobe':>6} {'recall@' + str(k):>9} {'queries/s':>11}", flush=True)

    flat = HammingIndex(64)
    flat.add(x)
    flat.search(q[:4], k)
    seconds, (true_d, _) = timed(lambda: flat.search(q, k), args.repeat)
    rows = [row("flat (exact)", None, seconds, args.queries, 1.0)]
    mih = MultiIndexHashing(64)
    mih.add(x)
    mih.search(q[:4], k)
    seconds, (d, _) = timed(lambda: mih.search(q, k), args.repeat)
    rows.append(row("mih (exact)", None, seconds, args.queries, recall_at_k(true_d, d)))

    quantizer = faiss.IndexBinaryFlat(64)
    ivf = faiss.IndexBinaryIVF(quantizer, 64, args.nlist)
    t0 = time.perf_counter()
    ivf.train(x[rng.permutation(args.n)[: min(args.n, 100 * args.nlist)]])
    ivf.add(x)
    faiss_build_s = time.perf_counter() - t0
    for nprobe in [n for n in NPROBES if n <= args.nlist]:
        ivf.nprobe = nprobe
        seconds, (d, _) = timed(lambda: ivf.search(q, k), args.repeat)
        rows.append(row(f"faiss IndexBinaryIVF {args.nlist}", nprobe, seconds, args.queries,
                        recall_at_k(true_d, d.astype(np.int64))))  # fmt: skip

    milvus: dict[str, Any] = {}
    if not args.no_milvus:
        server = None
        uri = args.uri
        if uri is None:
            from deephash.index.milvus_server import LocalMilvusServer

            server = LocalMilvusServer(tempfile.mkdtemp(prefix="bench-ivf-milvus-"))
            server.start()
            uri = server.uri
        try:
            milvus_out, milvus = milvus_rows(uri, x, q, true_d, k, args.nlist, args.repeat)
            rows += milvus_out
        finally:
            if server is not None:
                server.stop()
        milvus["server"] = "local milvus 2.3.5 standalone (pip milvus)" if server else uri
    out = {
        "benchmark": "ivf_recall",
        "n": args.n,
        "queries": args.queries,
        "k": k,
        "centres": args.centres,
        "flips": args.flips,
        "nlist": args.nlist,
        "recall": "tie-aware recall@k against the flat index",
        "threads_in_process": 1,
        "faiss_train_add_s": round(faiss_build_s, 2),
        "milvus": milvus,
        "rows": rows,
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
