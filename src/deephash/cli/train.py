"""``deephash train``: train a metric-learning or hashing model from a YAML config and/or flags."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import yaml

from deephash.cli._common import add_data_args, add_device_arg

# flag name -> config key, for flags that map one-to-one
_FLAGS = {
    "dataset": "dataset",
    "protocol": "protocol",
    "data_dir": "data_dir",
    "backbone": "backbone",
    "weights": "weights",
    "embedding_dim": "embedding_dim",
    "bits": "bits",
    "head": "head",
    "loss": "loss",
    "miner": "miner",
    "sampling": "sampling",
    "p": "p",
    "k": "k",
    "batch_size": "batch_size",
    "optimizer": "optimizer",
    "lr": "lr",
    "lr_schedule": "lr_schedule",
    "epochs": "epochs",
    "batches_per_epoch": "batches_per_epoch",
    "time_limit": "time_limit_minutes",
    "seed": "seed",
    "device": "device",
    "threads": "num_threads",
}


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train embeddings (triplet/contrastive/...) or hash codes (--bits)",
        description=(
            "Train a model. Settings come from --config (YAML), then flags, then --set KEY=VALUE. "
            "The resolved config, checkpoints, history.jsonl, metrics.json and plots go to --out."
        ),
    )
    p.add_argument("--config", help="YAML recipe, e.g. configs/best-metric.yaml")
    p.add_argument("--out", help="run folder (required unless --resume)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from RUN_DIR")
    add_data_args(p)
    p.add_argument("--backbone")
    p.add_argument("--weights", help="imagenet, a state-dict file, or a deephash run folder")
    p.add_argument("--embedding-dim", type=int)
    p.add_argument("--bits", type=int, help="train a hashing model with codes of this length")
    p.add_argument("--head", help="hash head: tanh, sign-ste, divide-encode")
    p.add_argument("--loss", help="loss name, e.g. batch-hard, triplet-margin, dtsh")
    p.add_argument("--miner", help="miner name, e.g. semi-hard, hardest, random-hard, all")
    p.add_argument("--margin", type=float, help="loss margin (sets loss_options.margin)")
    p.add_argument("--sampling", help="pk (default), random, offline-triplets, offline-pairs")
    p.add_argument("--p", type=int, help="classes per P×K batch")
    p.add_argument("--k", type=int, help="samples per class per P×K batch")
    p.add_argument("--batch-size", type=int, help="batch size for random/offline sampling")
    p.add_argument("--optimizer", help="adam, adamw or sgd")
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-schedule", help="cosine, step or constant")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batches-per-epoch", type=int)
    p.add_argument("--time-limit", type=float, help="stop training after this many minutes")
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any config key, YAML value; dotted keys reach into mappings (loss_options.alpha=4)",
    )
    p.add_argument("--no-progress", action="store_true")
    add_device_arg(p)
    p.set_defaults(func=run, device=None)


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["a=1", "loss_options.alpha=4"]`` -> ``{"a": 1, "loss_options": {"alpha": 4}}``."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        value = yaml.safe_load(raw)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def config_from_args(args: argparse.Namespace) -> Any:
    from deephash.training.config import load_config

    overrides: dict[str, Any] = {
        key: getattr(args, flag)
        for flag, key in _FLAGS.items()
        if getattr(args, flag, None) is not None
    }
    if args.download:
        overrides["download"] = True
    if args.no_progress:
        overrides["progress"] = False
    if args.protocol_option:
        overrides["protocol_options"] = parse_sets(args.protocol_option)
    if args.margin is not None:
        overrides["loss_options"] = {"margin": args.margin}
    for key, value in parse_sets(args.set).items():
        if isinstance(value, dict) and isinstance(overrides.get(key), dict):
            overrides[key] = {**overrides[key], **value}
        else:
            overrides[key] = value
    return load_config(args.config, **overrides)


def run(args: argparse.Namespace) -> int:
    from deephash.run_folder import RunFolder
    from deephash.training.config import load_config
    from deephash.training.trainer import train

    if args.resume:
        run_dir = Path(args.resume)
        cfg = load_config(RunFolder(run_dir).config)
        result = train(cfg, run_dir, resume=True)
    else:
        if not args.out:
            raise ValueError("--out RUN_DIR is required (or --resume RUN_DIR to continue a run)")
        cfg = config_from_args(args)
        result = train(cfg, Path(args.out))
    if result.metrics:
        print(json.dumps(summary(result.metrics), indent=2))
        print(f"run folder: {result.run_dir}")
    return 0


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = [
        "map",
        "map_at_k",
        "precision_at_k",
        "map_at_r",
        "precision_at_1",
        "precision_hamming2",
        "knn_accuracy",
        "train_seconds",
    ]
    out = {k: metrics[k] for k in keys if k in metrics}
    if "float" in metrics:
        out["float_map"] = metrics["float"]["map"]
    usage = metrics.get("code_usage")
    if usage:
        out["distinct_codes"] = usage["distinct_codes"]
        out["largest_bucket_share"] = usage["largest_bucket_share"]
    return out
