"""``deephash index build``: encode a collection with a trained hashing model into a Hamming index."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from deephash.cli._common import add_device_arg


def register(sub: Any) -> None:
    p = sub.add_parser("index", help="build Hamming indexes from a trained hashing run")
    isub = p.add_subparsers(dest="index_command", metavar="ACTION")
    b = isub.add_parser(
        "build",
        help="encode a dataset split or an image folder and save an index",
        description="Encode images with RUN_DIR's model, sign the relaxed codes, and store packed "
        "codes with ids, labels and image paths in INDEX (plus INDEX.run.json naming the model).",
    )
    b.add_argument("run_dir", help="a hashing run folder (trained with --bits)")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="the run's dataset/protocol (or another) to index")
    src.add_argument("--images", help="a folder of images (recursive; jpg/jpeg/png)")
    b.add_argument("--split", default="database", choices=["database", "query", "train"])
    b.add_argument("--data-dir")
    b.add_argument("--out", required=True, help="index file to write")
    b.add_argument(
        "--backend",
        default="flat",
        help="flat, mih, faiss:<factory> (e.g. faiss:BFlat) or milvus:<uri> (e.g. milvus:fm.db)",
    )
    b.add_argument("--batch-size", type=int, default=512)
    add_device_arg(b)
    b.set_defaults(func=run_build)
    p.set_defaults(func=lambda args: _no_action(p))


def _no_action(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder``, sorted, recursively."""
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not files:
        raise ValueError(f"{folder} holds no .jpg/.jpeg/.png images")
    return files


def run_build(args: argparse.Namespace) -> int:
    from deephash.atomic_io import atomic_write_json
    from deephash.codes import pack_bits, sign
    from deephash.index import create_index
    from deephash.training import recipe
    from deephash.training.runs import load_run

    run = load_run(args.run_dir, device=args.device)
    bits = run.config.bits
    if bits is None:
        raise ValueError(
            f"{args.run_dir} is a metric-learning run; index build needs a hashing run (--bits)"
        )
    metadata: dict[str, Any]
    if args.images:
        paths = list_images(Path(args.images))
        images = run.load_images(paths)
        metadata = {"path": [str(p) for p in paths]}
        source = f"images:{Path(args.images).resolve()}"
    else:
        cfg = run.config
        if args.dataset:
            cfg.protocol = args.dataset if args.dataset != cfg.dataset else cfg.protocol
            cfg.dataset = args.dataset
        if args.data_dir:
            cfg.data_dir = args.data_dir
        data = recipe.load_data(cfg)
        split = getattr(data, args.split)
        images = split.images
        names = list(split.class_names)
        metadata = {
            "label": split.labels.astype(np.int64),
            "class": [names[int(c)] if names else str(int(c)) for c in split.labels],
        }
        source = f"dataset:{cfg.protocol_name}:{args.split}"
    relaxed = run.encode(images, batch_size=args.batch_size, progress=True)
    codes = pack_bits(sign(relaxed))
    index = create_index(args.backend, bits)
    index.add(codes, metadata=metadata)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    index.save(out)
    atomic_write_json(
        sidecar(out),
        {
            "run_dir": str(Path(args.run_dir).resolve()),
            "bits": bits,
            "source": source,
            "backend": args.backend,
            "ntotal": int(index.ntotal),
        },
    )
    print(
        json.dumps(
            {
                "index": str(out),
                "ntotal": int(index.ntotal),
                "bits": bits,
                "backend": args.backend,
                "source": source,
            }
        )
    )
    return 0


def sidecar(index_path: Path) -> Path:
    """The JSON file beside an index that names the model which encoded it."""
    return index_path.with_name(index_path.name + ".run.json")
