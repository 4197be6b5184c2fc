"""Model selection on validation (``deephash tune``): a grid of recipes, each trial ranked by its
best validation mAP, and only the chosen trial evaluated on query vs database.

``tune`` never looks at query data when choosing: every trial runs with ``final_eval=False``.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deephash.atomic_io import atomic_write_json, atomic_write_text
from deephash.training.config import TrainConfig
from deephash.training.run_reuse import read_history, train_or_reuse

__all__ = ["TuneResult", "check_selection", "run_tune", "set_dotted"]


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
    plans, class_disjoint = _plan_trials(base, grid, cross_validate)
    out.mkdir(parents=True, exist_ok=True)
    trials = [
        _run_trial(out / f"trial-{i:02d}", params, cfgs, cross_validate)
        for i, (params, cfgs) in enumerate(plans)
    ]
    winner = max(trials, key=lambda t: t["best_val_map"])
    best_dir = out / winner["trial"]
    result = TuneResult(
        best_params=winner["params"],
        best_val_map=winner["best_val_map"],
        trials=trials,
        test_metrics=_test_metrics(best_dir, winner, cross_validate),
        best_run=best_dir,
    )
    _write_reports(out, result, list(grid), winner, class_disjoint, cross_validate)
    return result


def _plan_trials(
    base: TrainConfig, grid: dict[str, Sequence[Any]], cross_validate: bool
) -> tuple[list[tuple[dict[str, Any], list[TrainConfig]]], bool]:
    """Every grid point's params and recipes (one per fold with ``cross_validate``), each checked
    by :func:`check_selection` before anything trains; and whether validation is class-disjoint."""
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
        plans.append((params, _fold_configs(cfg, folds)))
    return plans, class_disjoint


def _fold_configs(cfg: TrainConfig, folds: int) -> list[TrainConfig]:
    """``cfg`` once per class-disjoint validation fold."""
    per_fold = []
    for fold in range(folds):
        v = cfg.to_dict()
        v["protocol_options"] = {**v["protocol_options"], "validation_fold": fold}
        per_fold.append(TrainConfig.from_dict(v))
    return per_fold


def _run_trial(
    trial: Path, params: dict[str, Any], cfgs: list[TrainConfig], cross_validate: bool
) -> dict[str, Any]:
    """Train (or reuse) a trial's runs; its entry: name, params and best validation mAP (the
    mean over folds, each listed under ``fold_val_maps`` with ``cross_validate``)."""
    dirs = [trial / f"fold-{f}" for f in range(len(cfgs))] if cross_validate else [trial]
    fold_maps = []
    for cfg, run_dir in zip(cfgs, dirs):
        train_or_reuse(cfg, run_dir)
        history = read_history(run_dir)
        fold_maps.append(
            max((h.get("val_map", float("-inf")) for h in history), default=float("-inf"))
        )
    best = statistics.fmean(fold_maps)
    entry: dict[str, Any] = {"trial": trial.name, "params": params, "best_val_map": best}
    if cross_validate:
        entry["fold_val_maps"] = fold_maps
    print(f"[tune] {trial.name} {params} -> best validation mAP {best:.4f}")
    return entry


def _test_metrics(best_dir: Path, winner: dict[str, Any], cross_validate: bool) -> dict[str, Any]:
    """The selected trial on query vs database (with folds: the means over its fold models)."""
    if not cross_validate:
        return _evaluate_run(best_dir)
    fold_tests = [
        _evaluate_run(best_dir / f"fold-{f}") for f in range(len(winner["fold_val_maps"]))
    ]
    test_metrics: dict[str, Any] = {
        key: statistics.fmean(m[key] for m in fold_tests)
        for key in ("map", "knn_accuracy")
        if all(key in m for m in fold_tests)
    }
    test_metrics["folds"] = fold_tests
    return test_metrics


def _write_reports(
    out: Path,
    result: TuneResult,
    keys: list[str],
    winner: dict[str, Any],
    class_disjoint: bool,
    cross_validate: bool,
) -> None:
    """``tune.json`` (every trial, the selection, the test metrics) and the table ``tune.md``."""
    selected_on = (
        "validation mAP: leave-one-out among training classes held out of training "
        "(class-disjoint folds)"
        if class_disjoint
        else "validation mAP (validation queries vs the training split)"
    )
    test_metrics = result.test_metrics
    atomic_write_json(
        out / "tune.json",
        {
            "selected_on": selected_on,
            "cross_validated": cross_validate,
            "best_params": result.best_params,
            "best_val_map": result.best_val_map,
            "best_run": str(result.best_run),
            "trials": result.trials,
            "test_metrics": test_metrics,
        },
    )
    lines = [
        "| trial | " + " | ".join(keys) + " | best validation mAP |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for t in result.trials:
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


def _evaluate_run(run_dir: Path) -> dict[str, Any]:
    """Final query-vs-database evaluation of a finished trial, written to its metrics.json."""
    from deephash.training import recipe
    from deephash.training.final_eval import finalize_run
    from deephash.training.runs import load_run

    loaded = load_run(run_dir)
    cfg = loaded.config
    cfg.final_eval = True
    history = read_history(run_dir)
    data = recipe.load_data(cfg)
    elapsed = history[-1]["elapsed"] if history else 0.0
    return finalize_run(run_dir, cfg, loaded.net, data, loaded.device, history, elapsed)
