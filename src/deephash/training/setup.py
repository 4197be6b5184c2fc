"""A run's set-up: everything the epochs use, built from the recipe in a fixed (seeded) order.

Data, network (with frozen first stages and their cache when the recipe has them), loss, L2-SP
penalty, instance term, schedules, optimiser and learning-rate schedule, the epoch's batches, and
the DistributedDataParallel wrappers when the run is distributed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from torch import nn

from deephash.data import Batches, ProtocolData
from deephash.data.copy_views import CopyViews
from deephash.losses.base import MetricLoss
from deephash.losses.instance import InstanceTerm
from deephash.training import optim, recipe
from deephash.training.config import TrainConfig
from deephash.training.distributed import DistInfo
from deephash.training.embedding import frozen_store
from deephash.training.frozen_cache import CachedTop, FrozenBottomCache, Preprocess, freeze_bottom
from deephash.training.l2sp import L2SP
from deephash.training.schedules import Schedule, create_schedules

__all__ = ["TrainingSetup", "build_setup", "net_of"]


@dataclass
class TrainingSetup:
    """What one run trains with. ``model`` is what the epoch calls on images (DDP-wrapped when
    distributed), ``net`` the network inside it (checkpointed, evaluated); with frozen stages
    ``train_net`` runs the trainable top on ``cache``'s maps and ``bottom`` holds the frozen part."""

    data: ProtocolData
    model: nn.Module
    net: nn.Module
    train_net: nn.Module
    bottom: nn.Module | None
    cache: FrozenBottomCache | None
    loss_fn: MetricLoss
    penalty: L2SP | None
    instance: tuple[InstanceTerm, CopyViews] | None
    schedules: dict[str, Schedule]
    optimizer: torch.optim.Optimizer
    lr_sched: torch.optim.lr_scheduler.LambdaLR
    batches: Batches
    preprocess_train: Preprocess
    preprocess_eval: Preprocess
    seconds: float  # set-up counted as training time: the loss's own set-up and the cache


def build_setup(cfg: TrainConfig, device: torch.device, info: DistInfo) -> TrainingSetup:
    """Seed with ``cfg.seed`` and build the run's objects (the order fixes what the seed draws)."""
    torch.manual_seed(cfg.seed)
    data = recipe.load_data(cfg)
    model = recipe.build_network(cfg, data.in_channels).to(device)
    # Frozen first stages (freeze_stages): their outputs are cached once, and training runs the
    # trainable top and the head on the cache (deephash.training.frozen_cache).
    bottom, train_net = None, model
    if cfg.freeze_stages:
        bottom, top = freeze_bottom(model, cfg.freeze_stages)
        train_net = CachedTop(model, top)
    # L2-SP's start point is the freshly built backbone (from the seed, or loaded weights); a
    # resumed run rebuilds the same one before its checkpoint is loaded.
    penalty = L2SP(model.get_submodule("backbone"), cfg.l2sp) if cfg.l2sp > 0 else None
    t_loss = time.perf_counter()
    # Building the loss is part of training for the two-step method (it infers target codes).
    loss_fn = recipe.build_loss(cfg, data).to(device)
    seconds = time.perf_counter() - t_loss
    schedules = create_schedules(cfg.schedules)
    optimizer = optim.build_optimizer(cfg, optim.param_groups(cfg, model, loss_fn))
    batches = recipe.build_batches(cfg, data.train.labels, rank=info.rank)
    lr_sched = torch.optim.lr_scheduler.LambdaLR(optimizer, optim.lr_lambda(cfg, len(batches)))
    preprocess_train = data.preprocessor(augment=cfg.augment)
    preprocess_eval = data.preprocessor(augment=False)
    instance = recipe.build_instance_term(cfg)
    cache = None
    if bottom is not None:
        pre = (preprocess_eval, preprocess_train)
        cache = _frozen_cache(cfg, model, bottom, data, pre, device, info)
        seconds += cache.seconds
    if info.enabled:
        model = _distributed(model, device)
        if cache is not None:
            train_net = _distributed(train_net, device)
    return TrainingSetup(
        data=data,
        model=model,
        net=net_of(model),
        train_net=train_net,
        bottom=bottom,
        cache=cache,
        loss_fn=loss_fn,
        penalty=penalty,
        instance=instance,
        schedules=schedules,
        optimizer=optimizer,
        lr_sched=lr_sched,
        batches=batches,
        preprocess_train=preprocess_train,
        preprocess_eval=preprocess_eval,
        seconds=seconds,
    )


def _frozen_cache(
    cfg: TrainConfig,
    model: nn.Module,
    bottom: nn.Module,
    data: ProtocolData,
    preprocess: tuple[Preprocess, Preprocess],
    device: torch.device,
    info: DistInfo,
) -> FrozenBottomCache:
    """The frozen stages' maps of every training image: clean (``preprocess[0]``), and
    ``cache_views`` augmented ones (``preprocess[1]``)."""
    clean, augment = preprocess
    return FrozenBottomCache.build(
        bottom,
        data.train.images,
        store=frozen_store(cfg, model, bottom, data),
        clean=clean,
        augment=augment if cfg.augment else None,
        views=cfg.cache_views if cfg.augment else 0,
        seed=cfg.seed,
        device=device,
        progress=cfg.progress and info.is_main,
    )


def _distributed(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` in a DistributedDataParallel wrapper (on this rank's GPU, or the CPU)."""
    return nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None
    )


def net_of(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
