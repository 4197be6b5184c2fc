"""``deephash features``: the backbone-feature baseline (features before the classifier)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from deephash.cli._common import add_data_args, add_device_arg


def register(sub: Any) -> None:
    p = sub.add_parser(
        "features",
        help="evaluate backbone features (random, ImageNet, file or run weights) as a baseline",
        description=(
            "Extract features from the layer before the classifier for the protocol's query and "
            "database sets, and write metrics.json, features.npz and tsne.png into --out."
        ),
    )
    add_data_args(p, dataset_required=True)
    p.add_argument("--backbone", default="small-cnn", help="backbone name (see `deephash models`)")
    p.add_argument(
        "--weights",
        help="imagenet, a state-dict file, or a deephash run folder (default: random init)",
    )
    p.add_argument(
        "--backbone-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a backbone option, repeatable (e.g. input_size=96 for efficientnet-lite*)",
    )
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--knn-k", type=int, default=10)
    p.add_argument("--precision-k", type=int, default=100)
    p.add_argument("--map-k", type=int, default=1000)
    p.add_argument("--tsne-samples", type=int, default=2000, help="0 disables the t-SNE plot")
    p.add_argument(
        "--normalize", action="store_true", help="L2-normalise the features (cosine retrieval)"
    )
    p.add_argument(
        "--cache",
        action="store_true",
        help="keep the features in the feature store ($DEEPHASH_CACHE_DIR, else ~/.cache/deephash) "
        "so that later runs on the same images reuse them",
    )
    p.add_argument("--no-progress", action="store_true")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deephash.cli.train import parse_sets
    from deephash.evaluation.features import extract_baseline

    metrics = extract_baseline(
        dataset=args.dataset,
        protocol=args.protocol,
        backbone=args.backbone,
        weights=args.weights,
        out=Path(args.out),
        data_dir=args.data_dir,
        download=args.download,
        seed=args.seed,
        batch_size=args.batch_size,
        knn_k=args.knn_k,
        precision_k=args.precision_k,
        map_k=args.map_k,
        tsne_samples=args.tsne_samples,
        device=args.device,
        progress=not args.no_progress,
        protocol_options=parse_sets(args.protocol_option),
        normalize=args.normalize,
        backbone_options=parse_sets(args.backbone_option),
        cache=args.cache,
    )
    keys = [
        "map",
        "map_at_k",
        "precision_at_k",
        "map_at_r",
        "precision_at_1",
        "knn_accuracy",
        "num_queries",
        "num_database",
    ]
    print(json.dumps({k: metrics[k] for k in keys}, indent=2))
    print(
        f"wrote {args.out}/metrics.json, features.npz" + (", tsne.png" if args.tsne_samples else "")
    )
    return 0
