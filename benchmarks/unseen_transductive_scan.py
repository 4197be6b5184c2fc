# ruff: noqa: E731  (a research script)
"""Untrained ImageNet features for classes never seen, without any training: input size, backbone
size, pooled stages, and centring / whitening / ITQ fitted on the target images without labels.

Validation (``--split validation``): the class-disjoint folds of fashion-mnist-unseen (seed 0;
fold 0 holds out classes 2 and 4, fold 1 classes 0, 1 and 3; never the test classes 5-9), 10,000
held-out images per fold (2,000 queries), leave-one-out mAP@all as in
benchmarks/unseen_imagenet_scan.py, whose untrained 64 px row this reproduces.

Test (``--split test --recipe NAME``): the chosen recipe on a protocol's query / database (seeds
``--seeds``), the projection fitted on the database's features without labels, as compare's ITQ
rows do. Features go through the project's feature store (cached by pixels: seeds and protocols
reuse them). Writes benchmarks/results/unseen_transductive_<split>.json.

    python benchmarks/unseen_transductive_scan.py --split validation --arch efficientnet-lite0 --sizes 64 96 128
    python benchmarks/unseen_transductive_scan.py --split test --recipe ... --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deephash.data.datasets import load_dataset
from deephash.data.transforms import batch_transform
from deephash.evaluation.evaluator import retrieval_metrics
from deephash.evaluation.feature_store import FeatureStore, default_cache_dir
from deephash.hashing import ITQ
from deephash.models import create_backbone
from deephash.models.efficientnet_lite import INPUT_MEAN, INPUT_STD

ROOT = Path(__file__).resolve().parents[1]
FOLDS = {0: [2, 4], 1: [0, 1, 3]}  # held-out classes of fashion-mnist-unseen's folds (seed 0)
POOLS = ("head", "s5", "s6", "s7")  # pooled head features and stages 5-7 (global average)


class PooledStages(nn.Module):
    """An EfficientNet-Lite's pooled head features and its stages 5-7, globally average-pooled,
    concatenated: (B, 1280 + C5 + C6 + C7)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps: list[torch.Tensor] = []
        mods = self.backbone.stage_modules()[4:]
        hooks = [m.register_forward_hook(lambda m, i, o: maps.append(o)) for m in mods]
        try:
            head = self.backbone(x)
        finally:
            for h in hooks:
                h.remove()
        return torch.cat([head] + [m.float().mean((2, 3)) for m in maps], 1)


def extract(arch: str, size: int, images: np.ndarray) -> dict[str, np.ndarray]:
    """Pooled features of grey uint8 images (N, 28, 28), by part (POOLS), float32."""
    torch.manual_seed(0)
    bb = create_backbone(arch, weights="imagenet", in_channels=1, num_classes=0, input_size=size)
    net = PooledStages(bb).eval()
    store = FeatureStore(
        default_cache_dir() / "features",
        FeatureStore.key_for(net, scan="pooled-stages", size=size),
        dtype=torch.float32,
    )
    pre = lambda x: batch_transform(
        torch.from_numpy(np.ascontiguousarray(x)), (INPUT_MEAN,), (INPUT_STD,)
    )
    out = store.maps(net, images, pre, device=torch.device("cpu"), batch_size=500, desc=arch)
    with torch.no_grad():  # the stages' widths, from one image
        maps: list[torch.Tensor] = []
        mods = bb.stage_modules()[4:]
        hooks = [m.register_forward_hook(lambda m, i, o: maps.append(o)) for m in mods]
        bb(pre(images[:1]))
        for h in hooks:
            h.remove()
    widths = [bb.out_features] + [int(m.shape[1]) for m in maps]
    parts, start = {}, 0
    for name, w in zip(POOLS, widths):
        parts[name] = out[:, start : start + w].numpy()
        start += w
    return parts


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def combine(parts: dict[str, np.ndarray], pool: str) -> np.ndarray:
    """``head`` or e.g. ``s6+head``: each part L2-normalised, concatenated."""
    return np.concatenate([unit(parts[p]) for p in pool.split("+")], 1)


def transform(fit: np.ndarray, x: np.ndarray, kind: str) -> np.ndarray:
    """Fitted on ``fit`` (the target images, no labels), applied to ``x``: ``none`` (L2),
    ``centre`` (minus the target mean, L2), ``white256`` (PCA-whitened to 256 dims, L2),
    ``pw256`` (PCA to 256 dims, each divided by its standard deviation's square root, L2)."""
    f, x = unit(fit), unit(x)
    if kind == "none":
        return x
    mu = f.mean(0)
    if kind == "centre":
        return unit(x - mu)
    # white<d>: PCA-whitened to d dims; pw<d>: divided by the square root of the standard
    # deviation only (partial whitening, power 0.5)
    power = 0.5 if kind.startswith("white") else 0.25
    d = int(kind.removeprefix("white").removeprefix("pw"))
    cov = np.cov((f - mu).T)
    val, vec = np.linalg.eigh(cov)
    val, vec = val[::-1][:d], vec[:, ::-1][:, :d]
    return unit((x - mu) @ vec / (val + 1e-6 * val[0]) ** power)


def score(
    q: np.ndarray, yq: np.ndarray, db: np.ndarray, ydb: np.ndarray, loo: bool, seed: int = 0
) -> dict:
    r = retrieval_metrics(q, yq, db, ydb, leave_one_out=loo)
    itq = ITQ(48, seed=seed).fit(db)
    r2 = retrieval_metrics(itq.project(q), yq, itq.project(db), ydb, bits=48, leave_one_out=loo)
    out = {"float": round(r["map"], 4), "itq48": round(r2["map"], 4)}
    if not loo or len(q) != len(db):  # the test split: MAP@R too
        out.update(float_map_at_r=round(r["map_at_r"], 4), itq48_map_at_r=round(r2["map_at_r"], 4))
    return out


def validation(args: argparse.Namespace) -> dict:
    d = load_dataset("fashion-mnist")
    sel = np.where(~d.is_test & (d.data.labels < 5))[0]  # the training classes only
    labels = d.data.labels[sel]
    picks = {}
    for fold, held_classes in FOLDS.items():
        held = np.where(np.isin(labels, held_classes))[0]
        picks[fold] = np.random.default_rng(17).choice(held, args.per_fold, replace=False)
    rows = []
    for arch in args.arch:
        for size in args.sizes:
            every = np.concatenate([picks[0], picks[1]])
            t0 = time.perf_counter()
            parts = extract(arch, size, d.data.images[sel][every])
            secs = time.perf_counter() - t0
            n = args.per_fold
            per = {0: slice(0, n), 1: slice(n, 2 * n)}
            for pool in args.pools:
                for kind in args.transforms:
                    res = {}
                    for fold in (0, 1):
                        x = combine({k: v[per[fold]] for k, v in parts.items()}, pool)
                        y = labels[picks[fold]]
                        z = transform(x, x, kind)
                        nq = n // 5
                        res[fold] = score(z[:nq], y[:nq], z, y, True)
                    row = {
                        "arch": arch,
                        "size": size,
                        "pool": pool,
                        "fit": kind,
                        **{f"fold{f}_{m}": res[f][m] for f in (0, 1) for m in ("float", "itq48")},
                        "extract_s": round(secs, 1),
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    return {"split": "validation", "rows": rows}


def test(args: argparse.Namespace) -> dict:
    from deephash.data import default_protocol, load_protocol_data

    recipe = args.recipe
    if recipe in ("best-itq48", "best-float"):  # the validation scan's best on both folds' mean
        metric = recipe.removeprefix("best-")
        rows_v = json.loads((Path(args.out) / "unseen_transductive_validation.json").read_text())
        best = max(rows_v["rows"], key=lambda r: r[f"fold0_{metric}"] + r[f"fold1_{metric}"])
        recipe = f"{best['arch']}:{best['size']}:{best['pool']}:{best['fit']}"
        print(f"chosen on validation for {metric}: {recipe} ({best})", flush=True)
    arch, size, pool, kind = recipe.split(":")
    rows = []
    for protocol in args.protocols:
        for seed in args.seeds:
            data = load_protocol_data(default_protocol(protocol), seed=seed)
            loo = data.protocol.leave_one_out
            q_img, db_img = data.query.images, data.database.images
            both = q_img if loo else np.concatenate([q_img, db_img])
            parts = extract(arch, int(size), both)
            x = combine(parts, pool)
            q, db = (x, x) if loo else (x[: len(q_img)], x[len(q_img) :])
            zq, zdb = transform(db, q, kind), transform(db, db, kind)
            res = score(zq, data.query.labels, zdb, data.database.labels, loo, seed)
            row = {"protocol": protocol, "seed": seed, "recipe": recipe, "chosen": args.recipe}
            row.update(res)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return {"split": "test", "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", choices=["validation", "test"], default="validation")
    ap.add_argument("--arch", nargs="+", default=["efficientnet-lite0"])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64])
    ap.add_argument("--pools", nargs="+", default=["head", "s6+head", "s5+s6+head"])
    ap.add_argument("--transforms", nargs="+", default=["none", "centre", "pw256", "white256"])
    ap.add_argument(
        "--recipe", help="test: ARCH:SIZE:POOL:FIT, e.g. efficientnet-lite0:96:head:centre"
    )
    ap.add_argument("--protocols", nargs="+", default=["fashion-mnist-unseen", "fashion-mnist"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-fold", type=int, default=10000, help="held-out images per fold")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    result = validation(args) if args.split == "validation" else test(args)
    result["command"] = "python benchmarks/unseen_transductive_scan.py " + " ".join(
        __import__("sys").argv[1:]
    )
    out = Path(args.out) / f"unseen_transductive_{args.split}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():  # several scans append their rows
        old = json.loads(out.read_text())
        result["rows"] = old.get("rows", []) + result["rows"]
        result["command"] = old.get("command", "") + " ; " + result["command"]
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
