"""The protocols study's table over seeds: mean ± std of mAP@all, MAP@R and kNN accuracy per recipe,
on seen classes (standard protocol) and classes never seen in training (fashion-mnist-unseen).

``deephash compare configs/study-protocols.yaml --out runs/protocols`` writes the same table when
every seed's run folder is there. For runs whose folders are gone this script takes the numbers of
its own earlier output (``benchmarks/results/study_protocols.json``: rows that ran in an earlier
session) and seed 0 from the first pass's summary (``benchmarks/results/study_protocols_seed0.json``),
and reports, per row, how many seeds it found, so a partly finished study still gives an honest
table. Rows added to the study later run alone: ``deephash compare configs/study-protocols.yaml
--out runs/protocols --only NAME ...``.

Usage: python benchmarks/study_protocols_table.py [--runs runs/protocols] [--seeds 0 1 2]
Writes benchmarks/results/study_protocols.json (every seed's numbers) and docs/study-protocols.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"map": "map_mean", "map_at_r": "map_at_r_mean", "knn_accuracy": "knn_mean"}


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample std, as ``deephash compare`` reports them (std 0 for one seed)."""
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    from deephash.training.compare import load_study
    from deephash.viz import plot_protocol_scatter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default=str(ROOT / "configs" / "study-protocols.yaml"))
    ap.add_argument("--runs", default=str(ROOT / "runs" / "protocols"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seed0", default=str(ROOT / "benchmarks/results/study_protocols_seed0.json"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/study_protocols.json"))
    ap.add_argument("--plot", default=str(ROOT / "docs" / "study-protocols.png"))
    args = ap.parse_args()

    recipes, options = load_study([args.study])
    protocols = list(options.get("protocols") or {"": {}})
    saved = json.loads(Path(args.seed0).read_text()) if Path(args.seed0).is_file() else {"rows": []}
    first_pass = {(r["protocol"], r["recipe"]): r for r in saved["rows"]}
    # every seed's numbers of an earlier table (rows whose run folders are gone: the study's first
    # rows ran in an earlier session; rows added later run alone with compare --only)
    before = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {"rows": []}
    earlier = {r["recipe"]: r for r in before["rows"]}
    rows: list[dict[str, Any]] = []
    for name, _values in recipes:
        row: dict[str, Any] = {"recipe": name}
        for protocol in protocols:
            per_seed: dict[int, dict[str, float]] = {}
            for seed in args.seeds:
                path = Path(args.runs) / protocol / name / f"seed{seed}" / "metrics.json"
                if path.is_file():
                    m = json.loads(path.read_text())
                    per_seed[seed] = {k: float(m[k]) for k in KEYS if m.get(k) is not None}
                elif str(seed) in earlier.get(name, {}).get(protocol, {}).get("seeds", {}):
                    per_seed[seed] = earlier[name][protocol]["seeds"][str(seed)]
                elif seed == 0 and (protocol, name) in first_pass:
                    r = first_pass[(protocol, name)]
                    per_seed[0] = {k: float(r[v]) for k, v in KEYS.items() if r.get(v) is not None}
            row[protocol] = {"seeds": per_seed}
            for k in KEYS:
                values = [v[k] for v in per_seed.values() if k in v]
                if values:
                    row[protocol][k] = _mean_std(values)
        rows.append(row)

    def cell(row: dict[str, Any], protocol: str, key: str) -> str:
        got = row[protocol].get(key)
        if got is None:
            return "–"
        n = len(row[protocol]["seeds"])
        return f"{got[0]:.3f} ± {got[1]:.3f}" + ("" if n == len(args.seeds) else f" (n={n})")

    head = "| recipe |" + "".join(f" mAP@all {p} | MAP@R {p} | kNN {p} |" for p in protocols)
    lines = [head, "|---|" + "---|---|---|" * len(protocols)]
    for row in rows:
        cells = "".join(
            f" {cell(row, p, 'map')} | {cell(row, p, 'map_at_r')} | {cell(row, p, 'knn_accuracy')} |"
            for p in protocols
        )
        lines.append(f"| {row['recipe']} |{cells}")
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"seeds": args.seeds, "protocols": protocols, "rows": rows}, indent=1)
    )
    if len(protocols) >= 2:
        a, b = protocols[:2]
        points = {
            r["recipe"]: (r[a]["map"][0], r[b]["map"][0])
            for r in rows
            if "map" in r[a] and "map" in r[b]
        }
        plot_protocol_scatter(
            points,
            args.plot,
            xlabel=f"mAP@all, {a} (seen classes)",
            ylabel=f"mAP@all, {b} (unseen classes)",
        )
    print(f"wrote {out} and {args.plot}")


if __name__ == "__main__":
    main()
