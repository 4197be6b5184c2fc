"""``deephash search INDEX IMAGE...``: encode query images with the index's model and search."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from deephash.cli._common import add_device_arg


def register(sub: Any) -> None:
    p = sub.add_parser(
        "search",
        help="find the nearest codes to query images in an index",
        description="Encode the query images with the model that built INDEX (named in "
        "INDEX.run.json, or --run) and print the top results: id, path or label, Hamming distance.",
    )
    p.add_argument("index", help="index file written by `deephash index build`")
    p.add_argument("images", nargs="+", help="query image files")
    p.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    p.add_argument(
        "--radius", type=int, help="return every item with Hamming distance <= r instead"
    )
    p.add_argument("--run", help="run folder of the model (default: from INDEX.run.json)")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deephash.cli.index import sidecar
    from deephash.codes import pack_bits, sign
    from deephash.index import load_index
    from deephash.training.runs import load_run

    index_path = Path(args.index)
    index = load_index(index_path)
    run_dir = args.run
    if run_dir is None:
        meta_file = sidecar(index_path)
        if not meta_file.is_file():
            raise FileNotFoundError(f"{meta_file} is missing; pass --run RUN_DIR to name the model")
        run_dir = json.loads(meta_file.read_text())["run_dir"]
    model = load_run(run_dir, device=args.device)
    if model.config.bits != index.bits:
        raise ValueError(
            f"the model makes {model.config.bits}-bit codes but the index holds {index.bits}-bit codes"
        )
    for f in args.images:
        if not Path(f).is_file():
            raise FileNotFoundError(f"query image {f} does not exist")
    queries = pack_bits(sign(model.encode(model.load_images(args.images))))
    if args.k < 1:
        raise ValueError(f"-k must be >= 1, got {args.k}")
    results: list[dict[str, Any]] = []
    if args.radius is not None:
        # range_search keeps distances strictly below its radius, like faiss; ours is inclusive.
        lims, dist, ids = index.range_search(queries, args.radius + 1)
        per_query = [
            (dist[lims[i] : lims[i + 1]], ids[lims[i] : lims[i + 1]]) for i in range(len(queries))
        ]
    else:
        d, i = index.search(queries, args.k)
        per_query = [(d[q][i[q] >= 0], i[q][i[q] >= 0]) for q in range(len(queries))]
    for image, (dist, ids) in zip(args.images, per_query):
        meta = index.metadata_for(ids) if len(ids) else {}
        hits = []
        for j, (dd, ii) in enumerate(zip(dist, ids)):
            hit: dict[str, Any] = {"id": int(ii), "distance": int(dd)}
            for key, values in meta.items():
                value = values[j]
                hit[key] = value.item() if isinstance(value, np.generic) else value
            hits.append(hit)
        results.append({"query": image, "results": hits})
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['query']}:")
            for rank, h in enumerate(r["results"], 1):
                extra = "  ".join(f"{k}={v}" for k, v in h.items() if k not in ("id", "distance"))
                print(f"  {rank:3d}. id {h['id']:<8d} distance {h['distance']:<4d} {extra}")
    return 0
