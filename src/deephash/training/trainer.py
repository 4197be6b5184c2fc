"""The training loop, read top to bottom: set-up, then epoch by epoch train, validate, log and
checkpoint, then the final evaluation.

Every epoch ends with a validation mAP (validation queries against a fixed sample of the training
split, never the test queries), a line in ``history.jsonl``, an atomic ``last.pt`` checkpoint and,
when validation improved, ``best.pt``. ``resume=True`` continues from ``last.pt``; since the
sampler, augmentation and global RNG are re-seeded from (seed, epoch) at the start of every epoch,
a resumed run ends exactly where an uninterrupted one would.

The steps live in their own modules: :mod:`~deephash.training.setup` (data, network, loss,
optimiser, DDP), :mod:`~deephash.training.epoch` (one epoch's batches),
:mod:`~deephash.training.validation`, :mod:`~deephash.training.checkpointing`,
:mod:`~deephash.training.time_budget` and :mod:`~deephash.training.final_eval`.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from deephash.data import ProtocolData
from deephash.device import resolve_device
from deephash.training import recipe
from deephash.training.checkpointing import (
    RunProgress,
    check_run_folder,
    save_epoch,
    start_or_resume,
)
from deephash.training.config import TrainConfig
from deephash.training.distributed import DistInfo, barrier, cleanup, setup_distributed
from deephash.training.embedding import image_embedder
from deephash.training.epoch import train_epoch
from deephash.training.final_eval import finalize_run
from deephash.training.setup import TrainingSetup, build_setup
from deephash.training.time_budget import TimeBudget
from deephash.training.validation import CollapseWarning, check_collapse, validate

__all__ = ["CollapseWarning", "TrainResult", "train"]


@dataclass
class TrainResult:
    run_dir: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def train(
    config: TrainConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    """Train a model as ``config`` says, writing everything into ``run_dir``; returns final metrics.

    With ``resume=True`` the run continues from ``run_dir/last.pt``. ``stop_after_epoch`` ends this
    call after that epoch's checkpoint, like an interruption (the run can be resumed later); the
    final evaluation then waits for the run's last epoch.
    """
    run_dir = Path(run_dir)
    check_run_folder(run_dir, resume)
    device = resolve_device(config.device)
    info = setup_distributed(device)
    if info.enabled and device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
    if config.num_threads:
        import numba

        torch.set_num_threads(config.num_threads)
        numba.set_num_threads(min(config.num_threads, numba.config.NUMBA_NUM_THREADS))  # type: ignore[attr-defined]
    try:
        return _train(config, run_dir, resume, device, info, stop_after_epoch)
    finally:
        cleanup(info)


def _train(
    cfg: TrainConfig,
    run_dir: Path,
    resume: bool,
    device: torch.device,
    info: DistInfo,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    run = build_setup(cfg, device, info)
    progress = start_or_resume(cfg, run_dir, resume, run, device, info)
    val_idx = recipe.validation_sample(cfg, run.data)
    embed = image_embedder(cfg, run.net, run.data, device)
    budget = TimeBudget.of(cfg, progress.history)
    for epoch in range(progress.epoch, cfg.epochs):
        if budget.spent(progress.elapsed) and progress.history:  # a fresh run trains a batch
            break
        t0 = time.perf_counter()
        out_of_time = functools.partial(budget.ends_epoch, progress.elapsed, t0, info)
        record = train_epoch(run, cfg, epoch, info, device, out_of_time)
        validate_now = (epoch + 1) % cfg.eval_every == 0 or epoch + 1 == cfg.epochs
        if info.is_main and validate_now and not cfg.fit_validation:
            budget.val_seconds = _validate(cfg, run.data, val_idx, embed, record)
        _end_epoch(cfg, run_dir, run, progress, record, t0, info)
        if stop_after_epoch is not None and stop_after_epoch <= epoch + 1 < cfg.epochs:
            return TrainResult(run_dir=run_dir, metrics={}, history=progress.history)
    metrics: dict[str, Any] = {}
    if info.is_main and cfg.final_eval:
        metrics = finalize_run(
            run_dir, cfg, run.net, run.data, device, progress.history, progress.elapsed
        )
    barrier(info)
    return TrainResult(run_dir=run_dir, metrics=metrics, history=progress.history)


def _validate(
    cfg: TrainConfig,
    data: ProtocolData,
    val_idx: tuple[np.ndarray, np.ndarray],
    embed: Callable[..., np.ndarray],
    record: dict[str, Any],
) -> float:
    """Validate the network into the epoch's ``record`` (warning on collapse); returns the
    seconds it took."""
    t_val = time.perf_counter()
    val = validate(cfg, data, val_idx, embed)
    val_seconds = time.perf_counter() - t_val
    record.update(val)
    record["val_seconds"] = round(val_seconds, 3)
    check_collapse(val, record)
    return val_seconds


def _end_epoch(
    cfg: TrainConfig,
    run_dir: Path,
    run: TrainingSetup,
    progress: RunProgress,
    record: dict[str, Any],
    t0: float,
    info: DistInfo,
) -> None:
    """Time the epoch (started at ``t0``), add its record, log it and checkpoint (main rank)."""
    progress.elapsed += time.perf_counter() - t0
    record["seconds"] = round(time.perf_counter() - t0, 3)
    record["elapsed"] = round(progress.elapsed, 3)
    improved = progress.add(record)
    if info.is_main:
        _log_epoch(record, cfg)
        save_epoch(run_dir, cfg, run, progress, improved)
    barrier(info)


def _log_epoch(record: dict[str, Any], cfg: TrainConfig) -> None:
    """One line per epoch on stderr (also when the progress bar is off or the output is a file)."""
    val = f" val_mAP {record['val_map']:.4f}" if "val_map" in record else ""
    print(
        f"epoch {record['epoch']}/{cfg.epochs} loss {record['loss']:.4f} "
        f"active {record['active_fraction']:.2f}{val} {record['seconds']:.1f}s",
        file=sys.stderr,
        flush=True,
    )
