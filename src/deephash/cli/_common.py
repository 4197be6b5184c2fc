"""Arguments shared by several sub-commands."""

from __future__ import annotations

import argparse

__all__ = ["add_data_args", "add_device_arg"]


def add_data_args(p: argparse.ArgumentParser, *, dataset_required: bool = False) -> None:
    p.add_argument("--dataset", required=dataset_required, help="dataset name, e.g. fashion-mnist")
    p.add_argument(
        "--protocol",
        help="protocol name or a saved protocol JSON file (default: the dataset's standard protocol)",
    )
    p.add_argument(
        "--data-dir",
        help="folder holding the dataset (default: $DEEPHASH_DATA, the user cache, system paths)",
    )
    p.add_argument(
        "--download", action="store_true", help="download the official files (checksums verified)"
    )
    p.add_argument(
        "--protocol-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="protocol option, e.g. validation_size=5000, class_disjoint=true, root=DIR (folder)",
    )


def add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1 ..."
    )
