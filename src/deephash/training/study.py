"""Model selection on validation (``tune``) and side-by-side studies of recipes (``compare``).

``tune`` never looks at query data when choosing: every trial runs with ``final_eval=False`` and is
ranked by its best validation mAP; only the chosen trial is then evaluated on query vs database.
"""

from __future__ import annotations

import itertools
import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deephash.atomic_io import atomic_write_json, atomic_write_text
from deephash.training.config import TrainConfig, load_config
from deephash.training.reference import Reference

__all__ = [
    "CompareResult",
    "TuneResult",
    "check_selection",
    "load_study",
    "run_compare",
    "run_tune",
    "set_dotted",
]


def set_dotted(values: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(d, "loss_options.margin", 0.2)`` sets ``d["loss_options"]["margin"]``."""
    node = values
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _read_history(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "history.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _train_or_reuse(cfg: TrainConfig, run_dir: Path) -> None:
    """Train ``run_dir`` unless it is finished; resume it when it was interrupted."""
    from deephash.training.trainer import train

    done_marker = run_dir / ("metrics.json" if cfg.final_eval else "history.jsonl")
    if (run_dir / "last.pt").exists():
        _check_same_recipe(cfg, run_dir)
        history = _read_history(run_dir)
        finished = bool(history) and history[-1]["epoch"] >= cfg.epochs
        if finished and done_marker.exists():
            return
        train(cfg, run_dir, resume=True)
    else:
        train(cfg, run_dir)


# Settings that do not change what a run computes, so they may differ when a run is reused.
_RUNTIME_KEYS = {
    "progress",
    "num_threads",
    "device",
    "data_dir",
    "download",
    "final_eval",
    "name",
    "cache_dir",
}


def _check_same_recipe(cfg: TrainConfig, run_dir: Path) -> None:
    """Refuse to reuse or resume ``run_dir`` for a different recipe (that would mix two runs)."""
    saved_file = run_dir / "config.yaml"
    if not saved_file.exists():
        return
    saved = TrainConfig.from_dict(yaml.safe_load(saved_file.read_text()) or {}).to_dict()
    wanted = cfg.to_dict()
    diff = sorted(k for k in wanted if k not in _RUNTIME_KEYS and saved.get(k) != wanted[k])
    if diff:
        details = ", ".join(f"{k}: {saved.get(k)!r} -> {wanted[k]!r}" for k in diff)
        raise ValueError(
            f"{run_dir} holds a run of a different recipe ({details}); use another --out, or "
            "pass the same overrides (--set/--seeds) as when it was trained"
        )


@dataclass
class TuneResult:
    best_params: dict[str, Any]
    best_val_map: float
    trials: list[dict[str, Any]]
    test_metrics: dict[str, Any]
    best_run: Path


def check_selection(cfg: TrainConfig) -> int | None:
    """Refuse a recipe whose validation would leak test classes into model selection, or select
    for seen-class retrieval on an unseen-class protocol (see
    :meth:`deephash.data.protocols.Protocol.check_model_selection`; ValueError saying why).

    Returns the number of class-disjoint validation folds of the recipe's protocol (None when its
    validation is not class-disjoint).
    """
    from deephash.training import recipe

    if cfg.fit_validation:
        raise ValueError(
            "tune selects on the validation split, so its trials cannot train on it: "
            "set fit_validation: false for tuning (use it for the final fit afterwards)"
        )
    protocol, labels = recipe.load_protocol(cfg)
    protocol.check_model_selection(labels)
    folds = protocol.options.get("validation_folds")
    return int(folds) if protocol.class_disjoint_validation and folds else None


def run_tune(
    base: TrainConfig,
    grid: dict[str, Sequence[Any]],
    out_dir: str | Path,
    *,
    cross_validate: bool = False,
) -> TuneResult:
    """Grid-search ``grid`` (dotted config key -> values) on the validation split only.

    Each trial trains into ``out_dir/trial-XX`` with ``final_eval=False``; the best trial by its
    best validation mAP is then evaluated once on query vs database (its best checkpoint). Writes
    ``tune.json`` and ``tune.md`` in ``out_dir``.

    Every trial's recipe is checked first (:func:`check_selection`): a setting that would leak
    test classes into the choice is refused before anything trains. ``cross_validate`` (for
    protocols with class-disjoint ``validation_folds``, as in Musgrave et al. 2020): each trial
    trains once per fold (``trial-XX/fold-F``, fold F of the training classes held out), its score
    is the mean of the folds' best validation mAPs, and the selected trial's test metrics are the
    means over its fold models (each listed under ``folds``).
    """
    if not grid:
        raise ValueError("tune needs at least one --param KEY=V1,V2,...")
    out = Path(out_dir)
    keys = list(grid)
    plans: list[tuple[dict[str, Any], list[TrainConfig]]] = []
    class_disjoint = False
    for combo in itertools.product(*(grid[k] for k in keys)):
        values = base.to_dict()
        params = dict(zip(keys, combo))
        for key, value in params.items():
            set_dotted(values, key, value)
        values["final_eval"] = False
        cfg = TrainConfig.from_dict(values)
        folds = check_selection(cfg)
        class_disjoint = class_disjoint or folds is not None
        if not cross_validate:
            plans.append((params, [cfg]))
            continue
        if folds is None:
            raise ValueError(
                "--cross-validate needs class-disjoint validation folds: an unseen-class protocol "
                "(e.g. fashion-mnist-unseen) or protocol_options.validation_folds"
            )
        per_fold = []
        for fold in range(folds):
            v = cfg.to_dict()
            v["protocol_options"] = {**v["protocol_options"], "validation_fold": fold}
            per_fold.append(TrainConfig.from_dict(v))
        plans.append((params, per_fold))
    out.mkdir(parents=True, exist_ok=True)
    trials: list[dict[str, Any]] = []
    for i, (params, cfgs) in enumerate(plans):
        trial = out / f"trial-{i:02d}"
        dirs = [trial / f"fold-{f}" for f in range(len(cfgs))] if cross_validate else [trial]
        fold_maps = []
        for cfg, run_dir in zip(cfgs, dirs):
            _train_or_reuse(cfg, run_dir)
            history = _read_history(run_dir)
            fold_maps.append(
                max((h.get("val_map", float("-inf")) for h in history), default=float("-inf"))
            )
        best = statistics.fmean(fold_maps)
        entry: dict[str, Any] = {"trial": trial.name, "params": params, "best_val_map": best}
        if cross_validate:
            entry["fold_val_maps"] = fold_maps
        trials.append(entry)
        print(f"[tune] {trial.name} {params} -> best validation mAP {best:.4f}")
    winner = max(trials, key=lambda t: t["best_val_map"])
    best_dir = out / winner["trial"]
    if cross_validate:
        fold_tests = [
            _evaluate_run(best_dir / f"fold-{f}") for f in range(len(winner["fold_val_maps"]))
        ]
        test_metrics: dict[str, Any] = {
            key: statistics.fmean(m[key] for m in fold_tests)
            for key in ("map", "knn_accuracy")
            if all(key in m for m in fold_tests)
        }
        test_metrics["folds"] = fold_tests
    else:
        test_metrics = _evaluate_run(best_dir)
    result = TuneResult(
        best_params=winner["params"],
        best_val_map=winner["best_val_map"],
        trials=trials,
        test_metrics=test_metrics,
        best_run=best_dir,
    )
    selected_on = (
        "validation mAP: leave-one-out among training classes held out of training "
        "(class-disjoint folds)"
        if class_disjoint
        else "validation mAP (validation queries vs the training split)"
    )
    atomic_write_json(
        out / "tune.json",
        {
            "selected_on": selected_on,
            "cross_validated": cross_validate,
            "best_params": result.best_params,
            "best_val_map": result.best_val_map,
            "best_run": str(best_dir),
            "trials": trials,
            "test_metrics": test_metrics,
        },
    )
    lines = [
        "| trial | " + " | ".join(keys) + " | best validation mAP |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for t in trials:
        mark = " **(selected)**" if t is winner else ""
        vals = " | ".join(str(t["params"][k]) for k in keys)
        lines.append(f"| {t['trial']}{mark} | {vals} | {t['best_val_map']:.4f} |")
    what = "mean over its fold models" if cross_validate else "the selected run"
    lines += [
        "",
        f"Selected on validation: {result.best_params}. Test (query vs database) of {what}: "
        f"mAP {test_metrics.get('map', float('nan')):.4f}, kNN accuracy "
        f"{test_metrics.get('knn_accuracy', float('nan')):.4f}.",
    ]
    atomic_write_text(out / "tune.md", "\n".join(lines) + "\n")
    return result


def _evaluate_run(run_dir: Path) -> dict[str, Any]:
    """Final query-vs-database evaluation of a finished trial, written to its metrics.json."""
    from deephash.training import recipe
    from deephash.training.runs import load_run
    from deephash.training.trainer import finalize_run

    loaded = load_run(run_dir)
    cfg = loaded.config
    cfg.final_eval = True
    history = _read_history(run_dir)
    data = recipe.load_data(cfg)
    elapsed = history[-1]["elapsed"] if history else 0.0
    return finalize_run(run_dir, cfg, loaded.net, data, loaded.device, history, elapsed)


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
    from deephash.training.baselines import BASELINE_KEYS
    from deephash.training.reference import load_reference
    from deephash.viz import plot_map_vs_bits, plot_protocol_scatter, plot_validation_vs_time

    recipes, options = load_study(paths)
    if only:
        names = [n for n, _ in recipes]
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"--only names no recipe of the study: {unknown}; recipes: {names}")
        recipes = [(n, v) for n, v in recipes if n in set(only)]
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
                if "method" in values:  # features / LSH / ITQ baselines: nothing to train
                    from deephash.training.baselines import run_baseline, saves_model

                    given = {**common, **per_protocol}
                    spec = {
                        **values,
                        **{k: v for k, v in given.items() if k in BASELINE_KEYS},
                        "seed": seed,
                    }
                    if str(spec.get("weights", "")).startswith("@"):
                        spec["weights"] = str(base / spec["weights"][1:] / f"seed{seed}")
                    # a hashing row fitted before it saved its model is fitted again
                    model_missing = saves_model(spec) and not (run_dir / "config.yaml").exists()
                    if not (run_dir / "metrics.json").exists() or model_missing:
                        run_baseline(spec, run_dir)
                    bits = spec.get("bits")
                else:
                    cfg = load_config(None, **{**values, **common, **per_protocol, "seed": seed})
                    _train_or_reuse(cfg, run_dir)
                    bits = cfg.bits
                metrics = json.loads((run_dir / "metrics.json").read_text())
                history = _read_history(run_dir)
                per_seed.append({"metrics": metrics, "history": history, "bits": bits})
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
    table = _markdown(rows, target, ref)
    if len(protocols) > 1:
        table += "\n" + _protocol_table(rows, list(protocols))
        first, second = list(protocols)[:2]
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
        if row["bits"] and row["protocol"] == next(iter(protocols)):
            method = row.get("method") or row["recipe"].rsplit("-", 1)[0]
            by_method.setdefault(method, {})[row["bits"]] = (row["map_mean"], row["map_std"])
    if any(len(v) > 1 for v in by_method.values()):
        plot_map_vs_bits(by_method, out / "map_vs_bits.png")
    print(table)
    return CompareResult(table=table, rows=rows)


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
