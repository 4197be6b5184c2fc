"""Search by image with codes and instance bits: does its cost stay flat as the collection grows?

A run with instance bits (``instance_bits`` > 0) gives every image a class code and a binary
descriptor (the sign of the instance outputs, 8 bytes for 64 bits). This puts the codes and
descriptors of ``--items`` images into a :class:`~deephash.index.binary_rerank.BinaryRerankIndex`
(two ``mih`` indexes; ``--candidates`` nearest codes plus ``--descriptor-candidates`` nearest
descriptors; copies within ``--copy-radius`` first, then by code distance, as a collection ranks) and times one query at a time,
what a search by upload costs beyond the encoder. Sizes (``--sizes``): the first items are the
protocol's database images (60,000 Fashion-MNIST training images); larger sizes add seeded
copy-like views of the 70,000 training and test images (``deephash.data.copy_views.CopyViews``,
as the instance term trains on) until the size is reached, so a class holds ~n / 10 items whose
class codes tie.

Queries: ``--queries`` stored database images (seeded), searched with their own pixels and with a
JPEG q75 copy; R@1 counts the stored item first. A sample of queries is checked against brute
force over the same candidate union. ``--collection`` also times the collection's path (what
``deephash serve`` and ``deephash collection search`` call): a collection (kind ``instance``,
``mih``) holding the same items, searched one query at a time by ``Collection.search`` with the
query's code and descriptor. ``--cache FILE`` keeps the encodings (the encoder takes minutes at
1,000,000) in an ``.npz`` for the next run with the same run, largest size and queries. Writes
JSON (default ``benchmarks/results/instance_search.json``).

    python benchmarks/bench_instance_search.py --run runs/best-hash-48-inst \
        --sizes 60000 1000000 --collection --cache /tmp/instance-search-cache.npz
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

import instance_probe  # this folder is on sys.path when run
from deephash.codes import hamming_distance_matrix
from deephash.collection import Collection
from deephash.collection.items import NewItem
from deephash.data.copy_views import CopyViews
from deephash.index import create_index
from deephash.index.binary_rerank import BinaryRerankIndex
from deephash.training import recipe
from deephash.training.runs import load_run

ROOT = Path(__file__).resolve().parents[1]


def encode_parts(run: Any, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Packed class codes (n, bits / 8) and packed instance bits (n, instance_bits / 8)."""
    codes, inst = instance_probe.encode_parts(run, images, batch=1024)
    if inst is None:
        raise SystemExit("this run has no instance bits (instance_bits: 0): nothing to measure")
    return codes, inst


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))


def augmented_parts(run: Any, pool: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Codes and instance bits of ``n`` seeded copy-like views of images drawn from ``pool``."""
    rng = np.random.default_rng(seed)
    views = CopyViews()
    codes, inst = [], []
    for s in range(0, n, 20_000):
        m = min(20_000, n - s)
        picked = pool[rng.integers(0, len(pool), m)]
        c, i = encode_parts(run, views(picked, rng))
        codes.append(c)
        inst.append(i)
        print(f"  views {s + m:,} / {n:,}", flush=True)
    return np.concatenate(codes), np.concatenate(inst)


def build(codes: np.ndarray, inst: np.ndarray, args: argparse.Namespace) -> BinaryRerankIndex:
    index = BinaryRerankIndex(
        create_index("mih", codes.shape[1] * 8),
        create_index("mih", inst.shape[1] * 8),
        candidates=args.candidates,
        descriptor_candidates=args.descriptor_candidates,
        copy_radius=None if args.copy_radius < 0 else args.copy_radius,
    )
    index.add(codes, inst)
    return index


def brute_force_first(
    codes: np.ndarray,
    inst: np.ndarray,
    q: np.ndarray,
    qi: np.ndarray,
    union: np.ndarray,
    copy_radius: int,
) -> int:
    """The first of ``union`` by hand: copies (descriptor distance within ``copy_radius``; -1:
    all) by (descriptor distance, code distance, id), then the others by (code distance,
    descriptor distance, id)."""
    dd = hamming_distance_matrix(qi[None], inst[union])[0].astype(np.int64)
    dc = hamming_distance_matrix(q[None], codes[union])[0].astype(np.int64)
    copy = dd <= (64 * inst.shape[1] if copy_radius < 0 else copy_radius)
    first, second = np.where(copy, dd, dc), np.where(copy, dc, dd)
    return int(union[np.lexsort((union, second, first, ~copy))[0]])


def collection_of(
    folder: Path, codes: np.ndarray, inst: np.ndarray, args: argparse.Namespace
) -> Collection:
    """A collection (kind ``instance``, ``mih``) in ``folder`` holding ``codes`` and ``inst`` as
    items 0 .. n - 1 (no image files: only the search is timed)."""
    col = Collection.create(
        folder,
        args.run,
        rerank="instance",
        candidates=args.candidates,
        descriptor_candidates=args.descriptor_candidates,
        copy_radius=None if args.copy_radius < 0 else args.copy_radius,
    )
    step = 100_000
    for s in range(0, len(codes), step):
        col.add([NewItem(c, descriptor=d) for c, d in zip(codes[s : s + step], inst[s : s + step])])
    return col


def timed_collection(
    codes: np.ndarray,
    inst: np.ndarray,
    queries: dict[str, tuple[np.ndarray, np.ndarray]],
    picked: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """:func:`timed_paths` of ``Collection.search`` in a temporary collection of the items."""
    folder = Path(tempfile.mkdtemp(prefix="bench-instance-search-"))
    try:
        t0 = time.perf_counter()
        with collection_of(folder / "col", codes, inst, args) as col:
            built = {"build_s": round(time.perf_counter() - t0, 2)}
            return {
                **built,
                **timed_paths(collection_search(col, args.k), queries, picked, args.repeats),
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def index_search(index: BinaryRerankIndex, k: int) -> Any:
    """One query's first result id by :meth:`BinaryRerankIndex.search`."""
    return lambda q, qi: int(index.search(q, qi, k).ids[0, 0])


def collection_search(col: Collection, k: int) -> Any:
    """One query's first result id by :meth:`Collection.search` (-1 for none)."""

    def first(q: np.ndarray, qi: np.ndarray) -> int:
        hits = col.search(q, k, descriptors=qi)[0]
        return hits[0].id if hits else -1

    return first


def timed_paths(
    search: Any, queries: dict[str, tuple[np.ndarray, np.ndarray]], picked: np.ndarray, repeats: int
) -> dict[str, Any]:
    """Latency and R@1 (the stored item first) of ``search`` for each named query set."""
    out = {}
    for name, (q, qi) in queries.items():
        timed = time_queries(search, q, qi, repeats)
        first = timed.pop("first")
        out[name] = {**timed, "source_first": float((first == picked).mean())}
    return out


def time_queries(search: Any, q: np.ndarray, qi: np.ndarray, repeats: int) -> dict[str, Any]:
    """Per-query latency of ``search(q (1, nbytes), qi (1, dbytes)) -> first id`` (one query
    per call) and the first result of each query."""
    first = np.full(len(q), -1, dtype=np.int64)
    times = []
    for _ in range(repeats):
        for j in range(len(q)):
            t0 = time.perf_counter()
            got = search(q[j : j + 1], qi[j : j + 1])
            times.append(time.perf_counter() - t0)
            first[j] = got
    ms = np.asarray(times) * 1e3
    return {
        "mean_ms": float(ms.mean()),
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "first": first,
    }


def check_against_brute_force(
    index: BinaryRerankIndex,
    codes: np.ndarray,
    inst: np.ndarray,
    q: np.ndarray,
    qi: np.ndarray,
    args: argparse.Namespace,
) -> int:
    """For a few queries: the index's first result equals brute force over its candidate union."""
    checked = 0
    for j in range(min(20, len(q))):
        dc = hamming_distance_matrix(q[j : j + 1], codes)[0]
        dd = hamming_distance_matrix(qi[j : j + 1], inst)[0]
        ids = np.arange(len(codes))
        by_code = ids[np.lexsort((ids, dc))[: args.candidates]]
        by_desc = ids[np.lexsort((ids, dd))[: args.descriptor_candidates]]
        union = np.union1d(by_code, by_desc)
        want = brute_force_first(codes, inst, q[j], qi[j], union, args.copy_radius)
        got = int(index.search(q[j : j + 1], qi[j : j + 1], 1).ids[0, 0])
        if got != want:
            raise SystemExit(f"query {j}: index says {got}, brute force over the union {want}")
        checked += 1
    return checked


def final_ranking_map(
    index: BinaryRerankIndex,
    codes: np.ndarray,
    data: Any,
    run: Any,
    chunk: int = 250,
) -> tuple[float, float]:
    """(mAP@all by Hamming distance, mAP@all of the final ranking) on the standard protocol: the
    test images query the database; the final ranking is the search's candidate union in its
    order (descriptor distance, code distance, id), then every other item by (Hamming, id)."""
    from bench_rerank import average_precisions  # this folder is on sys.path when run

    q_codes, q_inst = encode_parts(run, data.query.images)
    n = len(codes)
    width = index.candidates + index.descriptor_candidates
    ham_ap, final_ap = [], []
    for s in range(0, len(q_codes), chunk):
        ham = hamming_distance_matrix(q_codes[s : s + chunk], codes).astype(np.int64)
        key = ham * n + np.arange(n)
        order = np.argsort(key, axis=1)
        labels = data.query.labels[s : s + chunk]
        ham_ap.append(average_precisions(order, data.database.labels, labels))
        top = index.search(q_codes[s : s + chunk], q_inst[s : s + chunk], width).ids
        rows = np.nonzero(top >= 0)
        key[rows[0], top[rows]] = rows[1] - width  # the union first, in the search's order
        final_ap.append(average_precisions(np.argsort(key, axis=1), data.database.labels, labels))
    return float(np.concatenate(ham_ap).mean()), float(np.concatenate(final_ap).mean())


def encoded(
    run: Any, run_dir: str, data: Any, picked: np.ndarray, sizes: list[int], cache: str | None
) -> dict[str, np.ndarray]:
    """Codes and descriptors of max(sizes) items (database images, then seeded views) and of
    the JPEG copies of the picked ones, from ``cache`` when it holds them for the same request."""
    key = f"{Path(run_dir).resolve()}|{max(sizes)}|{picked.tolist()}"
    if cache and Path(cache).is_file():
        got = dict(np.load(cache))
        if str(got.pop("key")) == key:
            print(f"encodings from {cache}")
            return got
    db_images = data.database.images
    t0 = time.perf_counter()
    codes, inst = encode_parts(run, db_images)
    print(f"encoded {len(codes):,} database images in {time.perf_counter() - t0:.1f} s")
    jpeg_q, jpeg_qi = encode_parts(run, np.stack([jpeg(img) for img in db_images[picked]]))
    if max(sizes) > len(codes):
        pool = np.concatenate([db_images, data.query.images])
        extra_c, extra_i = augmented_parts(run, pool, max(sizes) - len(codes), seed=max(sizes))
        codes, inst = np.concatenate([codes, extra_c]), np.concatenate([inst, extra_i])
    out = {"codes": codes, "inst": inst, "jpeg_q": jpeg_q, "jpeg_qi": jpeg_qi}
    if cache:
        tmp = Path(f"{cache}.tmp.npz")
        np.savez(tmp, key=np.array(key), **out)
        tmp.replace(cache)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=str(ROOT / "runs/best-hash-48"))
    p.add_argument("--sizes", type=int, nargs="+", default=[60_000, 1_000_000])
    p.add_argument("--queries", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--candidates", type=int, default=32)
    p.add_argument("--descriptor-candidates", type=int, default=32)
    p.add_argument(
        "--copy-radius", type=int, default=8, help="copies first within it (-1: descriptor first)"
    )
    p.add_argument("-k", type=int, default=10)
    p.add_argument("--map", action="store_true", help="also mAP@all of the final ranking")
    p.add_argument(
        "--collection", action="store_true", help="also time Collection.search (the served path)"
    )
    p.add_argument("--cache", default=None, help="an .npz keeping the encodings between runs")
    p.add_argument("--out", default=str(ROOT / "benchmarks/results/instance_search.json"))
    args = p.parse_args()
    torch.set_num_threads(2)
    run = load_run(args.run)
    data = recipe.load_data(run.config)
    db_images = data.database.images
    rng = np.random.default_rng(0)
    picked = np.sort(rng.choice(len(db_images), args.queries, replace=False))
    enc = encoded(run, args.run, data, picked, args.sizes, args.cache)
    codes, inst = enc["codes"], enc["inst"]
    exact_q, exact_qi = codes[picked], inst[picked]
    jpeg_q, jpeg_qi = enc["jpeg_q"], enc["jpeg_qi"]
    rows = []
    for size in sorted(args.sizes):
        c, i = codes[:size], inst[:size]
        t0 = time.perf_counter()
        index = build(c, i, args)
        build_s = time.perf_counter() - t0
        checked = check_against_brute_force(index, c, i, exact_q, exact_qi, args)
        row: dict[str, Any] = {"items": size, "build_s": round(build_s, 2), "checked": checked}
        queries = {"exact": (exact_q, exact_qi), "jpeg75": (jpeg_q, jpeg_qi)}
        row.update(timed_paths(index_search(index, args.k), queries, picked, args.repeats))
        if args.collection:
            row["collection"] = timed_collection(c, i, queries, picked, args)
        sizes = np.unique(c, axis=0, return_counts=True)[1]
        row["largest_code_bucket"] = int(sizes.max())
        row["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if args.map and size == len(db_images):
            row["map_hamming"], row["map_final"] = final_ranking_map(index, c, data, run)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {
        "run": str(args.run),
        "machine": platform.processor() or platform.machine(),
        "candidates": args.candidates,
        "descriptor_candidates": args.descriptor_candidates,
        "copy_radius": args.copy_radius,
        "k": args.k,
        "bytes_per_item": int(codes.shape[1] + inst.shape[1]),
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| items | largest code bucket | exact: ms mean / p50 / p99, first | JPEG q75: same |")
    print("|---|---|---|---|")
    for r in rows:
        for path, timed in (("index", r), ("collection", r.get("collection"))):
            if timed is None:
                continue
            e, j = timed["exact"], timed["jpeg75"]
            print(
                f"| {r['items']:,} {path} | {r['largest_code_bucket']:,} | {e['mean_ms']:.3f} / "
                f"{e['p50_ms']:.3f} / {e['p99_ms']:.3f}, {e['source_first']:.3f} | "
                f"{j['mean_ms']:.3f} / {j['p50_ms']:.3f} / {j['p99_ms']:.3f}, "
                f"{j['source_first']:.3f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
