"""Speed and memory of the deephash Hamming indexes next to faiss-cpu's IndexBinaryFlat (same codes,
k, threads).

    python benchmarks/bench_index.py              # 1M (64/128/256 bits) and 10M x 64-bit codes
    python benchmarks/bench_index.py --quick      # smoke run: 100k and 1M codes
    python benchmarks/bench_index.py --widths --sizes 100000000 --nq-faiss 100   # 100M x 64-bit
    python benchmarks/bench_index.py --emulate avx2   # the AVX2 kernels on an AVX-512 machine

Cases: (1) flat and mih vs faiss flat on 1M codes of 64, 128 and 256 bits; (2) 10M x 64-bit codes
(``--sizes``); each random and clustered ("learned-like": 50 centres, a few flipped bits
each, queries drawn the same way). Distances must match faiss exactly; ids are compared exactly
(faiss scans in position order = id order, so ties agree). For the large cases, the resident
memory growth of building each index (add + first search, the caller's array excluded) is measured
in a child process per index, with the build time. The "popcount limit" is the q/s of a bare
XOR + popcount + min loop over the same number of cache-resident codes on the same threads: the
most a scan can reach on this CPU. Writes benchmarks/results/index.json (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np

from deephash._numba import popcount64
from deephash.index import HammingIndex, MultiIndexHashing, kernel_target


def random_codes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    return rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)


def clustered_codes(
    rng: np.random.Generator, centres: np.ndarray, n: int, flips: int
) -> np.ndarray:
    """Each code is a random centre with ``flips`` random bits flipped (words view, fast)."""
    words = centres[rng.integers(0, centres.shape[0], n)].copy()
    rows = np.arange(n)
    nbits = words.shape[1] * 64
    for _ in range(flips):
        pos = rng.integers(0, nbits, n)
        words[rows, pos // 64] ^= np.left_shift(np.uint64(1), (pos % 64).astype(np.uint64))
    return words.view(np.uint8)


def make_data(kind: str, n: int, nq: int, bits: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return random_codes(rng, n, bits), random_codes(rng, nq, bits)
    centres = rng.integers(0, 2**63, (50, bits // 64), dtype=np.uint64)
    flips = max(2, bits // 16)
    return clustered_codes(rng, centres, n, flips), clustered_codes(rng, centres, nq, flips)


def timed(fn: Any, repeat: int = 1) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def compare(ours: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray]) -> dict:
    (d1, i1), (d2, i2) = ours, ref
    dist_equal = bool(np.array_equal(d1, d2.astype(np.int32)))
    ids_equal = bool(np.array_equal(i1, i2))
    sets_equal = ids_equal
    if dist_equal and not ids_equal:
        # ties at the k-th distance may legitimately differ; compare ids below it as sets
        kth = d1[:, -1:]
        below1 = np.where(d1 < kth, i1, -2)
        below2 = np.where(d2 < kth, i2, -2)
        sets_equal = bool(np.array_equal(np.sort(below1, 1), np.sort(below2, 1)))
    return {"distances_equal": dist_equal, "ids_equal": ids_equal, "ids_equal_as_sets": sets_equal}


@numba.njit(parallel=True, cache=True)
def _popcount_limit_kernel(q: Any, x: Any, out: Any) -> None:  # pragma: no cover - jit
    # per query, the smallest distance over x: XOR + popcount + min and nothing else, four queries
    # per pass (each code loaded once), x cache-resident
    for b in numba.prange(q.shape[0] // 4):
        i = 4 * b
        m0 = m1 = m2 = m3 = 1 << 30
        a0, a1, a2, a3 = q[i, 0], q[i + 1, 0], q[i + 2, 0], q[i + 3, 0]
        for j in range(np.uint64(0), np.uint64(x.shape[0])):
            v = x[j, 0]
            m0 = min(m0, np.int64(popcount64(a0 ^ v)))
            m1 = min(m1, np.int64(popcount64(a1 ^ v)))
            m2 = min(m2, np.int64(popcount64(a2 ^ v)))
            m3 = min(m3, np.int64(popcount64(a3 ^ v)))
        out[i], out[i + 1], out[i + 2], out[i + 3] = m0, m1, m2, m3


def popcount_limit(threads: int) -> float:
    """64-bit codes compared per second by a bare XOR + popcount + min loop on ``threads``."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**63, (16384, 1), dtype=np.uint64)  # 128 KiB: cache-resident
    q = rng.integers(0, 2**63, (4096, 1), dtype=np.uint64)
    out = np.empty(q.shape[0], dtype=np.int64)
    _popcount_limit_kernel(q[:8], x, out)
    t, _ = timed(lambda: _popcount_limit_kernel(q, x, out), 5)
    return q.shape[0] * x.shape[0] / t


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory_child(backend: str, kind: str, n: int, bits: int, threads: int) -> dict:
    """Build one index in this (fresh) process: resident growth per code and build time."""
    numba.set_num_threads(threads)
    x, q = make_data(kind, n, 16, bits, seed=bits + n % 997)
    cls = HammingIndex if backend == "flat" else MultiIndexHashing
    warm = cls(bits)  # compile (and load numba's cache) before measuring
    warm.add(x[:5000])
    warm.search(q[:8], 10)
    del warm
    before = rss_bytes()
    t0 = time.perf_counter()
    index = cls(bits)
    index.add(x)
    t_add = time.perf_counter() - t0
    index.search(q[:1], 10)  # mih builds its tables lazily, on the first search
    t_first = time.perf_counter() - t0
    grown = rss_bytes() - before
    return {
        "backend": backend,
        "kind": kind,
        "n": n,
        "bits": bits,
        "rss_growth_bytes_per_code": grown / n,
        "add_s": t_add,
        "add_and_first_search_s": t_first,
        "num_tables": index.num_tables_ if backend == "mih" else None,
    }


def measure_memory(backend: str, kind: str, n: int, bits: int, threads: int) -> dict:
    cmd = [sys.executable, __file__, "--memory-child", backend, kind, str(n), str(bits)]
    cmd += ["--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=3600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_case(
    name: str,
    kind: str,
    n: int,
    nq: int,
    bits: int,
    k: int,
    backends: list[str],
    faiss: Any,
    nq_faiss: int,
    limit: float,
    memory: bool,
    threads: int,
) -> dict:
    x, q = make_data(kind, n, nq, bits, seed=bits + n % 997)
    res: dict[str, Any] = {"case": name, "kind": kind, "n": n, "nq": nq, "bits": bits, "k": k}
    fx = faiss.IndexBinaryFlat(bits)
    fx.add(x)
    res["faiss_flat_bytes_per_code"] = bits / 8
    indexes: dict[str, Any] = {}
    for b in backends:
        index = HammingIndex(bits) if b == "flat" else MultiIndexHashing(bits)
        index.add(x[:1000])
        index.search(q[:4], k)  # compile (cached on disk after the first run)
        index.reset()
        t_build, _ = timed(lambda index=index: index.add(x))
        if b == "mih":
            t_tab, _ = timed(index._build)  # tables are built lazily; time them here
            t_build += t_tab
            res["mih_num_tables"] = index.num_tables_
        res[f"{b}_build_s"] = t_build
        indexes[b] = index
    # Interleave faiss and ours, best of `repeat`: the machine is shared, so load drifts.
    repeat = 3 if n <= 10**6 else 2
    qf = q[: min(nq, nq_faiss)]
    best = dict.fromkeys(["faiss_flat", *backends], float("inf"))
    outs: dict[str, Any] = {}
    for r in range(repeat):
        if r == 0 or n <= 10**7:
            t, outs["faiss_flat"] = timed(lambda: fx.search(qf, k))
            best["faiss_flat"] = min(best["faiss_flat"], t * nq / qf.shape[0])
        for b, index in indexes.items():
            t, outs[b] = timed(lambda index=index: index.search(q, k))
            best[b] = min(best[b], t)
    res["faiss_flat_search_s"] = best["faiss_flat"]
    res["faiss_nq"] = int(qf.shape[0])
    res["repeats"] = repeat
    res["popcount_limit_qps"] = limit / n / (bits // 64)  # a b-bit code is b / 64 words
    for b in backends:
        res[f"{b}_search_s"] = best[b]
        res[f"{b}_qps"] = nq / best[b]
        res[f"{b}_speedup_vs_faiss_flat"] = best["faiss_flat"] / best[b]
        d, i = outs[b]
        res[f"{b}_vs_faiss"] = compare((d[: qf.shape[0]], i[: qf.shape[0]]), outs["faiss_flat"])
        if memory:
            mem = measure_memory(b, kind, n, bits, threads)
            res[f"{b}_rss_growth_bytes_per_code"] = mem["rss_growth_bytes_per_code"]
            res[f"{b}_build_s"] = mem["add_and_first_search_s"]
    return res  # the codes and indexes are freed here, before the next case


def fmt_row(r: dict, backends: list[str]) -> str:
    line = (
        f"{r['case']:12s} {r['kind']:9s} n={r['n']:>11,d} bits={r['bits']:3d} "
        f"faiss={r['faiss_flat_search_s']:.3f}s limit={r['popcount_limit_qps']:,.0f} q/s"
    )
    for b in backends:
        same = r[f"{b}_vs_faiss"]["distances_equal"] and r[f"{b}_vs_faiss"]["ids_equal"]
        mem = r.get(f"{b}_rss_growth_bytes_per_code")
        line += (
            f"  {b}={r[f'{b}_search_s']:.3f}s ({r[f'{b}_qps']:,.0f} q/s, "
            f"x{r[f'{b}_speedup_vs_faiss_flat']:.1f}, build {r[f'{b}_build_s']:.2f}s"
            + (f", {mem:.1f} B/code" if mem is not None else "")
            + f", same={same})"
        )
    return line


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller databases (smoke run)")
    parser.add_argument("--nq", type=int, default=1000, help="queries per case")
    parser.add_argument("--nq-faiss", type=int, default=1000, help="queries for faiss (scaled)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--threads", type=int, default=numba.get_num_threads())
    parser.add_argument(
        "--widths", type=int, nargs="*", default=[64, 128, 256], help="code widths on 1M codes"
    )
    parser.add_argument(
        "--sizes", type=int, nargs="*", help="64-bit database sizes with memory (default 10M)"
    )
    parser.add_argument("--emulate", choices=["avx2"], help="build the kernels for AVX2")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "index.json"))
    parser.add_argument("--memory-child", nargs=4, metavar=("BACKEND", "KIND", "N", "BITS"))
    args = parser.parse_args()

    if args.memory_child:
        b, kind, n, bits = args.memory_child
        print(json.dumps(memory_child(b, kind, int(n), int(bits), args.threads)))
        return
    if args.emulate and os.environ.get("NUMBA_CPU_NAME") != "haswell":
        import llvmlite.binding as ll

        feats = ll.get_host_cpu_features().flatten().split(",")
        off = ("avx512", "avx10", "amx")
        feats = [("-" + f[1:]) if f[1:].startswith(off) else f for f in feats]
        env = dict(os.environ, NUMBA_CPU_NAME="haswell", NUMBA_CPU_FEATURES=",".join(feats))
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    import faiss

    numba.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    small, large = (100_000, 1_000_000) if args.quick else (1_000_000, 10_000_000)
    limit = popcount_limit(args.threads)
    target = kernel_target()
    print(
        f"kernels: {target}; popcount limit {limit / 1e9:.2f} G codes/s on {args.threads} threads"
    )
    cases: list[tuple[str, str, int, int, list[str], bool]] = []
    for bits in args.widths:
        for kind in ("random", "clustered"):
            cases.append((f"flat_{bits}", kind, small, bits, ["flat", "mih"], False))
    for n in [large] if args.sizes is None else args.sizes:
        for kind in ("random", "clustered"):
            cases.append(("scale", kind, n, 64, ["flat", "mih"], True))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "kernel_target": target,
        "emulated": args.emulate,
        "popcount_limit_codes_per_s": limit,
        "numba": numba.__version__,
        "faiss": faiss.__version__,
        "quick": args.quick,
        "note": "best of interleaved repeats per case; faiss on --nq-faiss queries, time scaled",
    }
    results: list[dict] = []
    for name, kind, n, bits, backends, memory in cases:
        r = run_case(name, kind, n, args.nq, bits, args.k, backends, faiss, args.nq_faiss,
                     limit, memory, args.threads)  # fmt: skip
        results.append(r)
        print(fmt_row(r, backends), flush=True)
        # written after every case, so a long run that fails late keeps what it measured
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
        os.replace(tmp, out)
    print(f"wrote {out}")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
