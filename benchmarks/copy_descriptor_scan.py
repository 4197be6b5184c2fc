"""Choose the re-rank descriptor on transformed copies of VALIDATION images (never the test split).

Database: the protocol's validation images (5,000 for fashion-mnist, 500 per class); queries: the
copies of ``--queries`` of them (seeded) under every copy transform. Each descriptor candidate
re-ranks the query's Hamming top-k' candidates (the run's codes, ties by id) and is also searched
exhaustively. Reports R@1 of the source per transform and writes JSON.

    python benchmarks/copy_descriptor_scan.py runs/best-hash-48 --out benchmarks/results/copy_descriptor_scan.json

The model of a final fit (``fit_validation: true``) has seen these images in training, as it has
seen every image of the standard database; their copies it has not.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deephash.codes import pack_bits, sign
from deephash.data.copies import apply_copy_transform, list_copy_transforms
from deephash.index import create_index
from deephash.models.descriptors import _grid, _stage_maps, _unit
from deephash.training import recipe
from deephash.training.runs import load_run


@torch.no_grad()
def raw_parts(run, images: np.ndarray, batch: int = 1000) -> dict[str, np.ndarray]:
    """Everything the candidates are built from, float32 per image."""
    parts: dict[str, list[np.ndarray]] = {}
    for s in range(0, len(images), batch):
        x = run.preprocess(images[s : s + batch]).to(run.device)
        maps, out = _stage_maps(run.net, x)
        feats = run.net.backbone(x)
        got = {
            "out": out,
            "backbone": feats,
            "x7": _grid(x, 7),
        }
        for i, m in enumerate(maps):
            for side in (1, 2, 3, 4):
                if side <= m.shape[-1]:
                    got[f"s{i + 1}g{side}"] = _grid(m, side)
            if i < 2:
                for sigma in (1.0, 2.0):
                    got[f"s{i + 1}g3b{sigma:g}"] = _grid(blur(m, sigma / (i + 1)), 3)
        for k, v in got.items():
            parts.setdefault(k, []).append(v.float().cpu().numpy())
    return {k: np.concatenate(v) for k, v in parts.items()}


def blur(fmap: torch.Tensor, sigma: float) -> torch.Tensor:
    """Depthwise Gaussian blur of a map (B, C, H, W), sigma in map pixels, edges replicated."""
    radius = max(1, round(2 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    c = fmap.shape[1]
    x = nn.functional.pad(fmap.float(), (radius,) * 4, mode="replicate")
    x = nn.functional.conv2d(x, g.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return nn.functional.conv2d(x, g.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def unit(x: np.ndarray) -> np.ndarray:
    return _unit(torch.from_numpy(x)).numpy()


def candidates(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    u = {k: unit(v) for k, v in p.items() if k != "out"}
    c = {
        "head": unit(p["out"]),
        "backbone": u["backbone"],
        "conv (s3 3x3)": u["s3g3"],
        "s2 3x3": u["s2g3"],
        "s1 3x3": u["s1g3"],
        "s1 4x4": u["s1g4"],
        "stages 3x3": unit(np.concatenate([u["s1g3"], u["s2g3"], u["s3g3"]], 1)),
        "stages 2x2": unit(np.concatenate([u["s1g2"], u["s2g2"], u["s3g2"]], 1)),
        "stages 4x4 (s3 3x3)": unit(np.concatenate([u["s1g4"], u["s2g4"], u["s3g3"]], 1)),
        "s1+s2 3x3": unit(np.concatenate([u["s1g3"], u["s2g3"]], 1)),
        "s1+s2 3x3 sqrt": unit(
            np.concatenate([unit(np.sqrt(p["s1g3"])), unit(np.sqrt(p["s2g3"]))], 1)
        ),
        "s1+s2 4x4": unit(np.concatenate([u["s1g4"], u["s2g4"]], 1)),
        "s1+s2 3x3 + s3 3x3/2": unit(np.concatenate([u["s1g3"], u["s2g3"], 0.5 * u["s3g3"]], 1)),
        "s1+s2 3x3 blur1": unit(np.concatenate([u["s1g3b1"], u["s2g3b1"]], 1)),
        "s1+s2 3x3 blur2": unit(np.concatenate([u["s1g3b2"], u["s2g3b2"]], 1)),
        "s2 2x2": u["s2g2"],
        "s1+s2 2x2": unit(np.concatenate([u["s1g2"], u["s2g2"]], 1)),
        "s1 2x2 + s2 3x3": unit(np.concatenate([u["s1g2"], u["s2g3"]], 1)),
        "stages 3x3 + backbone": unit(
            np.concatenate([u["s1g3"], u["s2g3"], u["s3g3"], u["backbone"]], 1)
        ),
        "pixels 7x7 (no model)": unit(p["x7"] - p["x7"].mean(1, keepdims=True)),
    }
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--candidates", type=int, nargs="+", default=[1000])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    run = load_run(args.run)
    data = recipe.load_data(run.config)
    db = np.ascontiguousarray(data.validation.images)
    n = len(db)
    rng = np.random.default_rng(0)
    src = np.sort(rng.choice(n, size=min(args.queries, n), replace=False))
    t0 = time.time()
    db_parts = raw_parts(run, db)
    db_codes = pack_bits(sign(db_parts["out"]))
    db_desc = candidates(db_parts)
    index = create_index("flat", run.config.bits or 0)
    index.add(db_codes)
    table: dict[str, dict[str, dict[str, float]]] = {}
    for t in list_copy_transforms():
        q_parts = raw_parts(run, apply_copy_transform(t, db[src], seed=1))
        q_codes = pack_bits(sign(q_parts["out"]))
        cand_sets = {kp: index.search(q_codes, min(kp, n))[1] for kp in args.candidates}
        q_desc = candidates(q_parts)
        for name, d in q_desc.items():
            sims = d @ db_desc[name].T  # (nq, n)
            row = table.setdefault(name, {}).setdefault(t, {})
            row["exhaustive"] = float(np.mean(np.argmax(sims, 1) == src))
            for kp, cand in cand_sets.items():
                s = np.take_along_axis(sims, cand, 1)
                top = cand[np.arange(len(src)), np.argmax(s, 1)]
                row[f"top{kp}"] = float(np.mean(top == src))
        codes_hit = cand_sets[args.candidates[0]][:, 0] == src
        table.setdefault("codes alone (Hamming)", {})[t] = {"exhaustive": float(codes_hit.mean())}
        recall = {
            f"top{kp}": float(np.mean((c == src[:, None]).any(1))) for kp, c in cand_sets.items()
        }
        table.setdefault("source among candidates", {})[t] = recall
        print(t, f"{time.time() - t0:.0f}s", flush=True)
    key = f"top{args.candidates[0]}"
    names = list_copy_transforms()
    print(f"R@1 of the source, re-ranking Hamming {key} (exhaustive in brackets)")
    print("| descriptor | " + " | ".join(names) + " | mean |")
    for name, row in table.items():
        vals = [row[t].get(key, row[t].get("exhaustive", 0.0)) for t in names]
        ex = [row[t].get("exhaustive", float("nan")) for t in names]
        cells = [f"{v:.3f} ({e:.3f})" for v, e in zip(vals, ex)]
        print(f"| {name} | " + " | ".join(cells) + f" | {np.mean(vals):.3f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            json.dumps(
                {
                    "run": str(args.run),
                    "database": "validation",
                    "n_database": n,
                    "n_queries": len(src),
                    "r_at_1": table,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    nn.Module  # noqa: B018
    main()
