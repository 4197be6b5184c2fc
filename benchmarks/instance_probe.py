"""Instance-aware hashing on validation: does a recipe keep its class ranking and find copies?

Trains one recipe (a config plus ``--set`` overrides, usually a short budget) with per-epoch
validation and no final fit, then measures on the *validation* split only (the test split is not
touched; this is for choosing instance weights):

- class: the validation mAP@all of the retrieval code (validation queries against the training
  sample, as during training), and the code usage of the validation images' codes;
- copies: ``--sources`` validation images (seeded) are the database's items among all validation
  images; their copies under every transform of :mod:`deephash.data.copies` are the queries. R@1
  (the source ranked first, ties by the smaller id) for four rankings of the same candidates:
  ``code`` (Hamming distance of the retrieval code), ``instance`` (Hamming distance of the extra
  instance bits), ``code+instance`` (code distance first, instance distance breaks its ties) and
  ``phash`` (imagehash's 64-bit pHash, the untrained peer).

    python benchmarks/instance_probe.py --config configs/best-hash-48.yaml --name w1 \\
        --set instance_bits=64 --set instance_weight=1 --set epochs=3 --set fit_validation=false
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
from deephash.hashing import code_usage
from deephash.training import recipe
from deephash.training.config import load_config
from deephash.training.runs import load_run
from deephash.training.trainer import train

ROOT = Path(__file__).resolve().parents[1]


def parse_sets(items: list[str]) -> dict[str, Any]:
    import yaml

    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = yaml.safe_load(value)
    return out


def source_first(
    primary: np.ndarray, sources: np.ndarray, secondary: np.ndarray | None = None
) -> np.ndarray:
    """bool (nq,): the source has the smallest (primary, secondary, id) of its row; int (nq, n)."""
    rows = np.arange(len(sources))
    second = np.zeros_like(primary) if secondary is None else secondary
    p, c = primary[rows, sources][:, None], second[rows, sources][:, None]
    ids = np.arange(primary.shape[1])[None, :]
    tied = (primary == p) & ((second < c) | ((second == c) & (ids < sources[:, None])))
    return ~((primary < p) | tied).any(axis=1)


@torch.no_grad()
def encode_parts(
    run: Any, images: np.ndarray, batch: int = 512
) -> tuple[np.ndarray, np.ndarray | None]:
    """Packed retrieval codes (n, bits / 8) and packed instance codes (or None)."""
    codes, inst = [], []
    for s in range(0, len(images), batch):
        x = run.preprocess(images[s : s + batch]).to(run.device)
        c, i = run.net.with_instance(x)
        codes.append(c.cpu().numpy())
        inst.append(i.cpu().numpy())
    c_all, i_all = np.concatenate(codes), np.concatenate(inst)
    return pack_bits(sign(c_all)), (pack_bits(sign(i_all)) if i_all.shape[1] else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "best-hash-48.yaml"))
    p.add_argument("--set", action="append", default=[], help="KEY=VALUE config overrides")
    p.add_argument("--name", required=True)
    p.add_argument("--runs", default=str(ROOT / "runs" / "instance-probe"))
    p.add_argument("--sources", type=int, default=1000)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "instance_probe"))
    args = p.parse_args()

    overrides = {"fit_validation": False, "tsne_samples": 0, **parse_sets(args.set)}
    cfg = load_config(args.config, **overrides)
    run_dir = Path(args.runs) / args.name
    t0 = time.perf_counter()
    if not (run_dir / "metrics.json").exists():
        train(cfg, run_dir, resume=(run_dir / "last.pt").exists())
    train_s = time.perf_counter() - t0
    history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    run = load_run(run_dir)
    data = recipe.load_data(run.config)
    val = data.validation.images
    codes, inst = encode_parts(run, val)
    rng = np.random.default_rng(0)
    sources = np.sort(rng.choice(len(val), min(args.sources, len(val)), replace=False))
    ph_db = perceptual(val, "phash")
    result: dict[str, Any] = {
        "name": args.name,
        "overrides": overrides,
        "val_map": max(h.get("val_map", 0.0) for h in history),
        "val_map_last": history[-1].get("val_map"),
        "epochs_run": len(history),
        "train_seconds": round(train_s, 1),
        "code_usage_validation": code_usage(codes, bits=run.config.bits).to_dict(),
        "copies": {},
    }
    ib = run.config.instance_bits
    for t in list_copy_transforms():
        copies = apply_copy_transform(t, val[sources], seed=1)
        qc, qi = encode_parts(run, copies)
        d_code = hamming_distance_matrix(qc, codes).astype(np.int64)
        row = {"code": float(source_first(d_code, sources).mean())}
        if inst is not None and qi is not None:
            d_inst = hamming_distance_matrix(qi, inst).astype(np.int64)
            row["instance"] = float(source_first(d_inst, sources).mean())
            row["code+instance"] = float(source_first(d_code * (ib + 1) + d_inst, sources).mean())
        d_ph = hamming_distance_matrix(perceptual(copies, "phash"), ph_db).astype(np.int64)
        row["phash"] = float(source_first(d_ph, sources).mean())
        result["copies"][t] = row
        print(t, row, flush=True)
    keys = list(next(iter(result["copies"].values())))
    result["copies_mean"] = {
        k: float(np.mean([r[k] for r in result["copies"].values()])) for k in keys
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("val_map", "code_usage_validation", "copies_mean")}))


if __name__ == "__main__":
    main()
