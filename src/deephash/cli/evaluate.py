"""``deephash evaluate RUN_DIR``: recompute a run's metrics.json from its checkpoint."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from deephash.cli._common import add_device_arg


def register(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="recompute RUN_DIR/metrics.json from the run's best checkpoint",
        description="Re-embed the protocol's query and database sets with the run's best checkpoint "
        "and rewrite metrics.json (training facts such as train_seconds are kept).",
    )
    p.add_argument("run_dir", help="a deephash run folder")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--data-dir", help="where the dataset lies, if not where training found it")
    p.add_argument("--no-plots", action="store_true", help="skip t-SNE and PR plots")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from deephash.atomic_io import atomic_write_json
    from deephash.run_folder import RunFolder
    from deephash.training import recipe
    from deephash.training.final_eval import evaluate_network
    from deephash.training.runs import load_run

    run_dir = Path(args.run_dir)
    loaded = load_run(run_dir, device=args.device, checkpoint=args.checkpoint)
    cfg = loaded.config
    if args.data_dir:
        cfg.data_dir = args.data_dir
    if args.no_plots:
        cfg.tsne_samples = 0
    data = recipe.load_data(cfg)
    metrics = evaluate_network(cfg, loaded.net, data, loaded.device, run_dir=run_dir)
    old_path = RunFolder(run_dir).metrics
    if old_path.exists():
        old = json.loads(old_path.read_text())
        for key in ("train_seconds", "epochs_run", "best_epoch", "best_val_map"):
            if key in old:
                metrics[key] = old[key]
    atomic_write_json(old_path, metrics)
    from deephash.cli.train import summary

    print(json.dumps(summary(metrics), indent=2))
    return 0
