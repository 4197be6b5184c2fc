"""Runs a study trains and reads back: a run folder is trained unless it is finished, resumed when
it was interrupted, and refused when it holds a different recipe (that would mix two runs).
``tune`` and ``compare`` both train their runs through :func:`train_or_reuse`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from deephash.run_folder import RunFolder
from deephash.training.config import TrainConfig

__all__ = ["read_history", "train_or_reuse"]


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """The run's ``history.jsonl``: one record per epoch (empty when the file is absent)."""
    path = RunFolder(run_dir).history
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_or_reuse(cfg: TrainConfig, run_dir: Path) -> None:
    """Train ``run_dir`` unless it is finished; resume it when it was interrupted."""
    from deephash.training.trainer import train

    folder = RunFolder(run_dir)
    done_marker = folder.metrics if cfg.final_eval else folder.history
    if folder.last.exists():
        _check_same_recipe(cfg, run_dir)
        history = read_history(run_dir)
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
    saved_file = RunFolder(run_dir).config
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
