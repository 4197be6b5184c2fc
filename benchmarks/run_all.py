"""Run every speed benchmark in turn (each prints a table and writes benchmarks/results/*.json).

The quality benchmark (bench_quality.py) trains models for up to ~15 minutes each and is run on
its own: ``python benchmarks/bench_quality.py``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEED = ["bench_metrics.py", "bench_miners.py", "bench_index.py"]


def main() -> int:
    failed = []
    for name in SPEED:
        print(f"\n=== {name} ===", flush=True)
        if subprocess.run([sys.executable, str(HERE / name)]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
