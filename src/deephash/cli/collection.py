"""``deephash collection create|add|remove|duplicates|search|info``: the collection folder a server
serves."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from deephash.cli._common import add_device_arg
from deephash.cli.collection_search import add_search

_CHUNK = 256  # images per log record (one fsync) while adding from the command line
_CHUNK_BYTES = 64 * 1024 * 1024  # ... and at most about this many image bytes


def register(sub: Any) -> None:
    p = sub.add_parser(
        "collection",
        help="create and edit a searchable image collection (served by `deephash serve`)",
        description="A collection folder holds the codes of a hashing model in an index, the "
        "item metadata, a copy of every image, and an fsynced log of changes.",
    )
    csub = p.add_subparsers(dest="collection_command", metavar="ACTION")
    _add_create(csub)
    _add_add(csub)
    r = csub.add_parser("remove", help="remove items by id")
    r.add_argument("dir", help="collection folder")
    r.add_argument("ids", nargs="+", type=int, metavar="ID")
    r.set_defaults(func=run_remove)
    _add_duplicates(csub)
    add_search(csub)
    i = csub.add_parser(
        "info", help="print the collection's settings, counts and code usage (JSON)"
    )
    i.add_argument("dir", help="collection folder")
    i.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: _no_action(p))


def _add_create(csub: Any) -> None:
    c = csub.add_parser(
        "create",
        help="make a collection for a hashing run's model, or index a folder of photos",
        description="--run RUN_DIR: an empty collection for a hashing run's model (a trained run, "
        "or an ITQ / LSH row of `deephash compare`). --images FOLDER: no labels and no training: "
        "a pretrained backbone (ImageNet EfficientNet-Lite0) with codes fitted on a sample of the "
        "folder's own photos (saved in DIR/model), then every readable image of the folder and "
        "its sub-folders added; files that cannot be read are named with their reason.",
    )
    c.add_argument("dir", help="new collection folder")
    source = c.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="a hashing run folder (trained with --bits, or fitted)")
    source.add_argument(
        "--images", metavar="FOLDER", help="a folder of photos (sub-folders too) to index"
    )
    c.add_argument("--bits", type=int, help="--images: code length (default 64)")
    c.add_argument(
        "--image-size",
        type=int,
        help="--images: side in pixels the photos are encoded at (default 224, the backbone's)",
    )
    c.add_argument(
        "--fit-sample",
        type=int,
        help="--images: photos the codes are fitted on (a random sample; default 2000)",
    )
    c.add_argument(
        "--backend",
        default="mih",
        choices=["mih", "flat", "milvus"],
        help="mih: multi-index hashing (default), flat: exhaustive scan, milvus: Milvus",
    )
    c.add_argument(
        "--uri",
        help="milvus only: a Milvus Lite file (default DIR/milvus.db) or http://host:19530 "
        "(credentials: $MILVUS_TOKEN, 'user:password' or an API key; never stored)",
    )
    c.add_argument(
        "--rerank",
        default="auto",
        metavar="KIND",
        help="descriptor stored with every item to re-rank Hamming candidates by, so a search "
        "finds the item itself first: one of "
        f"{', '.join(_descriptor_kinds())}; 'none': Hamming ranking only; 'auto' (default): "
        "instance (the signs of the network's instance outputs, 8 bytes per item for 64 bits) "
        "when the run's network has instance outputs, else the recommended kind for its "
        "backbone (early-stages for small-cnn, VGG and EfficientNet-Lite, else backbone)",
    )
    c.add_argument(
        "--candidates",
        type=int,
        default=None,
        help="nearest codes re-ranked per search (k'; default 32 for instance, else 4096)",
    )
    c.add_argument(
        "--descriptor-candidates",
        type=int,
        default=None,
        help="instance only: nearest descriptors added to them per search (default 32)",
    )
    c.add_argument(
        "--copy-radius",
        type=int,
        default=None,
        help="instance only: candidates within this many differing bits of the query's "
        "descriptor count as copies and rank first; the others rank by code distance (default: "
        "5/32 of the descriptor's bits, 20 of 128)",
    )
    c.add_argument(
        "--milvus-collection", help="milvus only: collection name (default deephash_<folder>)"
    )
    c.add_argument(
        "--milvus-index",
        choices=["BIN_FLAT", "BIN_IVF_FLAT"],
        help="milvus only: BIN_FLAT (exact, default) or BIN_IVF_FLAT (approximate; a server)",
    )
    c.add_argument("--nlist", type=int, help="BIN_IVF_FLAT: inverted-file cells (default 1024)")
    c.add_argument("--nprobe", type=int, help="BIN_IVF_FLAT: cells searched per query (default 16)")
    add_device_arg(c)
    c.set_defaults(func=run_create)


def _add_add(csub: Any) -> None:
    a = csub.add_parser(
        "add",
        help="add image files or folders (class sub-folders give labels)",
        description="Add image files, or folders: a folder of class sub-folders "
        "(root/<class>/*.png) labels each image with its folder's name, as the image-folder "
        "reader does; images directly in a folder get --label. Every image is copied into the "
        "collection.",
    )
    a.add_argument("dir", help="collection folder")
    a.add_argument("images", nargs="*", metavar="IMAGES_OR_FOLDER")
    a.add_argument("--label", help="label for images given as files or loose in a folder")
    a.add_argument(
        "--dataset",
        help="add a dataset split instead (e.g. fashion-mnist; images stored as PNG, labels "
        "from its class names)",
    )
    a.add_argument("--split", default="database", choices=["database", "query", "train"])
    a.add_argument("--data-dir", help="folder holding the dataset")
    a.add_argument("--limit", type=int, help="add only the first N images of the split")
    a.add_argument("--json", action="store_true", help="print the new ids as JSON")
    add_device_arg(a)
    a.set_defaults(func=run_add)


def _add_duplicates(csub: Any) -> None:
    d = csub.add_parser(
        "duplicates",
        help="list groups of near-identical stored images",
        description="Each item searches with its own code and descriptor; its nearest other item "
        "within --radius whose re-rank score is at least --min-score is a near duplicate; pairs "
        "are joined into groups. A collection without descriptors groups by --radius alone. A "
        "collection of instance bits (--rerank instance) pairs each item with its nearest other "
        "item by instance bits if at most --max-distance bits differ, whatever the class codes.",
    )
    d.add_argument("dir", help="collection folder")
    d.add_argument(
        "--radius",
        type=int,
        default=None,
        help="largest Hamming distance of the codes of duplicates (8; instance bits: not "
        "checked unless given)",
    )
    d.add_argument(
        "--min-score",
        type=float,
        default=None,
        help="smallest re-rank score of duplicates (0.99): the cosine of float descriptors, "
        "1 - 2d/bits of instance bits (another way to give --max-distance)",
    )
    d.add_argument(
        "--max-distance",
        type=int,
        default=None,
        help="instance bits only: largest number of differing bits of duplicates (6 per 128 "
        "bits, rounded down: 3 of 64)",
    )
    d.add_argument(
        "--neighbours",
        type=int,
        default=None,
        help="nearest other items each item may pair with (1: its nearest only, the default)",
    )
    d.add_argument("--json", action="store_true", help="print {groups, pairs} as JSON")
    d.set_defaults(func=run_duplicates)


def _no_action(p: argparse.ArgumentParser) -> int:
    p.print_help(sys.stderr)
    return 2


def _descriptor_kinds() -> list[str]:
    from deephash.models.descriptors import list_descriptors

    return list_descriptors()


def run_create(args: argparse.Namespace) -> int:
    if args.images is not None:
        from deephash.cli.photo_collection import create_from_photos

        return create_from_photos(args, create_collection)
    if (args.bits, args.image_size, args.fit_sample) != (None, None, None):
        raise ValueError(
            "--bits, --image-size and --fit-sample are for --images (a run has its own)"
        )
    return create_collection(args, args.run)


def create_collection(args: argparse.Namespace, run_dir: str) -> int:
    """Create the collection of ``args`` for the model of ``run_dir`` and print what it is."""
    from deephash.collection import Collection
    from deephash.collection.collection import recommended_descriptor

    rerank = args.rerank
    if rerank == "auto":
        rerank = recommended_descriptor(run_dir)
    elif rerank == "none":
        rerank = None
    if rerank is None and args.candidates is not None:
        raise ValueError("--candidates is for a re-ranking collection; drop it or --rerank none")
    if args.descriptor_candidates is not None and rerank != "instance":
        raise ValueError("--descriptor-candidates is for --rerank instance")
    if args.copy_radius is not None and rerank != "instance":
        raise ValueError("--copy-radius is for --rerank instance")
    with Collection.create(
        args.dir,
        run_dir,
        backend=args.backend,
        uri=args.uri,
        rerank=rerank,
        candidates=args.candidates,
        descriptor_candidates=args.descriptor_candidates,
        copy_radius=args.copy_radius,
        milvus_collection=args.milvus_collection,
        milvus_index=args.milvus_index,
        nlist=args.nlist,
        nprobe=args.nprobe,
    ) as col:
        ranking = _ranking(col)
        print(
            f"created collection {args.dir}: {col.bits}-bit codes from {col.run_dir}, "
            f"backend {col.backend}, {ranking}"
            + ("" if args.images else f"; add images with `deephash collection add {args.dir} ...`")
        )
    return 0


def _ranking(col: Any) -> str:
    """How collection ``col`` ranks, in words."""
    if col.binary_descriptor:
        return (
            f"ranking the {col.candidates} nearest codes and {col.descriptor_candidates} nearest "
            f"{col.descriptor} descriptors: copies (within {col.copy_radius} bits) first, then "
            f"by code distance ({col.descriptor_dim} bits, "
            f"{col.info()['rerank']['bytes_per_item']} bytes per item)"
        )
    if col.reranks:
        return (
            f"re-ranking {col.candidates} Hamming candidates by {col.descriptor} descriptors "
            f"({col.descriptor_dim} float16, {2 * col.descriptor_dim} bytes per item)"
        )
    return "ranking by Hamming distance only"


def gather_images(inputs: list[str], label: str | None) -> list[tuple[Path, str | None]]:
    """(file, label) for every image named or found: files as given, class sub-folders of a
    folder labelled by their names, images loose in a folder with ``label``."""
    from deephash.data.image_folder import IMAGE_EXTENSIONS, list_image_folder

    out: list[tuple[Path, str | None]] = []
    for name in inputs:
        path = Path(name)
        if path.is_file():
            out.append((path, label))
        elif path.is_dir():
            loose = sorted(
                f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS
            )
            out.extend((f, label) for f in loose)
            has_classes = any(
                d.is_dir() and any(f.suffix.lower() in IMAGE_EXTENSIONS for f in d.iterdir())
                for d in path.iterdir()
            )
            if has_classes:
                files, labels, names = list_image_folder(path)
                out.extend((f, names[int(c)]) for f, c in zip(files, labels))
            elif not loose:
                raise ValueError(f"{path} holds no .jpg/.jpeg/.png images")
        else:
            raise FileNotFoundError(f"{path} does not exist")
    return out


def dataset_images(
    col: Any, name: str, split: str, data_dir: str | None, limit: int | None
) -> tuple[int, Iterator[list[tuple[bytes, str | None, str]]]]:
    """(count, chunks of (PNG bytes, label, "dataset:split:index")) of a dataset split, loaded
    as the collection's run loads its data."""
    from PIL import Image

    from deephash.training import recipe
    from deephash.training.config import TrainConfig

    cfg = TrainConfig.from_dict(col.model.config.to_dict())
    if name != cfg.dataset:
        cfg.protocol, cfg.dataset = name, name
    if data_dir:
        cfg.data_dir = data_dir
    data = getattr(recipe.load_data(cfg), split)
    names = list(data.class_names or [])
    n = len(data.labels) if limit is None else min(limit, len(data.labels))

    def chunks() -> Iterator[list[tuple[bytes, str | None, str]]]:
        for start in range(0, n, _CHUNK):
            out = []
            for i in range(start, min(start + _CHUNK, n)):
                buf = io.BytesIO()
                Image.fromarray(data.images[i]).save(buf, "PNG")
                c = int(data.labels[i])
                out.append((buf.getvalue(), names[c] if names else str(c), f"{name}:{split}:{i}"))
            yield out

    return n, chunks()


def file_chunks(
    files: list[tuple[Path, str | None]],
) -> Iterator[list[tuple[bytes, str | None, str]]]:
    """Chunks of at most _CHUNK files and about _CHUNK_BYTES (one log record each)."""
    chunk: list[tuple[bytes, str | None, str]] = []
    size = 0
    for f, lab in files:
        data = f.read_bytes()
        chunk.append((data, lab, str(f.resolve())))
        size += len(data)
        if len(chunk) == _CHUNK or size >= _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def run_add(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from deephash.collection import Collection

    if bool(args.images) == bool(args.dataset):
        raise ValueError("give image files or folders, or --dataset NAME (not both)")
    files = gather_images(args.images, args.label) if args.images else []
    ids: list[int] = []
    with Collection.open(args.dir, device=args.device) as col:
        if args.dataset:
            total, chunks = dataset_images(col, args.dataset, args.split, args.data_dir, args.limit)
        else:
            total, chunks = len(files), file_chunks(files)
        with tqdm(total=total, desc="adding", unit="img", disable=None) as bar:
            for chunk in chunks:
                try:
                    ids += col.add_images(
                        [b for b, _, _ in chunk],
                        labels=[lab for _, lab, _ in chunk],
                        paths=[p for _, _, p in chunk],
                    )
                except ValueError as exc:
                    done = f" ({len(ids)} images before it were added)" if ids else ""
                    raise ValueError(
                        f"{exc}; nothing of its batch of {len(chunk)} was added{done}"
                    ) from None
                bar.update(len(chunk))
        count = col.count
    if args.json:
        print(json.dumps({"ids": ids, "count": count}))
    else:
        span = f" (ids {ids[0]}..{ids[-1]})" if ids else ""
        print(f"added {len(ids)} images{span}; {args.dir} holds {count} items")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    from deephash.collection import Collection

    with Collection.open(args.dir, load_model=False) as col:
        try:
            removed = col.remove(args.ids)
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]}; nothing was removed") from None
        print(f"removed {removed} items; {args.dir} holds {col.count} items")
    return 0


def run_duplicates(args: argparse.Namespace) -> int:
    from deephash.collection import Collection
    from deephash.collection.duplicates import DEFAULT_NEIGHBOURS, find_duplicates

    # read-only (a running server keeps its lock) except for an external engine, which a reader
    # does not connect to
    settings = Path(args.dir) / "collection.json"
    external = settings.is_file() and json.loads(settings.read_text()).get("backend") == "milvus"
    col = Collection.open(args.dir, read_only=not external, load_model=False)
    try:
        found = find_duplicates(
            col,
            radius=args.radius,
            min_score=args.min_score,
            max_distance=args.max_distance,
            neighbours=DEFAULT_NEIGHBOURS if args.neighbours is None else args.neighbours,
        )
    finally:
        if external:
            col.close()
    if args.json:
        print(json.dumps({"groups": found.groups, "pairs": len(found.pairs)}))
        return 0
    for n, group in enumerate(found.groups, 1):
        print(f"group {n} ({len(group)} items):")
        for item_id in group:
            item = col.get(item_id)
            label = f" [{item.label}]" if item.label else ""
            print(f"  {item_id}{label} {item.path or ''}".rstrip())
    total = sum(len(g) for g in found.groups)
    print(f"{len(found.groups)} groups of near duplicates ({total} items) among {col.count}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from deephash.collection import Collection
    from deephash.hashing import code_usage

    col = Collection.open(args.dir, read_only=True, load_model=False)
    info = col.info()
    if col.count:
        info["code_usage"] = code_usage(col.codes, bits=col.bits).to_dict()
    print(json.dumps(info, indent=2))
    return 0
