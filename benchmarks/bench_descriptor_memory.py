"""Memory a collection holds per item for binary instance descriptors: the packed rows and the
in-process index over them (multi-index hashing, as ``collection/descriptor_index.py`` builds it).

Usage: python benchmarks/bench_descriptor_memory.py [--sizes 100000 200000] [--bits 64]
       [--out benchmarks/results/descriptor_memory.json]

Random descriptors (uniform bits: MIH's tables are then as even as they get); memory is what
``tracemalloc`` sees allocated by building the index (numpy arrays are traced), after a warm-up
build that compiles the kernels, divided by the item count.
"""

from __future__ import annotations

import argparse
import json
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

from deephash.codes import code_bytes
from deephash.collection.descriptor_index import DESCRIPTOR_INDEX, DescriptorIndex
from deephash.collection.view import View


def index_bytes(n: int, bits: int, rng: np.random.Generator) -> int:
    """Bytes allocated (and still held) by building the descriptor index of n random rows."""
    rows = rng.integers(0, 256, (n, code_bytes(bits)), dtype=np.uint8)
    view = View(np.arange(n, dtype=np.int64), np.zeros((n, 1), np.uint8), {}, n, descriptors=rows)
    tracemalloc.start()
    built = DescriptorIndex(bits, threading.Lock()).built(view)
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert built.descriptor_view is not None and built.descriptor_view.main is not None
    return held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000])
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/descriptor_memory.json")
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    index_bytes(1000, args.bits, rng)  # compiles the kernels
    rows: list[dict[str, Any]] = []
    for n in args.sizes:
        held = index_bytes(n, args.bits, rng)
        rows.append({
            "items": n,
            "descriptor_row_bytes_per_item": code_bytes(args.bits),
            "index_bytes_per_item": round(held / n, 2),
        })  # fmt: skip
        print(
            f"{n:>9,d} items, {args.bits}-bit descriptors: rows {code_bytes(args.bits)} B/item, "
            f"{DESCRIPTOR_INDEX} index {held / n:.1f} B/item"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"bits": args.bits, "index": DESCRIPTOR_INDEX, "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
