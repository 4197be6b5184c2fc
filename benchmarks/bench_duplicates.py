"""Near-duplicate groups on planted copies: precision and recall of the pairs found.

A collection holds a split of the run's protocol (default: the 10,000 Fashion-MNIST test images)
plus one planted copy of each of ``--planted`` items (seeded), the copy transforms taken in turn
(:mod:`deephash.data.copies`). The true duplicate pairs are each (source, copy) and every pair of
pixel-identical images, closed transitively. A method's groups claim every pair inside a group;

    precision = true pairs claimed / pairs claimed,  recall = true pairs claimed / true pairs.

Methods: ``deephash collection duplicates`` (:func:`deephash.collection.duplicates.find_duplicates`)
at each ``--min-score`` (``--descriptor instance``: at each ``--max-distance`` in differing
instance bits, with no code radius unless ``--radius`` is given), and imagehash pHash (64 bits)
grouping every pair within Hamming distance t, at every t from 0 to 20 (its best threshold by F1
on this very split is reported: an optimistic peer). Choose ``--min-score`` with ``--split validation``; report with ``--split query``. Each
setting's ``seconds`` is the time of its ``find_duplicates`` call; ``--keep DIR`` keeps the
collection (to time ``deephash collection duplicates DIR``).

    python benchmarks/bench_duplicates.py --run runs/best-hash-48 --split validation
    python benchmarks/bench_duplicates.py --run runs/best-hash-48
    python benchmarks/bench_duplicates.py --run runs/best-hash-48-inst --descriptor instance
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from deephash.collection.duplicates import find_duplicates
from deephash.data.copies import apply_copy_transform, list_copy_transforms
from deephash.index import create_index
from deephash.training import recipe
from deephash.training.runs import load_run

ROOT = Path(__file__).resolve().parents[1]


class Groups:
    """Union-find over 0..n-1."""

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n)

    def root(self, i: int) -> int:
        p = self.parent
        while p[i] != i:
            p[i] = p[p[i]]
            i = int(p[i])
        return i

    def join(self, i: int, j: int) -> None:
        a, b = self.root(i), self.root(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)

    def labels(self) -> np.ndarray:
        return np.array([self.root(i) for i in range(len(self.parent))])


def pair_scores(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision, recall, F1 of the pairs inside the groups ``pred`` (group label per item)
    against those of ``truth``, counted without listing the pairs."""

    def pairs_in(labels: np.ndarray) -> int:
        _, counts = np.unique(labels, return_counts=True)
        return int((counts * (counts - 1) // 2).sum())

    claimed = pairs_in(pred)
    true = pairs_in(truth)
    both = pairs_in(pred.astype(np.int64) * (len(truth) + 1) + truth)  # same group in both
    p = both / claimed if claimed else 1.0
    r = both / true if true else 1.0
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "pairs_claimed": claimed,
        "true_pairs": true,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=str(ROOT / "runs/best-hash-48"), help="hashing run")
    p.add_argument("--split", default="query", choices=["query", "validation"])
    p.add_argument("--planted", type=int, default=550, help="items given a planted copy")
    p.add_argument("--radius", type=int, help="code radius (default: the command's)")
    p.add_argument(
        "--min-score",
        type=float,
        nargs="+",
        default=[0.95, 0.97, 0.98, 0.985, 0.99, 0.993, 0.995, 0.997],
    )
    p.add_argument(
        "--max-distance",
        type=int,
        nargs="+",
        default=list(range(9)),
        help="differing bits tried (--descriptor instance; then --min-score is not used)",
    )
    p.add_argument("--neighbours", type=int, nargs="+", default=[1, 20])
    p.add_argument("--descriptor", default="early-stages")
    p.add_argument("--keep", help="keep the collection in this new folder")
    p.add_argument("--out", help="JSON (default benchmarks/results/duplicates[-SPLIT].json)")
    args = p.parse_args()

    from bench_copies import build_collection, perceptual  # this folder is on sys.path

    run = load_run(args.run)
    base = np.ascontiguousarray(getattr(recipe.load_data(run.config), args.split).images)
    n = len(base)
    rng = np.random.default_rng(0)
    sources = np.sort(rng.choice(n, args.planted, replace=False))
    names = list_copy_transforms()
    copies = np.empty((len(sources), *base.shape[1:]), np.uint8)
    kinds = []
    for j, s in enumerate(sources):
        kind = names[j % len(names)]
        copies[j] = apply_copy_transform(kind, base[s][None], seed=j)[0]
        kinds.append(kind)
    images = np.concatenate([base, copies])
    truth = Groups(len(images))
    for j, s in enumerate(sources):
        truth.join(int(s), n + j)
    seen: dict[bytes, int] = {}
    for i, img in enumerate(images):  # pixel-identical images are duplicates too
        key = img.tobytes()
        if key in seen:
            truth.join(seen[key], i)
        else:
            seen[key] = i
    truth_labels = truth.labels()

    tmp = Path(tempfile.mkdtemp(prefix="bench-dups-"))
    folder = Path(args.keep) if args.keep else tmp / "col"
    instance = args.descriptor == "instance"
    thresholds = args.max_distance if instance else args.min_score
    out: dict[str, object] = {
        "benchmark": "duplicates",
        "run": str(args.run),
        "split": args.split,
        "items": len(images),
        "planted": len(sources),
        "radius": args.radius,
        "descriptor": args.descriptor,
    }
    try:
        t0 = time.time()
        col = build_collection(folder, Path(args.run), images, args.descriptor)
        ours = {}
        for nb, t in [(nb, t) for nb in args.neighbours for t in thresholds]:
            t1 = time.perf_counter()
            if instance:
                found = find_duplicates(col, radius=args.radius, max_distance=t, neighbours=nb)
            else:
                found = find_duplicates(col, radius=args.radius, min_score=t, neighbours=nb)
            seconds = time.perf_counter() - t1
            g = Groups(len(images))
            for a, b in found.pairs:
                g.join(a, b)
            key = f"neighbours={nb} {'max_distance' if instance else 'min_score'}={t}"
            ours[key] = {**pair_scores(g.labels(), truth_labels), "seconds": seconds}
            found_copies = [g.root(int(s)) == g.root(n + j) for j, s in enumerate(sources)]
            ours[key]["recall_by_transform"] = {
                k: float(np.mean([f for f, kk in zip(found_copies, kinds) if kk == k]))
                for k in names
            }
            r = ours[key]
            print(
                f"ours {key}: P {r['precision']:.4f} R {r['recall']:.4f} F1 {r['f1']:.4f} "
                f"({seconds:.2f}s; {time.time() - t0:.0f}s in all)",
                flush=True,
            )
        col.close()
        out["ours"] = ours
        ph = perceptual(images, "phash")
        index = create_index("flat", 64)
        index.add(ph)
        lims, dist, ids = index.range_search(ph, 21)
        peer = {}
        for t in range(21):
            g = Groups(len(images))
            for i in range(len(images)):
                a, b = lims[i], lims[i + 1]
                for j in ids[a:b][dist[a:b] <= t]:
                    if j != i:
                        g.join(i, int(j))
            peer[str(t)] = pair_scores(g.labels(), truth_labels)
        best = max(peer, key=lambda t: peer[t]["f1"])
        out["phash"] = peer
        out["phash_best_threshold"] = int(best)
        print(f"pHash best t={best}: P {peer[best]['precision']:.4f} R {peer[best]['recall']:.4f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    suffix = "" if args.split == "query" else f"-{args.split}"
    path = Path(args.out or ROOT / f"benchmarks/results/duplicates{suffix}.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
