"""``deephash data``: list datasets and protocols, download a dataset, write a protocol file."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add ``data list | download | protocol`` to the ``deephash`` parser."""
    from deephash.data.protocol_catalogue import RETRIEVAL_SHAPES

    parser = subparsers.add_parser("data", help="datasets and retrieval protocols")
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p_list = sub.add_parser("list", help="list datasets (and where each is found) and protocols")
    p_list.add_argument("--data-dir", default=None, help="folder searched first for datasets")
    p_list.set_defaults(func=run)

    p_dl = sub.add_parser("download", help="fetch and verify a dataset's official files")
    p_dl.add_argument("name", help="dataset name (see `deephash data list`)")
    p_dl.add_argument(
        "--data-dir",
        default=None,
        help="download into DIR/NAME (default: $DEEPHASH_DATA or the user cache)",
    )
    p_dl.add_argument(
        "--keep-archives", action="store_true", help="keep .tar/.tgz archives after extraction"
    )
    p_dl.set_defaults(func=run)

    p_pr = sub.add_parser("protocol", help="create a seeded protocol and save it as JSON")
    p_pr.add_argument("name", help="protocol name (see `deephash data list`)")
    p_pr.add_argument("--seed", type=int, default=0)
    p_pr.add_argument("--out", required=True, help="output .json file")
    p_pr.add_argument(
        "--data-dir", default=None, help="folder searched first (the image root for `folder`)"
    )
    p_pr.add_argument("--download", action="store_true", help="fetch the dataset if it is missing")
    p_pr.add_argument(
        "--class-disjoint", action="store_true", help="train and query/database on disjoint classes"
    )
    p_pr.add_argument(
        "--train-classes",
        type=int,
        default=None,
        help="number of training classes (class-disjoint)",
    )
    p_pr.add_argument(
        "--validation-size", type=int, default=None, help="validation images (stratified)"
    )
    p_pr.add_argument(
        "--retrieval",
        choices=RETRIEVAL_SHAPES,
        default=None,
        help="unseen-class protocols: query/database split, or every test-class image queries "
        "all the others",
    )
    p_pr.add_argument(
        "--validation-folds",
        type=int,
        default=None,
        help="class-disjoint validation: folds of the training classes",
    )
    p_pr.add_argument(
        "--validation-fold", type=int, default=None, help="the fold held out (default 0)"
    )
    p_pr.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deephash.data.datasets import dataset_info, list_datasets
    from deephash.data.download import download_dataset
    from deephash.data.locations import SOURCES, find_dataset
    from deephash.data.protocols import create_protocol, list_protocols, protocol_spec

    if args.data_command == "list":
        print("datasets:")
        for name in list_datasets():
            where = "(needs a root folder)"
            if name in SOURCES:
                try:
                    where = str(find_dataset(name, args.data_dir))
                except FileNotFoundError:
                    where = "(not found; `deephash data download " + name + "`)"
            print(f"  {name:<14} {dataset_info(name).description}  {where}")
        print("protocols:")
        for name in list_protocols():
            spec = protocol_spec(name)
            print(f"  {name:<20} [{spec.dataset}] {spec.description}")
        return 0
    if args.data_command == "download":
        folder = download_dataset(args.name, args.data_dir, keep_archives=args.keep_archives)
        print(f"{args.name}: ready in {folder}")
        return 0
    options: dict[str, Any] = {}
    if args.class_disjoint:
        options["class_disjoint"] = True
    if args.train_classes is not None:
        options["train_classes"] = args.train_classes
    for key in ("validation_size", "retrieval", "validation_folds", "validation_fold"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    protocol = create_protocol(
        args.name, args.seed, data_dir=args.data_dir, download=args.download, **options
    )
    path = protocol.save(args.out)
    sizes = ", ".join(f"{k} {v}" for k, v in protocol.sizes.items())
    print(
        f"protocol {protocol.name} (dataset {protocol.dataset}, seed {protocol.seed}): {sizes} -> {path}"
    )
    return 0
