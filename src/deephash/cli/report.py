"""``deephash report RUN_DIR...``: a markdown table of the headline metrics of run folders."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from deephash.run_folder import RunFolder

COLUMNS = [
    ("map", "mAP@all"),
    ("map_at_k", "mAP@k"),
    ("precision_at_k", "P@k"),
    ("map_at_r", "MAP@R"),
    ("r_precision", "R-prec."),
    ("precision_at_1", "P@1"),
    ("precision_hamming2", "P@H≤2"),
    ("knn_accuracy", "kNN acc."),
]


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="print a markdown table of runs' metrics.json")
    p.add_argument("run_dirs", nargs="+", help="run folders (or metrics.json files)")
    p.set_defaults(func=run)


def table(paths: list[Path]) -> str:
    """Markdown table: one row per run, headline metrics, code length, code usage and training
    time."""
    head = (
        "| run | bits | "
        + " | ".join(t for _, t in COLUMNS)
        + " | float mAP | distinct codes (largest bucket) | train s |"
    )
    lines = [head, "|" + "---|" * (len(COLUMNS) + 5)]
    for path in paths:
        f = RunFolder(path).metrics if path.is_dir() else path
        if not f.is_file():
            raise FileNotFoundError(f"{f} does not exist (has the run finished?)")
        m = json.loads(f.read_text())
        cells = [f"{m[k]:.4f}" if isinstance(m.get(k), float) else "-" for k, _ in COLUMNS]
        fmap = m.get("float", {}).get("map")
        cells.append(f"{fmap:.4f}" if fmap is not None else "-")
        cells.append(usage_cell(m.get("code_usage")))
        cells.append(f"{m.get('train_seconds', float('nan')):.0f}")
        lines.append(f"| {path} | {m.get('bits', '-')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def usage_cell(usage: dict[str, Any] | None) -> str:
    """``"306 / 10,000 (10.0%)"``: distinct codes of the database and its largest bucket's share."""
    if not usage:
        return "-"
    return (
        f"{usage['distinct_codes']:,} / {usage['num_codes']:,} "
        f"({100 * usage['largest_bucket_share']:.1f}%)"
    )


def run(args: argparse.Namespace) -> int:
    print(table([Path(p) for p in args.run_dirs]))
    return 0
