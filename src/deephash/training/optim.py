"""The optimiser of a training run: parameter groups, the optimiser, the learning-rate factor."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from deephash.training.config import TrainConfig

__all__ = ["build_optimizer", "lr_lambda", "param_groups"]


def param_groups(cfg: TrainConfig, model: nn.Module, loss: nn.Module) -> list[dict[str, Any]]:
    """Backbone at ``lr * backbone_lr_scale``; head and loss parameters (e.g. a classifier) at
    ``lr``, or the loss's own in a third group at ``lr * loss_lr_scale`` when that is not 1."""
    net: Any = getattr(model, "module", model)

    def trainable(m: nn.Module) -> list[nn.Parameter]:
        return [p for p in m.parameters() if p.requires_grad]

    backbone, head = trainable(net.backbone), trainable(net.head)
    own = getattr(net, "instance_net", None)  # an instance network of its own, trained alike
    if own is not None:
        backbone, head = backbone + trainable(own.backbone), head + trainable(own.head)
    groups = [{"params": backbone, "lr": cfg.lr * cfg.backbone_lr_scale}]
    if cfg.loss_lr_scale == 1.0:
        groups.append({"params": head + trainable(loss), "lr": cfg.lr})
    else:
        groups.append({"params": head, "lr": cfg.lr})
        groups.append({"params": trainable(loss), "lr": cfg.lr * cfg.loss_lr_scale})
    return [g for g in groups if g["params"]]


def build_optimizer(cfg: TrainConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
    """SGD (Nesterov momentum), Adam or AdamW over ``groups``, as ``cfg.optimizer`` says."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
        )
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Per-step learning-rate factor: linear warm-up, then cosine to 0, step decay, or constant."""
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = int(cfg.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        if cfg.lr_schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
        if cfg.lr_schedule == "step":
            return 0.1 ** int(t * 3)  # x0.1 at 1/3 and 2/3 of training
        return 1.0

    return factor
