"""``deephash encode RUN_DIR --split query|database --out FILE.npz``: codes and labels to a file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from deephash.cli._common import add_device_arg


def register(sub: Any) -> None:
    p = sub.add_parser(
        "encode",
        help="write a split's packed codes (hashing runs) or embeddings, with labels, to .npz",
        description="Hashing runs write arrays `codes` (uint8 (n, ceil(bits/8)), faiss layout) and "
        "`labels`; metric-learning runs write `embeddings` (float32 (n, d)) and `labels`.",
    )
    p.add_argument("run_dir")
    p.add_argument("--split", choices=["query", "database", "train", "validation"], default="query")
    p.add_argument("--out", required=True, help="output .npz file")
    p.add_argument("--data-dir")
    p.add_argument("--batch-size", type=int, default=512)
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deephash.atomic_io import atomic_save_npz
    from deephash.codes import pack_bits, sign
    from deephash.training import recipe
    from deephash.training.runs import load_run

    loaded = load_run(args.run_dir, device=args.device)
    cfg = loaded.config
    if args.data_dir:
        cfg.data_dir = args.data_dir
    data = recipe.load_data(cfg)
    split = getattr(data, args.split)
    out = loaded.encode(split.images, batch_size=args.batch_size, progress=True)
    path = Path(args.out)
    if cfg.bits is not None:
        atomic_save_npz(
            path, codes=pack_bits(sign(out)), labels=split.labels, bits=np.int64(cfg.bits)
        )
    else:
        atomic_save_npz(path, embeddings=out, labels=split.labels)
    kind = f"{cfg.bits}-bit codes" if cfg.bits is not None else f"{out.shape[1]}-d embeddings"
    print(f"wrote {len(out)} {kind} of the {args.split} split to {path}")
    return 0
