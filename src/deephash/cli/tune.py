"""``deephash tune``: choose hyper-parameters (the margin first of all) on the validation split only."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import yaml


def register(sub: Any) -> None:
    p = sub.add_parser(
        "tune",
        help="grid-search hyper-parameters on validation mAP, then test the selected run once",
        description="Each trial trains on the training split and is ranked by validation mAP "
        "(validation queries against the training split; on an unseen-class protocol, leave-one-"
        "out among training classes held out of training); query data is never used to choose, "
        "and a setting that would let test classes into the choice is refused before training. "
        "Example: deephash tune --config configs/facenet.yaml --param loss_options.margin=0.1,0.2,0.4 "
        "--out runs/tune-margin",
    )
    p.add_argument("--config", help="base YAML recipe")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=V1,V2,...",
        help="dotted config key and the values to try (repeatable; the grid is their product)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="fixed override for every trial (e.g. epochs=5)",
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--cross-validate",
        action="store_true",
        help="unseen-class protocols: train each trial once per class-disjoint validation fold "
        "and rank by the mean (Musgrave et al. 2020)",
    )
    p.set_defaults(func=run)


def parse_grid(items: list[str]) -> dict[str, Sequence[Any]]:
    grid: dict[str, Sequence[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--param expects KEY=V1,V2,..., got {item!r}")
        key, raw = item.split("=", 1)
        values = [yaml.safe_load(v) for v in raw.split(",") if v.strip()]
        if not values:
            raise ValueError(f"--param {key} has no values")
        grid[key.strip()] = values
    return grid


def run(args: argparse.Namespace) -> int:
    from deephash.cli.train import parse_sets
    from deephash.training.config import load_config
    from deephash.training.tune import run_tune

    base = load_config(args.config, **parse_sets(args.set))
    result = run_tune(base, parse_grid(args.param), args.out, cross_validate=args.cross_validate)
    print(
        json.dumps(
            {
                "best_params": result.best_params,
                "best_val_map": result.best_val_map,
                "test_map": result.test_metrics.get("map"),
                "test_knn_accuracy": result.test_metrics.get("knn_accuracy"),
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}/tune.md and tune.json")
    return 0
