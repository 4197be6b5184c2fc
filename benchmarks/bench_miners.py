"""Miner speed: ms per batch for deephash's miners vs pytorch-metric-learning's, same embeddings.

Usage: python benchmarks/bench_miners.py [--batch 256] [--dim 64] [--classes 32] [--repeats 50]
       [--threads 1] [--device cpu] [--out benchmarks/results/miners.json]

Every miner gets the same L2-normalized-Euclidean setting and the same random batch (``classes``
labels × ``batch // classes`` samples each). Each timing is the median over ``repeats`` calls
after warm-up, wall clock, including the distance matrix (both libraries compute it inside the
miner call). Pairs that implement the same selection rule are compared side by side, and the
triplet counts are printed so the correspondence can be checked:

    ours semi-hard(select="all")    <-> PML TripletMarginMiner(type_of_triplets="semihard")
    ours random-hard(select="all")  <-> PML TripletMarginMiner(type_of_triplets="all")
    ours random-hard(margin=0, all) <-> PML TripletMarginMiner(type_of_triplets="hard")
    ours batch-hard                 <-> PML BatchHardMiner

PML's TripletMarginMiner returns every triplet meeting its condition; our default variants
(one triplet per anchor-positive pair) are timed too and reported against the same PML row.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from deephash.miners import create_miner


def _time(fn: Callable[[], Any], repeats: int, device: torch.device) -> tuple[float, int]:
    out = fn()
    for _ in range(2):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), len(out[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--classes", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--margin", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: default)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/miners.json")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    from pytorch_metric_learning import miners as pml

    gen = torch.Generator().manual_seed(args.seed)
    x = torch.randn(args.batch, args.dim, generator=gen).to(device)
    y = torch.arange(args.classes).repeat_interleave(args.batch // args.classes)
    y = y[torch.randperm(args.batch, generator=gen)].to(device)
    m = args.margin

    pml_rows: dict[str, Any] = {
        "pml TripletMarginMiner(semihard)": pml.TripletMarginMiner(m, type_of_triplets="semihard"),
        "pml TripletMarginMiner(all)": pml.TripletMarginMiner(m, type_of_triplets="all"),
        "pml TripletMarginMiner(hard)": pml.TripletMarginMiner(m, type_of_triplets="hard"),
        "pml BatchHardMiner": pml.BatchHardMiner(),
    }
    # (our name, our miner, the PML row it corresponds to, same triplet set?)
    ours: list[tuple[str, Any, str, bool]] = [
        (
            "semi-hard(select=all)",
            create_miner("semi-hard", margin=m, select="all"),
            "pml TripletMarginMiner(semihard)",
            True,
        ),
        (
            "semi-hard(select=hardest)",
            create_miner("semi-hard", margin=m),
            "pml TripletMarginMiner(semihard)",
            False,
        ),
        (
            "random-hard(select=all)",
            create_miner("random-hard", margin=m, select="all"),
            "pml TripletMarginMiner(all)",
            True,
        ),
        (
            "random-hard(select=one)",
            create_miner("random-hard", margin=m),
            "pml TripletMarginMiner(all)",
            False,
        ),
        ("all(margin=m)", create_miner("all", margin=m), "pml TripletMarginMiner(all)", True),
        (
            "random-hard(margin=0, select=all)",
            create_miner("random-hard", margin=0.0, select="all"),
            "pml TripletMarginMiner(hard)",
            True,
        ),
        ("hardest", create_miner("hardest"), "pml TripletMarginMiner(hard)", False),
        ("batch-hard", create_miner("batch-hard"), "pml BatchHardMiner", True),
        ("distance-weighted", create_miner("distance-weighted"), "pml BatchHardMiner", False),
        (
            "curriculum(progress=0.5)",
            create_miner("curriculum", margin=m, progress=0.5),
            "pml TripletMarginMiner(semihard)",
            False,
        ),
        ("all", create_miner("all"), "pml TripletMarginMiner(all)", False),
    ]

    pml_ms = {}
    results = []
    for name, miner in pml_rows.items():
        ms, n = _time(lambda miner=miner: miner(x, y), args.repeats, device)
        pml_ms[name] = (ms, n)
    for name, miner, ref, same in ours:
        ms, n = _time(lambda miner=miner: miner(x, y), args.repeats, device)
        ref_ms, ref_n = pml_ms[ref]
        results.append(
            {
                "miner": name,
                "ms": ms,
                "triplets": n,
                "pml": ref,
                "pml_ms": ref_ms,
                "pml_triplets": ref_n,
                "same_rule": same,
                "speedup": ref_ms / ms,
            }
        )

    print(
        f"B={args.batch} D={args.dim} labels={args.classes}x{args.batch // args.classes} "
        f"margin={m} device={device} threads={torch.get_num_threads()}"
    )
    print(
        f"{'deephash miner':36s} {'ms':>8s} {'#trip':>8s}   {'vs PML':34s} {'ms':>8s} "
        f"{'#trip':>8s} {'speedup':>8s}"
    )
    for r in results:
        tag = "" if r["same_rule"] else " *"
        print(
            f"{r['miner']:36s} {r['ms']:8.2f} {r['triplets']:8d}   {r['pml']:34s} "
            f"{r['pml_ms']:8.2f} {r['pml_triplets']:8d} {r['speedup']:7.1f}x{tag}"
        )
    print(
        "* different rule (one triplet per anchor-positive pair, or our own miner): "
        "speed shown for reference only"
    )

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "config": {
            "batch": args.batch,
            "dim": args.dim,
            "classes": args.classes,
            "margin": m,
            "repeats": args.repeats,
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "processor": platform.processor(),
        },
        "pml_ms": {k: {"ms": v[0], "triplets": v[1]} for k, v in pml_ms.items()},
        "results": results,
    }
    out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
