"""``deephash collection search DIR IMAGE... | --id ID | --code HEX``: search a collection from the
command line as the service does (``POST /search``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from deephash.cli._common import add_device_arg

__all__ = ["add_search", "run_search"]


def add_search(csub: Any) -> None:
    s = csub.add_parser(
        "search",
        help="search a collection by image files, a stored item's id or a code",
        description="Each image is encoded with the collection's model (code and, when the "
        "collection stores descriptors, descriptor in one pass); --id searches with a stored "
        "item's code and descriptor; --code with a code alone (Hamming ranking). A collection "
        "with instance descriptors ranks the nearest codes and the nearest descriptors together: "
        "copies (within the collection's copy radius) first by descriptor distance (score 1 - 2 "
        "d / bits), then the others by code distance; one with float descriptors re-ranks the "
        "nearest codes by cosine similarity. Opens the collection read-only (a server may hold "
        "it).",
    )
    s.add_argument("dir", help="collection folder")
    s.add_argument("images", nargs="*", metavar="IMAGE", help="query image files")
    s.add_argument("--id", type=int, dest="item_id", help="search with a stored item")
    s.add_argument("--code", help="search with a packed code in hex (Hamming ranking)")
    s.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    s.add_argument("--radius", type=int, help="only items within this code Hamming distance")
    s.add_argument(
        "--candidates", type=int, help="nearest codes to re-rank (default: the collection's)"
    )
    s.add_argument(
        "--descriptor-candidates",
        type=int,
        help="instance descriptors: nearest descriptors to rank with them (default: the "
        "collection's)",
    )
    s.add_argument("--json", action="store_true", help="print JSON for scripts")
    add_device_arg(s)
    s.set_defaults(func=run_search)


def _queries(args: argparse.Namespace, col: Any) -> tuple[list[str], np.ndarray, Any]:
    """(query names, codes uint8 (nq, nbytes), descriptors or None) of the arguments."""
    given = sum((bool(args.images), args.item_id is not None, args.code is not None))
    if given != 1:
        raise ValueError("give image files, --id ID or --code HEX (one of them)")
    if args.item_id is not None:
        try:
            code = col.code_of(args.item_id)[None, :]
        except KeyError as exc:
            raise ValueError(str(exc.args[0])) from None
        desc = col.descriptor_of(args.item_id)[None, :] if col.reranks else None
        return [f"id {args.item_id}"], code, desc
    if args.code is not None:
        try:
            code = np.frombuffer(bytes.fromhex(args.code), np.uint8)[None, :].copy()
        except ValueError:
            raise ValueError(f"--code {args.code!r} is not hexadecimal") from None
        return [args.code], code, None  # its width is checked by the search
    decoded = []
    for f in args.images:
        path = Path(f)
        if not path.is_file():
            raise FileNotFoundError(f"query image {f} does not exist")
        decoded.append(col.decode(path.read_bytes(), name=f))
    codes, desc = col.encode_with_descriptors(np.stack([d.rgb for d in decoded]))
    return list(args.images), codes, desc


def run_search(args: argparse.Namespace) -> int:
    from deephash.collection import Collection

    col = Collection.open(args.dir, read_only=True, load_model=False, device=args.device)
    names, codes, desc = _queries(args, col)
    hits = col.search(
        codes,
        args.k,
        args.radius,
        descriptors=desc,
        candidates=args.candidates,
        descriptor_candidates=args.descriptor_candidates,
    )
    results: list[dict[str, Any]] = [
        {"query": name, "results": [_hit_json(h) for h in row]} for name, row in zip(names, hits)
    ]
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    for r in results:
        print(f"{r['query']}:")
        for rank, h in enumerate(r["results"], 1):
            score = "" if h["score"] is None else f"score {h['score']:.4f} "
            extra = "  ".join(f"{k}={h[k]}" for k in ("label", "path") if k in h)
            print(f"  {rank:3d}. id {h['id']:<8d} {score}distance {h['distance']:<4d} {extra}")
    return 0


def _hit_json(hit: Any) -> dict[str, Any]:
    """A hit as the service answers it (without the image URL)."""
    out: dict[str, Any] = {"id": hit.id, "distance": hit.distance, "score": hit.score}
    if hit.item.label is not None:
        out["label"] = hit.item.label
    if hit.item.path is not None:
        out["path"] = hit.item.path
    return out
