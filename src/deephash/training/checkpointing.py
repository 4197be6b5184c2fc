"""A run's checkpoints: the progress they save, starting or resuming a run folder, and writing
``last.pt`` (every epoch), ``best.pt`` (when validation improved) and ``history.jsonl``.

The sampler, augmentation and global RNG are re-seeded from (seed, epoch) at the start of every
epoch, so a run resumed from ``last.pt`` ends exactly where an uninterrupted one would.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from deephash.atomic_io import atomic_copy, atomic_write_text, load_checkpoint, save_checkpoint
from deephash.run_folder import RunFolder
from deephash.training import recipe
from deephash.training.config import TrainConfig
from deephash.training.distributed import DistInfo
from deephash.training.setup import TrainingSetup

__all__ = ["RunProgress", "check_run_folder", "save_epoch", "start_or_resume"]


@dataclass
class RunProgress:
    """What a checkpoint keeps beside the weights: epochs done, the best validation mAP so far,
    the training seconds spent (set-up included) and one history record per epoch."""

    epoch: int
    best_val: float
    elapsed: float
    history: list[dict[str, Any]]

    def add(self, record: dict[str, Any]) -> bool:
        """Count the epoch and append its ``record``; True when its validation mAP is the best
        so far."""
        self.epoch = record["epoch"]
        self.history.append(record)
        improved = "val_map" in record and record["val_map"] > self.best_val
        if improved:
            self.best_val = record["val_map"]
        return improved


def check_run_folder(run_dir: Path, resume: bool) -> None:
    """Refuse to resume a folder without ``last.pt``, or to start a run over an existing one."""
    last = RunFolder(run_dir).last
    if resume:
        if not last.is_file():
            raise FileNotFoundError(f"cannot resume: {last} does not exist")
    elif last.exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )


def start_or_resume(
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool,
    run: TrainingSetup,
    device: torch.device,
    info: DistInfo,
) -> RunProgress:
    """Resume: load ``last.pt`` into the network, loss, optimiser and schedule and return its
    progress. Otherwise (main rank) create the folder and save the recipe as ``config.yaml``."""
    folder = RunFolder(run_dir)
    if resume:
        state = load_checkpoint(folder.last, map_location=device)
        run.net.load_state_dict(state["model"])
        run.loss_fn.load_state_dict(state["loss"])
        run.optimizer.load_state_dict(state["optimizer"])
        run.lr_sched.load_state_dict(state["lr_scheduler"])
        return RunProgress(
            state["epoch"], state["best_val"], state["elapsed"], list(state["history"])
        )
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(folder.config)
    return RunProgress(0, -math.inf, run.seconds, [])


def save_epoch(
    run_dir: Path, cfg: TrainConfig, run: TrainingSetup, progress: RunProgress, improved: bool
) -> None:
    """Write ``last.pt`` (atomically), copy it to ``best.pt`` when ``improved``, and rewrite
    ``history.jsonl``."""
    folder = RunFolder(run_dir)
    state = {
        "model": run.net.state_dict(),
        "loss": run.loss_fn.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "lr_scheduler": run.lr_sched.state_dict(),
        "epoch": progress.epoch,
        "best_val": progress.best_val,
        "elapsed": progress.elapsed,
        "history": progress.history,
        "config": cfg.to_dict(),
        "data_info": recipe.data_info(run.data),
    }
    save_checkpoint(folder.last, state)
    if improved:
        atomic_copy(folder.last, folder.best)
    atomic_write_text(folder.history, "".join(json.dumps(h) + "\n" for h in progress.history))
