"""What re-ranking costs per query on a 60,000-item collection, and what it finds there.

Builds a collection of the run's database split (the 60,000 Fashion-MNIST training images) with
descriptors (``--descriptor``), then, one query at a time as the server searches, times
``Collection.search`` at k = 10 by Hamming distance alone and in two stages (the k' nearest codes
re-ranked), interleaved, on ``--queries`` test images (not in the collection): the difference is
what re-ranking adds (the larger Hamming top-k' and the descriptor scoring). Also reports the share
of exact copies and JPEG q75 copies of stored items whose source comes first, for each k'.
Writes benchmarks/results/rerank.json.

    python benchmarks/bench_rerank.py --run runs/best-hash-48
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from deephash.data.copies import apply_copy_transform
from deephash.training import recipe
from deephash.training.runs import load_run

ROOT = Path(__file__).resolve().parents[1]


def average_precisions(
    order: np.ndarray, db_labels: np.ndarray, q_labels: np.ndarray
) -> np.ndarray:
    """AP over full rankings: order int (nq, n) database rows, best first."""
    rel = db_labels[order] == q_labels[:, None]
    hits = np.cumsum(rel, axis=1)
    ranks = np.arange(1, order.shape[1] + 1)
    total = rel.sum(1)
    ap = (rel * hits / ranks).sum(1) / np.maximum(total, 1)
    return np.where(total > 0, ap, 0.0)


def reranked_map(
    col: object,
    q_codes: np.ndarray,
    q_desc: np.ndarray,
    q_labels: np.ndarray,
    db_labels: np.ndarray,
    candidates: int,
    chunk: int = 250,
) -> tuple[float, float]:
    """(mAP@all of the Hamming ranking, mAP@all of the final ranking): the k' nearest codes
    re-ranked by descriptor, then every other item by (Hamming distance, id)."""
    from deephash.codes import hamming_distance_matrix

    codes, ids = col.codes, col.ids  # type: ignore[attr-defined]
    n = len(ids)
    assert np.array_equal(ids, np.arange(n))
    ham_ap, final_ap = [], []
    for s in range(0, len(q_codes), chunk):
        ham = hamming_distance_matrix(q_codes[s : s + chunk], codes).astype(np.int64)
        order = np.argsort(ham * n + np.arange(n), axis=1)  # (distance, id)
        ham_ap.append(average_precisions(order, db_labels, q_labels[s : s + chunk]))
        hits = col.search(  # type: ignore[attr-defined]
            q_codes[s : s + chunk],
            candidates,
            descriptors=q_desc[s : s + chunk],
            candidates=candidates,
        )
        top = np.array([[h.id for h in row] for row in hits])
        assert np.array_equal(np.sort(top, 1), np.sort(order[:, :candidates], 1))
        order[:, :candidates] = top
        final_ap.append(average_precisions(order, db_labels, q_labels[s : s + chunk]))
    return float(np.concatenate(ham_ap).mean()), float(np.concatenate(final_ap).mean())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=str(ROOT / "runs/best-hash-48"), help="hashing run")
    p.add_argument("--descriptor", default="early-stages")
    p.add_argument("--backend", default="mih", choices=["mih", "flat"])
    p.add_argument("--candidates", type=int, nargs="+", default=[1024, 2048, 4096, 8192])
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--map", action="store_true", help="also mAP@all of the final ranking")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/rerank.json"))
    args = p.parse_args()

    from bench_copies import as_rgb, build_collection  # this folder is on sys.path

    run = load_run(args.run)
    data = recipe.load_data(run.config)
    db = np.ascontiguousarray(data.database.images)
    queries = np.ascontiguousarray(data.query.images[: args.queries])
    tmp = Path(tempfile.mkdtemp(prefix="bench-rerank-"))
    out: dict[str, object] = {
        "benchmark": "rerank",
        "run": str(args.run),
        "items": len(db),
        "descriptor": args.descriptor,
        "backend": args.backend,
        "k": args.k,
        "queries": len(queries),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
    }
    try:
        t0 = time.time()
        col = build_collection(tmp / "col", Path(args.run), db, args.descriptor, 4096, args.backend)
        out["build_s"] = round(time.time() - t0, 1)
        out["descriptor_dim"] = col.descriptor_dim
        codes, desc = col.encode_with_descriptors(as_rgb(queries))
        assert desc is not None
        for i in range(20):  # warm up (numba compilation, caches)
            col.search(codes[i : i + 1], args.k)
            col.search(codes[i : i + 1], args.k, descriptors=desc[i : i + 1])
        timing: dict[str, dict[str, float]] = {}
        samples: dict[str, list[float]] = {"hamming": []}
        samples.update({f"rerank_{kp}": [] for kp in args.candidates})
        for _ in range(args.repeats):
            for i in range(len(queries)):
                q, d = codes[i : i + 1], desc[i : i + 1]
                t = time.perf_counter()
                col.search(q, args.k)
                samples["hamming"].append(time.perf_counter() - t)
                for kp in args.candidates:
                    t = time.perf_counter()
                    col.search(q, args.k, descriptors=d, candidates=kp)
                    samples[f"rerank_{kp}"].append(time.perf_counter() - t)
        for name, vals in samples.items():
            ms = np.asarray(vals) * 1e3
            timing[name] = {
                "mean_ms": float(ms.mean()),
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
            }
        base = timing["hamming"]
        for kp in args.candidates:
            t = timing[f"rerank_{kp}"]
            t["added_mean_ms"] = t["mean_ms"] - base["mean_ms"]
            t["added_p50_ms"] = t["p50_ms"] - base["p50_ms"]
        out["timing"] = timing
        # does the source come first among 60,000? (exact and JPEG q75 copies of stored items)
        rng = np.random.default_rng(0)
        src = np.sort(rng.choice(len(db), 1000, replace=False))
        found: dict[str, dict[str, float]] = {}
        for kind in ("exact", "jpeg-q75"):
            qc, qd = col.encode_with_descriptors(as_rgb(apply_copy_transform(kind, db[src], 1)))
            row = {"codes": float(np.mean([h[0].id == s for h, s in zip(col.search(qc, 1), src)]))}
            for kp in args.candidates:
                hits = col.search(qc, 1, descriptors=qd, candidates=kp)
                row[f"rerank_{kp}"] = float(np.mean([h[0].id == s for h, s in zip(hits, src)]))
            found[kind] = row
        out["source_first"] = found
        if args.map:  # every test image queries the 60,000 (the standard protocol)
            t1 = time.time()
            all_q = np.ascontiguousarray(data.query.images)
            qc, qd = col.encode_with_descriptors(as_rgb(all_q))
            maps = {}
            for kp in args.candidates:
                ham_map, final_map = reranked_map(
                    col, qc, qd, data.query.labels, data.database.labels, kp
                )
                maps[str(kp)] = {"hamming_map": ham_map, "reranked_map": final_map}
                print(f"k'={kp}: mAP@all Hamming {ham_map:.4f}, re-ranked {final_map:.4f}")
            out["map_at_all"] = maps
            out["map_s"] = round(time.time() - t1, 1)
        col.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, t in out["timing"].items():  # type: ignore[attr-defined]
        print(name, {k: round(v, 3) for k, v in t.items()})
    print("source first:", json.dumps(out["source_first"]))
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
