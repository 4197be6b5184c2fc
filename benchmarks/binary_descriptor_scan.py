"""Which compact binary descriptor finds copies? A scan on validation copies only.

For a hashing run: the database is the validation split (``--database`` images, seeded), queries
are copies of ``--sources`` of them under every transform of :mod:`deephash.data.copies`. Each
candidate descriptor ranks the whole database by (descriptor distance, code Hamming distance, id),
which is what :class:`deephash.index.binary_rerank.BinaryRerankIndex` returns once the source is
among its descriptor candidates; R@1 is the share of copies whose source comes first.

Candidates: the float ``early-stages`` descriptor (864 float16 values, 1,728 bytes; cosine) as the
reference; its sign after PCA (``pca-b``) or after ITQ (``itq-b``) to b bits, fitted without
labels on ``--fit`` training images; the run's learned instance bits when it has them; and
combinations (concatenated bits: their Hamming distances add).

    python benchmarks/binary_descriptor_scan.py --run runs/demo/best-hash-48
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench_copies import perceptual  # this folder is on sys.path when run
from deephash.codes import hamming_distance_matrix, pack_bits, sign
from deephash.data.copies import apply_copy_transform, list_copy_transforms
from deephash.hashing import ITQ
from deephash.models.descriptors import compute_descriptors
from deephash.training import recipe
from deephash.training.runs import load_run
from instance_probe import source_first

ROOT = Path(__file__).resolve().parents[1]


@torch.no_grad()
def describe(run: Any, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(packed codes, early-stages descriptors float32 (n, D), instance outputs (n, I))."""
    codes, desc, inst = [], [], []
    for s in range(0, len(images), 500):
        x = run.preprocess(images[s : s + 500]).to(run.device)
        d, _ = compute_descriptors(run.net, x, "early-stages")
        c, i = run.net.with_instance(x)
        codes.append(c.cpu().numpy())
        desc.append(d.cpu().numpy().astype(np.float16).astype(np.float32))
        inst.append(i.cpu().numpy())
    return pack_bits(sign(np.concatenate(codes))), np.concatenate(desc), np.concatenate(inst)


def ratio(primary: np.ndarray, code_dist: np.ndarray, sources: np.ndarray) -> float:
    """Share of rows whose source has the smallest (primary, code distance, id)."""
    return float(source_first(primary, sources, code_dist).mean())


def add_phash(binary: dict[str, np.ndarray], images: np.ndarray) -> None:
    """imagehash's 64-bit pHash of the images, alone and appended to every other descriptor."""
    ph = perceptual(images, "phash")
    for name in list(binary):
        binary[f"{name}+phash"] = np.concatenate([binary[name], ph], axis=1)
    binary["phash"] = ph


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--run", required=True)
    p.add_argument("--sources", type=int, default=1000)
    p.add_argument(
        "--fit", type=int, default=20000, help="training images the projections are fitted on"
    )
    p.add_argument("--bits", type=int, nargs="+", default=[64, 128, 256, 512])
    p.add_argument(
        "--out", default=str(ROOT / "benchmarks" / "results" / "binary_descriptor_scan.json")
    )
    args = p.parse_args()

    t0 = time.perf_counter()
    run = load_run(args.run)
    data = recipe.load_data(run.config)
    rng = np.random.default_rng(0)
    fit_idx = np.sort(
        rng.choice(len(data.train.images), min(args.fit, len(data.train.images)), replace=False)
    )
    _, fit_desc, _ = describe(run, data.train.images[fit_idx])
    val = data.validation.images
    db_codes, db_desc, db_inst = describe(run, val)
    sources = np.sort(rng.choice(len(val), min(args.sources, len(val)), replace=False))

    projections: dict[str, Any] = {}
    for b in args.bits:
        projections[f"itq-{b}"] = ITQ(b, seed=0).fit(fit_desc)

    def binarise(desc: np.ndarray, inst: np.ndarray) -> dict[str, np.ndarray]:
        out = {name: pack_bits(sign(m.project(desc))) for name, m in projections.items()}
        if inst.shape[1]:
            out["instance"] = pack_bits(sign(inst))
            for name in list(projections):
                out[f"{name}+instance"] = np.concatenate([out[name], out["instance"]], axis=1)
        return out

    db_bin = binarise(db_desc, db_inst)
    add_phash(db_bin, val)
    result: dict[str, Any] = {
        "run": args.run,
        "database": len(val),
        "sources": len(sources),
        "r1": {},
    }
    for t in list_copy_transforms():
        copies = apply_copy_transform(t, val[sources], seed=1)
        q_codes, q_desc, q_inst = describe(run, copies)
        code_dist = hamming_distance_matrix(q_codes, db_codes).astype(np.int64)
        row = {"early-stages float": ratio(-(q_desc @ db_desc.T), code_dist, sources)}
        q_all = binarise(q_desc, q_inst)
        add_phash(q_all, copies)
        for name, q_bin in q_all.items():
            row[name] = ratio(
                hamming_distance_matrix(q_bin, db_bin[name]).astype(np.int64), code_dist, sources
            )
        row["codes alone"] = ratio(code_dist, np.zeros_like(code_dist), sources)
        result["r1"][t] = row
        print(t, {k: round(v, 3) for k, v in row.items()}, flush=True)
    names = list(next(iter(result["r1"].values())))
    result["mean"] = {n: float(np.mean([r[n] for r in result["r1"].values()])) for n in names}
    result["bytes"] = {n: int(db_bin[n].shape[1]) for n in db_bin} | {
        "early-stages float": 2 * db_desc.shape[1]
    }
    result["seconds"] = round(time.perf_counter() - t0, 1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["mean"], indent=1))


if __name__ == "__main__":
    main()
