"""The copy radius of instance collections, chosen on validation: class mAP against copy R@1.

An instance collection ranks a search's candidates in two groups: *copies* (descriptor Hamming
distance within the copy radius T) first, by (descriptor distance, code distance, id), then the
others by (code distance, descriptor distance, id). T = -1 is the class code's own order with
instance bits breaking its ties; T = the descriptor's width ranks everything by descriptor first.
For each T, over whole databases (every item a candidate, brute force), on the validation split
of a run trained with validation held out (``benchmarks/instance_probe.py``):

- class: mAP@all of ``--queries`` validation images (seeded) against ``--database`` training
  images (seeded), as during training;
- copies: the validation images are the database; copies of ``--sources`` of them (seeded) under
  every copy transform are the queries; R@1 counts the source first.

The criterion is the sum of class mAP and mean copy R@1. Writes JSON (default
``benchmarks/results/instance_copy_radius_validation.json``).

    python benchmarks/copy_radius_scan.py --run runs/instance-probe/e12-own16-b64
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench_instance_search import encode_parts  # this folder is on sys.path when run
from bench_rerank import average_precisions
from deephash.codes import hamming_distance_matrix
from deephash.data.copies import apply_copy_transform, list_copy_transforms
from deephash.training import recipe
from deephash.training.runs import load_run

ROOT = Path(__file__).resolve().parents[1]


def order_keys(dc: np.ndarray, dd: np.ndarray, radius: int) -> np.ndarray:
    """int64 (nq, n) sort keys of the two-group ranking for copy radius ``radius``."""
    n = dc.shape[1]
    copy = dd <= radius
    group = (~copy).astype(np.int64)
    first, second = np.where(copy, dd, dc), np.where(copy, dc, dd)
    return ((group * 1024 + first) * 1024 + second) * n + np.arange(n)[None, :]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", default=str(ROOT / "runs/instance-probe/e12-own16-b64"))
    p.add_argument("--radii", type=int, nargs="+", default=[-1, 0, 2, 4, 6, 8, 10, 12, 64])
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--database", type=int, default=10000)
    p.add_argument("--sources", type=int, default=1000)
    p.add_argument(
        "--out", default=str(ROOT / "benchmarks/results/instance_copy_radius_validation.json")
    )
    args = p.parse_args()
    run = load_run(args.run)
    if run.config.fit_validation:
        raise SystemExit(f"{args.run} trained on its validation split; choose on a held-out run")
    data = recipe.load_data(run.config)
    val, val_labels = data.validation.images, data.validation.labels
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(len(data.train.images), args.database, replace=False))
    db_codes, db_inst = encode_parts(run, data.train.images[sub])
    val_codes, val_inst = encode_parts(run, val)
    qs = np.sort(rng.choice(len(val), args.queries, replace=False))
    dc = hamming_distance_matrix(val_codes[qs], db_codes).astype(np.int64)
    dd = hamming_distance_matrix(val_inst[qs], db_inst).astype(np.int64)
    result: dict[str, Any] = {}
    for t in args.radii:
        order = np.argsort(order_keys(dc, dd, t), axis=1)
        ap = average_precisions(order, data.train.labels[sub], val_labels[qs])
        result[str(t)] = {"class_map": float(ap.mean()), "copies": {}}
    src = np.sort(rng.choice(len(val), args.sources, replace=False))
    for name in list_copy_transforms():
        q_codes, q_inst = encode_parts(run, apply_copy_transform(name, val[src], seed=1))
        dc = hamming_distance_matrix(q_codes, val_codes).astype(np.int64)
        dd = hamming_distance_matrix(q_inst, val_inst).astype(np.int64)
        for t in args.radii:
            first = order_keys(dc, dd, t).argmin(axis=1) == src
            result[str(t)]["copies"][name] = float(first.mean())
    print("| copy radius | class mAP | copy R@1 (mean) | sum |")
    print("|---|---|---|---|")
    for t, row in result.items():
        row["copy_mean"] = float(np.mean(list(row["copies"].values())))
        row["sum"] = row["class_map"] + row["copy_mean"]
        print(f"| {t} | {row['class_map']:.4f} | {row['copy_mean']:.3f} | {row['sum']:.4f} |")
    best = max(result, key=lambda t: result[t]["sum"])
    print(f"best by the sum: copy radius {best}")
    out = {"run": str(args.run), "chosen": int(best), "radii": result}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
