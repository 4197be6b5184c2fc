"""``deephash compare CONFIG...``: same budget and seeds for several recipes, one table and plot."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="train several recipes with the same seeds; markdown table and mAP-vs-time plot",
        description="CONFIG is a recipe YAML, or one study YAML with a `recipes:` list (and "
        "optional `seeds`, `overrides`, `target_map`, `reference`). Finished runs are reused, interrupted ones "
        "resumed. Writes compare.md, compare.json, val_map_vs_time.png (and map_vs_bits.png).",
    )
    p.add_argument("configs", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--seeds", type=int, nargs="+", help="seeds (default: the study's, else 0)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override for every recipe, e.g. epochs=5 or time_limit_minutes=3",
    )
    p.add_argument("--target-map", type=float, help="report the time to reach this validation mAP")
    p.add_argument(
        "--reference",
        help="YAML of published numbers (source, rows: {recipe: {map, knn}}) printed in 'report' "
        "columns beside ours; default: the study file's reference:",
    )
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help="run only these recipes of the study (e.g. rows added to a study that already ran)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deephash.cli.train import parse_sets
    from deephash.training.compare import run_compare

    run_compare(
        args.configs,
        args.out,
        seeds=args.seeds,
        overrides=parse_sets(args.set),
        target_map=args.target_map,
        reference=args.reference,
        only=args.only,
    )
    return 0
