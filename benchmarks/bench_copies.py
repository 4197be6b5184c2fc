"""Copy detection on a collection: is the source of a transformed copy found first?

The collection holds a split of the run's protocol (default: the 10,000 Fashion-MNIST test images,
``--split query``), added through ``Collection.add_images`` like any other images. Queries are
copies of ``--sources`` of its items (seeded; all by default) under every transform of
:mod:`deephash.data.copies`. On the very same query pixels it compares:

- ``ours``: the collection's search (Hamming candidates re-ranked by the stored descriptor; with
  a binary descriptor, the nearest codes and the nearest descriptors ranked together);
- ``codes``: the same collection's codes alone (Hamming distance, ties by id);
- ``float``: exhaustive search over the same descriptors (cosine, or Hamming for a binary one
  such as ``instance``; ties by id): the upper bound of re-ranking (no candidate can be missed);
- ``phash``, ``dhash``: imagehash's perceptual hashes (64 bits, no training), Hamming distance,
  ties by id (the peers).

Per method and transform: R@1, R@10, MRR of the source (top 100 returned) and µAP
(:mod:`deephash.metrics.copy_detection`). Writes JSON (default benchmarks/results/copies.json)
and prints a markdown table.

    python benchmarks/bench_copies.py --run runs/best-hash-48
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from deephash.codes import pack_bits
from deephash.collection import Collection
from deephash.data.copies import apply_copy_transform, list_copy_transforms
from deephash.index import create_index
from deephash.metrics import copy_detection_report
from deephash.training import recipe
from deephash.training.runs import load_run

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("ours", "codes", "float", "phash", "dhash")
TOP = 100  # results returned per query


def as_rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images[..., None], 3, axis=3) if images.ndim == 3 else images


def perceptual(images: np.ndarray, kind: str) -> np.ndarray:
    """imagehash pHash / dHash (64 bits) of uint8 images -> packed uint8 (n, 8)."""
    import imagehash

    fn = {"phash": imagehash.phash, "dhash": imagehash.dhash}[kind]
    bits = np.stack([fn(Image.fromarray(img)).hash.reshape(-1) for img in images])
    return pack_bits(np.where(bits, 1.0, -1.0).astype(np.float32))


def hamming_top(db: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores = -distance) of the k nearest by (distance, id)."""
    index = create_index("flat", db.shape[1] * 8)
    index.add(db)
    d, i = index.search(queries, k)
    return i, -d.astype(np.float64)


def float_top(db: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(ids, cosine scores) of the k best by (score desc, id), exhaustive."""
    ids, scores = [], []
    for s in range(0, len(queries), 1000):
        sims = queries[s : s + 1000].astype(np.float32) @ db.T.astype(np.float32)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        ids.append(order)
        scores.append(np.take_along_axis(sims, order, 1))
    return np.concatenate(ids), np.concatenate(scores)


def hits_arrays(hits: list[list[Any]], k: int, use_score: bool) -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((len(hits), k), -1, np.int64)
    sc = np.full((len(hits), k), np.nan)
    for r, row in enumerate(hits):
        for c, h in enumerate(row[:k]):
            ids[r, c] = h.id
            sc[r, c] = h.score if use_score else -h.distance
    return ids, sc


def build_collection(
    folder: Path,
    run: Path,
    images: np.ndarray,
    rerank: str,
    candidates: int | None = None,
    backend: str = "mih",
    descriptor_candidates: int | None = None,
) -> Collection:
    """A collection of ``images`` uint8 (n, H, W), added as PNG; None counts: its defaults."""
    col = Collection.create(
        folder,
        run,
        backend=backend,
        rerank=rerank,
        candidates=candidates,
        descriptor_candidates=descriptor_candidates,
        load_model=True,
    )
    for s in range(0, len(images), 1000):
        pngs = []
        for img in images[s : s + 1000]:
            buf = io.BytesIO()
            Image.fromarray(img).save(buf, "PNG")
            pngs.append(buf.getvalue())
        col.add_images(pngs)
    return col


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=str(ROOT / "runs/best-hash-48"), help="hashing run")
    p.add_argument("--split", default="query", choices=["query", "validation", "database"])
    p.add_argument("--sources", type=int, default=0, help="queried items (0: all)")
    p.add_argument("--descriptor", default="early-stages")
    p.add_argument(
        "--candidates", type=int, default=None, help="code candidates (default: the collection's)"
    )
    p.add_argument(
        "--descriptor-candidates",
        type=int,
        default=None,
        help="descriptor candidates of a binary descriptor such as instance (default: the "
        "collection's)",
    )
    p.add_argument("--backend", default="mih", choices=["mih", "flat"])
    p.add_argument("--transforms", nargs="+", default=list_copy_transforms())
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/copies.json"))
    args = p.parse_args()

    run = load_run(args.run)
    data = getattr(recipe.load_data(run.config), args.split)
    db = np.ascontiguousarray(data.images)
    n = len(db)
    rng = np.random.default_rng(0)
    src = np.arange(n) if not args.sources else np.sort(rng.choice(n, args.sources, replace=False))
    tmp = Path(tempfile.mkdtemp(prefix="bench-copies-"))
    t0 = time.time()
    results: dict[str, dict[str, dict[str, float]]] = {m: {} for m in args.methods}
    timing: dict[str, float] = {}
    try:
        col = build_collection(
            tmp / "col",
            Path(args.run),
            db,
            args.descriptor,
            args.candidates,
            args.backend,
            args.descriptor_candidates,
        )
        timing["build_s"] = round(time.time() - t0, 1)
        assert col.ids.tolist() == list(range(n))
        db_desc = col.descriptors
        peers = {k: perceptual(db, k) for k in ("phash", "dhash") if k in args.methods}
        for t in args.transforms:
            t1 = time.time()
            q = apply_copy_transform(t, db[src], seed=1)
            codes, desc = col.encode_with_descriptors(as_rgb(q))
            got: dict[str, tuple[np.ndarray, np.ndarray]] = {}
            if "ours" in args.methods:
                ts = time.perf_counter()
                got["ours"] = hits_arrays(col.search(codes, TOP, descriptors=desc), TOP, True)
                timing[f"ours_{t}_ms_per_query"] = (time.perf_counter() - ts) * 1e3 / len(src)
            if "codes" in args.methods:
                got["codes"] = hits_arrays(col.search(codes, TOP), TOP, False)
            if "float" in args.methods:
                assert db_desc is not None and desc is not None
                exhaustive = hamming_top if db_desc.dtype == np.uint8 else float_top
                got["float"] = exhaustive(db_desc, desc, TOP)
            for kind, db_hash in peers.items():
                got[kind] = hamming_top(db_hash, perceptual(q, kind), TOP)
            for m, (ids, sc) in got.items():
                results[m][t] = copy_detection_report(ids, sc, src).to_dict()
            line = " ".join(f"{m} {results[m][t]['recall_at_1']:.3f}" for m in got)
            print(f"{t:16s} R@1: {line} ({time.time() - t1:.0f}s)", flush=True)
        col.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print("| transform | " + " | ".join(args.methods) + " |")
    print("|---|" + "---|" * len(args.methods))
    for t in args.transforms:
        cells = []
        for m in args.methods:
            r = results[m][t]
            cells.append(
                f"{r['recall_at_1']:.3f} / {r['recall_at_10']:.3f} / {r['mrr']:.3f} / "
                f"{r['micro_ap']:.3f}"
            )
        print(f"| {t} | " + " | ".join(cells) + " |")
    print("(each cell: R@1 / R@10 / MRR / µAP)")
    out = {
        "benchmark": "copies",
        "run": str(args.run),
        "split": args.split,
        "items": n,
        "sources": len(src),
        "descriptor": args.descriptor,
        "candidates": col.candidates,
        "descriptor_candidates": col.descriptor_candidates,
        "bytes_per_item": col.codes.shape[1] + (0 if db_desc is None else db_desc.nbytes // n),
        "backend": args.backend,
        "top": TOP,
        "results": results,
        "timing": timing,
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "python": platform.python_version(),
        },
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
