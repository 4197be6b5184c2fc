"""Side-by-side studies of recipes (``deephash compare``): every recipe (or baseline) trained with
the same seeds and budget, reused or resumed when it ran before, and summarised in one table."""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deephash.atomic_io import atomic_write_json, atomic_write_text
from deephash.run_folder import RunFolder
from deephash.training.config import load_config
from deephash.training.reference import Reference
from deephash.training.run_reuse import read_history, train_or_reuse

__all__ = ["CompareResult", "load_study", "run_compare"]


@dataclass
class CompareResult:
    table: str
    rows: list[dict[str, Any]] = field(default_factory=list)


def load_study(
    paths: Sequence[str | Path],
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """Recipes from config files, or from one study file with a ``recipes:`` list.

    A study file may also set ``seeds``, ``overrides`` (applied to every recipe), ``protocols``
    (name -> overrides: every recipe runs once per protocol, e.g. ``{standard: {}, unseen:
    {protocol: fashion-mnist-unseen, p: 3}}``) and ``reference`` (published numbers to print
    beside ours: a mapping or a file relative to the study file, see
    :mod:`deephash.training.reference`). A recipe entry is a path (relative to the study file) or a
    mapping with ``name`` and config keys. Returns ``([(name, config mapping)], study options)``.
    """
    recipes: list[tuple[str, dict[str, Any]]] = []
    options: dict[str, Any] = {}
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        if isinstance(loaded, dict) and "recipes" in loaded:
            options = {k: v for k, v in loaded.items() if k != "recipes"}
            if isinstance(options.get("reference"), str):
                options["reference"] = str(path.parent / options["reference"])
            for entry in loaded["recipes"]:
                if isinstance(entry, str):
                    sub = path.parent / entry
                    recipes.append((sub.stem, yaml.safe_load(sub.read_text()) or {}))
                else:
                    entry = dict(entry)
                    recipes.append((str(entry.pop("name")), entry))
        else:
            recipes.append((path.stem, dict(loaded)))
    return recipes, options


def run_compare(
    paths: Sequence[str | Path],
    out_dir: str | Path,
    *,
    seeds: Sequence[int] | None = None,
    overrides: dict[str, Any] | None = None,
    target_map: float | None = None,
    reference: str | Path | Mapping[str, Any] | None = None,
    only: Sequence[str] | None = None,
) -> CompareResult:
    """Train every recipe with the same seeds and budget; write ``compare.md``, ``compare.json`` and
    ``val_map_vs_time.png`` (and ``map_vs_bits.png`` when recipes differ in bits) into ``out_dir``.

    Finished runs are reused and interrupted ones resumed, so a study can be re-run after a stop.
    ``overrides`` (and the study's) reach the baseline recipes too, for the keys a baseline has
    (data_dir, protocol, protocol_options, weights, device, ...). ``reference`` (a mapping or a YAML file;
    else the study's ``reference:``) adds "report" columns with published numbers beside ours.
    ``only``: run just these recipes of the study (by name), e.g. rows added to a study that ran.
    """
    from deephash.training.reference import load_reference

    recipes, options = load_study(paths)
    recipes = _only(recipes, only)
    ref_spec = reference if reference is not None else options.get("reference")
    ref = load_reference(ref_spec) if ref_spec is not None else None
    seeds = list(seeds if seeds is not None else options.get("seeds", [0]))
    common = {**options.get("overrides", {}), **(overrides or {})}
    target = target_map if target_map is not None else options.get("target_map")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    curves: dict[str, tuple[list[float], list[float]]] = {}
    protocols = _protocol_sets(options.get("protocols"))
    for label, per_protocol in protocols.items():
        base = out / label if label else out
        for name, values in recipes:
            row_name = f"{name} [{label}]" if label else name
            per_seed: list[dict[str, Any]] = []
            for seed in seeds:
                run_dir = base / name / f"seed{seed}"
                print(f"[compare] {row_name} seed {seed} -> {run_dir}")
                per_seed.append(_run_seed(values, common, per_protocol, seed, base, run_dir))
                history = per_seed[-1]["history"]
                if seed == seeds[0] and history:
                    curves[row_name] = (
                        [h["elapsed"] for h in history if "val_map" in h],
                        [h["val_map"] for h in history if "val_map" in h],
                    )
            rows.append(_summarize(row_name, per_seed, target))
            rows[-1].update({"recipe": name, "protocol": label, "method": values.get("method")})
            if ref is not None:
                rows[-1]["report_map"] = ref.value(name, "map")
                rows[-1]["report_knn"] = ref.value(name, "knn")
    table = _write_outputs(out, rows, curves, list(protocols), seeds, target, ref)
    print(table)
    return CompareResult(table=table, rows=rows)


def _only(
    recipes: list[tuple[str, dict[str, Any]]], only: Sequence[str] | None
) -> list[tuple[str, dict[str, Any]]]:
    """The study's recipes named in ``only`` (all of them without it)."""
    if not only:
        return recipes
    names = [n for n, _ in recipes]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise ValueError(f"--only names no recipe of the study: {unknown}; recipes: {names}")
    return [(n, v) for n, v in recipes if n in set(only)]


def _run_seed(
    values: dict[str, Any],
    common: dict[str, Any],
    per_protocol: dict[str, Any],
    seed: int,
    base: Path,
    run_dir: Path,
) -> dict[str, Any]:
    """Train (or fit, or reuse) one recipe's seed into ``run_dir``; its metrics, history and bits."""
    folder = RunFolder(run_dir)
    if "method" in values:  # features / LSH / ITQ baselines: nothing to train
        from deephash.training.baselines import BASELINE_KEYS, run_baseline, saves_model

        given = {**common, **per_protocol}
        spec = {
            **values,
            **{k: v for k, v in given.items() if k in BASELINE_KEYS},
            "seed": seed,
        }
        if str(spec.get("weights", "")).startswith("@"):
            spec["weights"] = str(base / spec["weights"][1:] / f"seed{seed}")
        # a hashing row fitted before it saved its model is fitted again
        model_missing = saves_model(spec) and not folder.config.exists()
        if not folder.metrics.exists() or model_missing:
            run_baseline(spec, run_dir)
        bits = spec.get("bits")
    else:
        cfg = load_config(None, **{**values, **common, **per_protocol, "seed": seed})
        train_or_reuse(cfg, run_dir)
        bits = cfg.bits
    metrics = json.loads(folder.metrics.read_text())
    return {"metrics": metrics, "history": read_history(run_dir), "bits": bits}


def _write_outputs(
    out: Path,
    rows: list[dict[str, Any]],
    curves: dict[str, tuple[list[float], list[float]]],
    protocols: list[str],
    seeds: list[int],
    target: float | None,
    ref: Reference | None,
) -> str:
    """Write ``compare.md``, ``compare.json`` and the plots into ``out``; returns the table."""
    from deephash.viz import plot_map_vs_bits, plot_protocol_scatter, plot_validation_vs_time

    table = _markdown(rows, target, ref)
    if len(protocols) > 1:
        table += "\n" + _protocol_table(rows, protocols)
        first, second = protocols[:2]
        plot_protocol_scatter(
            _protocol_points(rows, first, second),
            out / "map_by_protocol.png",
            xlabel=f"mAP@all, {first}",
            ylabel=f"mAP@all, {second}",
        )
    atomic_write_text(out / "compare.md", table)
    summary: dict[str, Any] = {"seeds": seeds, "target_map": target, "rows": rows}
    if ref is not None:
        summary["reference"] = {"source": ref.source, "note": ref.note, "quoted": ref.quoted}
    atomic_write_json(out / "compare.json", summary)
    plot_validation_vs_time(curves, out / "val_map_vs_time.png")
    by_method: dict[str, dict[int, tuple[float, float]]] = {}
    for row in rows:
        if row["bits"] and row["protocol"] == protocols[0]:
            method = row.get("method") or row["recipe"].rsplit("-", 1)[0]
            by_method.setdefault(method, {})[row["bits"]] = (row["map_mean"], row["map_std"])
    if any(len(v) > 1 for v in by_method.values()):
        plot_map_vs_bits(by_method, out / "map_vs_bits.png")
    return table


def _protocol_sets(spec: Any) -> dict[str, dict[str, Any]]:
    """The study's ``protocols`` (name -> overrides); ``{"": {}}`` (one unnamed set) if none."""
    if spec is None:
        return {"": {}}
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError(
            "a study's 'protocols' must map names to overrides, e.g. {standard: {}, unseen: "
            "{protocol: fashion-mnist-unseen, p: 3}}"
        )
    sets: dict[str, dict[str, Any]] = {}
    for label, overrides in spec.items():
        if not isinstance(overrides, Mapping):
            raise ValueError(f"protocols: {label!r} must map config keys to values (or be {{}})")
        sets[str(label)] = dict(overrides)
    return sets


def _protocol_table(rows: list[dict[str, Any]], labels: list[str]) -> str:
    """One line per recipe, its mAP@all and MAP@R under each protocol side by side."""
    by_recipe: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_recipe.setdefault(r["recipe"], {})[r["protocol"]] = r
    head = "| recipe |" + "".join(f" mAP@all {p} | MAP@R {p} |" for p in labels)
    lines = [head, "|---|" + "---|---|" * len(labels)]
    for recipe, per in by_recipe.items():
        cells = []
        for p in labels:
            row = per.get(p)
            if row is None:
                cells.append(" – | – |")
                continue
            cells.append(f" {row['map_mean']:.4f} ± {row['map_std']:.4f} |")
            mr = row["map_at_r_mean"]
            cells.append(f" {mr:.4f} ± {row['map_at_r_std']:.4f} |" if mr is not None else " – |")
        lines.append(f"| {recipe} |" + "".join(cells))
    return "\n".join(lines) + "\n"


def _protocol_points(
    rows: list[dict[str, Any]], first: str, second: str
) -> dict[str, tuple[float, float]]:
    """recipe -> (mAP under ``first``, mAP under ``second``) for recipes run under both."""
    maps: dict[str, dict[str, float]] = {}
    for r in rows:
        maps.setdefault(r["recipe"], {})[r["protocol"]] = r["map_mean"]
    return {k: (v[first], v[second]) for k, v in maps.items() if first in v and second in v}


def _mean_std(values: list[float]) -> tuple[float, float]:
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def _summarize(name: str, per_seed: list[dict[str, Any]], target: float | None) -> dict[str, Any]:
    maps = [r["metrics"]["map"] for r in per_seed]
    knns = [r["metrics"]["knn_accuracy"] for r in per_seed]
    maps_at_r = [r["metrics"]["map_at_r"] for r in per_seed if "map_at_r" in r["metrics"]]
    sec_per_epoch = [
        statistics.fmean(h["seconds"] for h in r["history"]) for r in per_seed if r["history"]
    ]
    reach: list[float] = []
    if target is not None:
        for r in per_seed:
            hit = next((h["elapsed"] for h in r["history"] if h.get("val_map", -1) >= target), None)
            if hit is not None:
                reach.append(hit)
    usages = [r["metrics"]["code_usage"] for r in per_seed if r["metrics"].get("code_usage")]
    m_mean, m_std = _mean_std(maps)
    k_mean, k_std = _mean_std(knns)
    r_mean, r_std = _mean_std(maps_at_r) if len(maps_at_r) == len(per_seed) else (None, None)
    return {
        "name": name,
        "bits": per_seed[0]["bits"],
        "map_mean": m_mean,
        "map_std": m_std,
        "knn_mean": k_mean,
        "knn_std": k_std,
        "map_at_r_mean": r_mean,
        "map_at_r_std": r_std,
        "seconds_per_epoch": statistics.fmean(sec_per_epoch) if sec_per_epoch else float("nan"),
        "train_seconds": statistics.fmean(r["metrics"].get("train_seconds", 0.0) for r in per_seed),
        "time_to_target": statistics.fmean(reach) if reach else None,
        # code usage of the database, mean over seeds (None for float rows)
        "distinct_codes": (
            statistics.fmean(u["distinct_codes"] for u in usages) if usages else None
        ),
        "num_codes": usages[0]["num_codes"] if usages else None,
        "largest_bucket_share": (
            statistics.fmean(u["largest_bucket_share"] for u in usages) if usages else None
        ),
        "reached_target": f"{len(reach)}/{len(per_seed)}",
        "seeds": len(per_seed),
    }


def _cell(value: float | None) -> str:
    return "not given" if value is None else f"{value:.4f}"


def _usage_cell(row: dict[str, Any]) -> str:
    if row.get("distinct_codes") is None:
        return "-"
    return (
        f"{row['distinct_codes']:,.0f} / {row['num_codes']:,} "
        f"({100 * row['largest_bucket_share']:.1f}%)"
    )


def _markdown(rows: list[dict[str, Any]], target: float | None, ref: Reference | None) -> str:
    head = "| recipe | bits | mAP@all | kNN acc. | s/epoch | train s |"
    sep = "|---|---|---|---|---|---|"
    usage = any(r.get("distinct_codes") is not None for r in rows)
    if usage:
        head += " distinct codes (largest bucket) |"
        sep += "---|"
    if ref is not None:
        head += " report mAP | report kNN |"
        sep += "---|---|"
    if target is not None:
        head += f" time to val mAP {target} (s) |"
        sep += "---|"
    lines = [head, sep]
    for r in rows:
        line = (
            f"| {r['name']} | {r['bits'] or '-'} | {r['map_mean']:.4f} ± {r['map_std']:.4f} | "
            f"{r['knn_mean']:.4f} ± {r['knn_std']:.4f} | {r['seconds_per_epoch']:.1f} | "
            f"{r['train_seconds']:.0f} |"
        )
        if usage:
            line += f" {_usage_cell(r)} |"
        if ref is not None:
            line += f" {_cell(r['report_map'])} | {_cell(r['report_knn'])} |"
        if target is not None:
            t = r["time_to_target"]
            line += (
                f" {t:.0f} ({r['reached_target']}) |"
                if t is not None
                else f" not reached (0/{r['seeds']}) |"
            )
        lines.append(line)
    n = rows[0]["seeds"] if rows else 0
    lines.append("")
    lines.append(f"Mean ± std over {n} seed(s); mAP@all and kNN accuracy on query vs database.")
    if usage:
        lines.append(
            "Distinct codes: buckets among the database codes (mean over seeds); in brackets the "
            "share of the database in the largest bucket."
        )
    if ref is not None:
        lines += ["", ref.footnote()]
    return "\n".join(lines) + "\n"
