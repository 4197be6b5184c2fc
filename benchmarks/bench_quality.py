"""Quality bars on Fashion-MNIST (query = test 10,000, database = train 60,000, 2 CPU cores).

Trains each shipped "best" recipe with ``deephash train --config ...`` (or reuses a finished run
folder), then checks its metrics.json against the targets and writes
``benchmarks/results/quality.json``:

- configs/best-metric.yaml: float-embedding mAP@all >= 0.90 and kNN accuracy >= 0.92, within 15
  minutes of training;
- configs/best-hash-48.yaml: 48-bit Hamming mAP@all >= 0.93 within 15 minutes;
- configs/best-hash-12.yaml: 12-bit Hamming mAP@all >= 0.90 within 15 minutes.

Usage: python benchmarks/bench_quality.py [--only best-metric] [--runs-dir runs/quality]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "best-metric": {"map": 0.90, "knn_accuracy": 0.92},
    "best-hash-48": {"map": 0.93},
    "best-hash-12": {"map": 0.90},
}
BUDGET_SECONDS = 15 * 60


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="+", choices=sorted(TARGETS), help="recipes to run")
    parser.add_argument("--runs-dir", default=str(ROOT / "runs" / "quality"))
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    args = parser.parse_args(argv)
    results_path = Path(args.out)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    ok = True
    for name in args.only or sorted(TARGETS):
        run_dir = Path(args.runs_dir) / name
        if not (run_dir / "metrics.json").exists():
            cmd = [
                sys.executable,
                "-m",
                "deephash.cli.main",
                "train",
                "--config",
                str(ROOT / "configs" / f"{name}.yaml"),
                "--no-progress",
            ]
            cmd += (
                ["--resume", str(run_dir)]
                if (run_dir / "last.pt").exists()
                else ["--out", str(run_dir)]
            )
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, cwd=ROOT)
            print(f"{name}: wall time {time.perf_counter() - t0:.0f} s (training + evaluation)")
        m = json.loads((run_dir / "metrics.json").read_text())
        checks = {key: (m[key], target, m[key] >= target) for key, target in TARGETS[name].items()}
        within = m["train_seconds"] <= BUDGET_SECONDS
        passed = within and all(c[2] for c in checks.values())
        ok &= passed
        results[name] = {
            "run_dir": str(run_dir),
            "train_seconds": m["train_seconds"],
            "within_budget": within,
            "metrics": {
                k: m.get(k)
                for k in ("map", "map_at_k", "precision_at_k", "precision_hamming2", "knn_accuracy")
            },
            "float_map": m.get("float", {}).get("map"),
            "targets": {
                k: {"value": v, "target": t, "met": met} for k, (v, t, met) in checks.items()
            },
            "passed": passed,
        }
        line = ", ".join(
            f"{k} {v:.4f} (target {t}) {'OK' if met else 'MISSED'}"
            for k, (v, t, met) in checks.items()
        )
        print(
            f"{name}: {line}; train_seconds {m['train_seconds']:.0f} {'OK' if within else 'OVER BUDGET'}"
        )
    results_path.parent.mkdir(parents=True, exist_ok=True)
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
