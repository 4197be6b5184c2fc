"""One training epoch: re-seed from (seed, epoch), then P×K batches -> network -> (gather) ->
miner + loss -> optimiser, and the epoch's record (mean loss, active fraction, learning rate...)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from deephash.data import Batch
from deephash.training import recipe
from deephash.training.config import TrainConfig
from deephash.training.distributed import DistInfo, all_gather_with_grad
from deephash.training.frozen_cache import set_bn_eval
from deephash.training.setup import TrainingSetup

__all__ = ["epoch_seed", "train_epoch"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's sampler, augmentation and global RNG."""
    return (seed * 1_000_003 + epoch * 7_919) % (2**31 - 1)


@dataclass
class _Sums:
    """Running sums over the epoch's batches."""

    loss: float = 0.0
    active: float = 0.0
    batches: int = 0
    terms: int = 0
    l2sp: float = 0.0
    instance: float = 0.0


def train_epoch(
    run: TrainingSetup,
    cfg: TrainConfig,
    epoch: int,
    info: DistInfo,
    device: torch.device,
    out_of_time: Callable[[], bool],
) -> dict[str, Any]:
    """Train one epoch (stopping after a batch when ``out_of_time()``); returns its record."""
    aug_gen, view_rng = _start(run, cfg, epoch)
    sums = _Sums()
    bar = tqdm(
        run.batches,
        total=len(run.batches),
        desc=f"epoch {epoch + 1}/{cfg.epochs}",
        disable=None if (cfg.progress and info.is_main) else True,  # None: off when not a TTY
        leave=False,
        unit="batch",
    )
    for step, batch in enumerate(bar):
        _step(run, cfg, batch, (aug_gen, view_rng), info, device, sums)
        if step % 10 == 0:
            bar.set_postfix(
                loss=f"{sums.loss / sums.batches:.4f}", active=f"{sums.active / sums.batches:.2f}"
            )
        if out_of_time():
            break
    bar.close()
    return _record(run, cfg, epoch, sums)


def _start(
    run: TrainingSetup, cfg: TrainConfig, epoch: int
) -> tuple[torch.Generator, np.random.Generator]:
    """Seed the epoch, set its loss schedules and hooks and the training modes; returns the
    augmentation generator and the instance views' generator."""
    torch.manual_seed(epoch_seed(cfg.seed, epoch))
    aug_gen = torch.Generator().manual_seed(epoch_seed(cfg.seed, epoch) + 1)
    view_rng = np.random.default_rng(epoch_seed(cfg.seed, epoch) + 2)
    run.batches.set_epoch(epoch)
    for name, sched in run.schedules.items():
        setattr(run.loss_fn, name, float(sched(epoch)))
    recipe.start_epoch(run.loss_fn, cfg, epoch)
    run.model.train()
    if cfg.freeze_bn:  # batch norm keeps the pretrained statistics (affine weights train)
        set_bn_eval(run.net.get_submodule("backbone"))
    if run.bottom is not None:
        run.bottom.eval()
    return aug_gen, view_rng


def _step(
    run: TrainingSetup,
    cfg: TrainConfig,
    batch: Batch,
    rngs: tuple[torch.Generator, np.random.Generator],
    info: DistInfo,
    device: torch.device,
    sums: _Sums,
) -> None:
    """One optimiser step on ``batch``, added to ``sums``."""
    labels = torch.as_tensor(run.data.train.labels[batch.images], device=device)
    out, instance_loss = _forward(run, cfg, batch, rngs, device)
    shared_bits = cfg.instance_bits and cfg.instance_backbone == "shared"
    out = all_gather_with_grad(out[:, : cfg.bits] if shared_bits else out, info)
    labels = all_gather_with_grad(labels, info)
    result = recipe.compute_loss(run.loss_fn, out, labels, batch)
    loss = result.loss * info.world_size  # DDP averages gradients over ranks
    if instance_loss is not None:  # each rank's own views, averaged by DDP as the loss is
        loss = loss + instance_loss * info.world_size
        sums.instance += float(instance_loss.detach())
    if run.penalty is not None:  # the same on every rank: averaging keeps it as it is
        reg = run.penalty()
        loss = loss + reg
        sums.l2sp += float(reg.detach())
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()
    run.lr_sched.step()
    sums.loss += float(result.loss.detach())
    sums.active += result.active_fraction
    sums.terms += result.num_terms
    sums.batches += 1


def _forward(
    run: TrainingSetup,
    cfg: TrainConfig,
    batch: Batch,
    rngs: tuple[torch.Generator, np.random.Generator],
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The batch's outputs (B, D) and, with the instance term, its loss on copy-like views."""
    aug_gen, view_rng = rngs
    if run.cache is not None:
        maps = run.cache.batch(
            batch.images, generator=aug_gen if cfg.augment else None, device=device
        )
        return run.train_net(maps), None
    images = run.data.train.images[batch.images]
    x = run.preprocess_train(images, generator=aug_gen)
    if run.instance is None:
        return run.model(x.to(device)), None
    term_fn, views = run.instance
    n = min(cfg.instance_batch or len(images), len(images))  # the batch is shuffled: any n do
    x_view = run.preprocess_eval(views(images[:n], view_rng))
    own = getattr(run.net, "instance_net", None)
    if own is not None:  # the class network sees the batch alone, as without the term
        out = run.model(x.to(device))
        inst, inst_view = own(torch.cat([x[:n], x_view]).to(device)).split(n)
        return out, term_fn(inst, inst_view).loss
    out, out_view = run.model(torch.cat([x, x_view]).to(device)).split([len(x), n])
    term = term_fn(*_instance_parts(out[:n], out_view, cfg))
    return out, term.loss


def _instance_parts(
    out: torch.Tensor, out_view: torch.Tensor, cfg: TrainConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The outputs the instance term compares, (B, D) each: the extra instance bits when the
    recipe has them, else the whole code (or embedding)."""
    if cfg.instance_bits and cfg.bits is not None:
        return out[:, cfg.bits :], out_view[:, cfg.bits :]
    return out, out_view


def _record(run: TrainingSetup, cfg: TrainConfig, epoch: int, sums: _Sums) -> dict[str, Any]:
    """The epoch's line of history (before validation and timings)."""
    n = max(1, sums.batches)
    record: dict[str, Any] = {
        "epoch": epoch + 1,
        "loss": sums.loss / n,
        "active_fraction": sums.active / n,
        "terms_per_batch": sums.terms / n,
        "lr": run.optimizer.param_groups[0]["lr"],
        "batches": sums.batches,
    }
    if run.cache is not None and epoch == 0:
        record["cache_seconds"] = round(run.cache.seconds, 3)
    if run.penalty is not None:
        record["l2sp_penalty"] = sums.l2sp / n
    if run.instance is not None:
        record["instance_loss"] = sums.instance / n
    for name in run.schedules:
        record[name] = getattr(run.loss_fn, name)
    return record
