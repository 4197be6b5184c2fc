"""Objects from a :class:`TrainConfig`: data, network, loss, optimiser, batches, preprocessing.

Configs hold names and numbers; this module is the one place that turns them into objects.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deephash.losses.base import LossOutput, MetricLoss
from deephash.training.config import TrainConfig

__all__ = [
    "Batch",
    "Batches",
    "Data",
    "build_batches",
    "build_loss",
    "build_network",
    "build_optimizer",
    "build_schedules",
    "compute_loss",
    "data_info",
    "default_protocol",
    "load_data",
    "lr_lambda",
    "param_groups",
    "preprocessor",
    "start_epoch",
    "validation_sample",
    "write_hash_extras",
]

Data = Any  # deephash.data.ProtocolData


def load_data(cfg: TrainConfig) -> Data:
    """Load the protocol's splits (uint8 images in memory)."""
    from deephash.data import load_protocol_data

    return load_protocol_data(
        default_protocol(cfg.protocol_name),
        data_dir=cfg.data_dir,
        download=cfg.download,
        seed=cfg.seed,
        padding=cfg.augment_padding,
        train_includes_validation=cfg.fit_validation,
        **cfg.protocol_options,
    )


def default_protocol(name: str) -> str:
    """A dataset name stands for its standard protocol (``cifar10`` -> ``cifar10-s1``)."""
    from deephash.data import list_protocols

    if name in list_protocols() or name.endswith(".json"):
        return name
    aliases = {"cifar10": "cifar10-s1", "cifar-10": "cifar10-s1", "fmnist": "fashion-mnist"}
    return aliases.get(name, name)


def data_info(data: Data) -> dict[str, Any]:
    """What a saved model needs to preprocess new images like its training data."""
    return {
        "in_channels": int(data.in_channels),
        "num_classes": int(data.num_classes),
        "mean": [float(v) for v in np.atleast_1d(data.mean)],
        "std": [float(v) for v in np.atleast_1d(data.std)],
        "image_shape": [int(v) for v in data.train.images.shape[1:3]],
        "class_names": [str(c) for c in (data.train.class_names or [])],
        "protocol": data.protocol_name,
    }


def build_network(cfg: TrainConfig, in_channels: int) -> nn.Module:
    """Backbone from the registry plus an embedding head (metric learning) or a hash head."""
    from deephash.models import create_backbone
    from deephash.models.heads import create_head
    from deephash.models.network import RetrievalNet

    backbone = create_backbone(
        cfg.backbone,
        weights=resolve_weights(cfg.weights),
        in_channels=in_channels,
        **cfg.backbone_options,
    )
    # The backbone's own classifier (ResNet fc, VGG classifier.6) is kept for state-dict
    # compatibility but unused: freeze it so optimisers and DDP ignore it.
    classifier = backbone.get_classifier() if hasattr(backbone, "get_classifier") else None
    if isinstance(classifier, nn.Module):
        classifier.requires_grad_(False)
    if cfg.bits is not None:
        head = create_head(
            cfg.head or ("linear" if cfg.loss == "bit-bce" else "tanh"),
            backbone.out_features,
            cfg.bits,
        )
        out_dim = cfg.bits
    else:
        head = create_head(
            "embedding", backbone.out_features, cfg.embedding_dim, normalize=cfg.normalize
        )
        out_dim = cfg.embedding_dim
    return RetrievalNet(backbone, head, out_dim)


def resolve_weights(weights: str | None) -> str | dict[str, torch.Tensor] | None:
    """``weights`` may name a deephash run folder: then its best checkpoint's backbone is used."""
    if weights is None or weights == "imagenet":
        return weights
    p = Path(weights)
    if p.is_dir():
        from deephash.training.checkpoint import load_checkpoint

        ckpt = p / "best.pt" if (p / "best.pt").exists() else p / "last.pt"
        if not ckpt.exists():
            raise FileNotFoundError(
                f"{p} is a folder but holds no deephash checkpoint (best.pt/last.pt)"
            )
        state = load_checkpoint(ckpt)["model"]
        return {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    return weights


def build_loss(cfg: TrainConfig, data: Data) -> MetricLoss:
    """The configured loss, with its miner (if any) created by name."""
    import deephash.losses  # noqa: F401  (registers every loss)
    from deephash.losses import create_loss

    options = dict(cfg.loss_options)
    if cfg.miner is not None:
        from deephash.miners import create_miner, create_pair_miner, list_pair_miners, miner_options

        m_opts = dict(cfg.miner_options)
        if cfg.miner in list_pair_miners():
            options["miner"] = create_pair_miner(cfg.miner, **m_opts)
        else:
            # A miner's margin follows the loss's unless set on its own.
            if "margin" in options and "margin" in miner_options(cfg.miner):
                m_opts.setdefault("margin", options["margin"])
            if "seed" in miner_options(cfg.miner):
                m_opts.setdefault("seed", cfg.seed)
            options["miner"] = create_miner(cfg.miner, **m_opts)
    dim = cfg.bits if cfg.bits is not None else cfg.embedding_dim
    if cfg.loss in {"cross-entropy", "norm-softmax", "combined"}:
        options.setdefault("embedding_dim", dim)
        options.setdefault("num_classes", data.num_classes)
    if cfg.loss == "bit-bce":
        # Zhuang et al. 2016, step 1: binary target codes for the training split from triplet
        # constraints on its labels; step 2 (the training loop) fits the network to them.
        from deephash.hashing.two_step import TripletCodeInference, TwoStepTargets

        if cfg.bits is None:
            raise ValueError("loss bit-bce (two-step hashing) needs --bits")
        infer = TripletCodeInference(cfg.bits, seed=cfg.seed, **options.pop("infer", {}))
        infer.fit(data.train.labels)
        options["targets"] = TwoStepTargets(infer.codes_)
    return create_loss(cfg.loss, **options)


def build_schedules(cfg: TrainConfig) -> dict[str, Callable[[float], float]]:
    from deephash.training.schedules import create_schedule

    return {name: create_schedule(spec) for name, spec in cfg.schedules.items()}


def param_groups(cfg: TrainConfig, model: nn.Module, loss: nn.Module) -> list[dict[str, Any]]:
    """Backbone at ``lr * backbone_lr_scale``; head and loss parameters (e.g. a classifier) at ``lr``."""
    net: Any = getattr(model, "module", model)

    def trainable(m: nn.Module) -> list[nn.Parameter]:
        return [p for p in m.parameters() if p.requires_grad]

    groups = [
        {"params": trainable(net.backbone), "lr": cfg.lr * cfg.backbone_lr_scale},
        {"params": trainable(net.head) + trainable(loss), "lr": cfg.lr},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(cfg: TrainConfig, groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
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


@dataclass
class Batch:
    """One training batch: ``images`` indexes the training split; offline sampling adds indices
    into that batch: ``triplets`` (3, T), or ``pairs`` = (a1, p, a2, n) positive and negative pairs."""

    images: np.ndarray
    triplets: np.ndarray | None = None
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None


class Batches:
    """Iterable of :class:`Batch` for one epoch; ``set_epoch`` re-seeds it deterministically."""

    def __init__(self, cfg: TrainConfig, labels: np.ndarray, rank: int = 0) -> None:
        self.cfg = cfg
        self.labels = np.asarray(labels)
        self.rank = rank
        self.epoch = 0
        seed = cfg.seed + 100_003 * rank
        if cfg.sampling == "pk":
            from deephash.data import PKSampler

            self.sampler: Any = PKSampler(
                self.labels, cfg.p, cfg.k, seed=seed, batches_per_epoch=cfg.batches_per_epoch
            )
            self._len = len(self.sampler)
        elif cfg.sampling == "random":
            self._len = cfg.batches_per_epoch or len(self.labels) // cfg.batch_size
        else:
            from deephash.data.offline import RandomPairDataset, RandomTripletDataset

            n_batches = cfg.batches_per_epoch or len(self.labels) // cfg.batch_size
            n = n_batches * cfg.batch_size
            if cfg.sampling == "offline-triplets":
                self.sampler = RandomTripletDataset(self.labels, num_triplets=n, seed=seed)
            else:
                self.sampler = RandomPairDataset(self.labels, num_pairs=n, seed=seed)
            self._len = n_batches
        self._seed = seed

    def __len__(self) -> int:
        return self._len

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        if self.cfg.sampling != "random":
            self.sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[Batch]:
        cfg = self.cfg
        if cfg.sampling == "pk":
            for idx in self.sampler:
                yield Batch(images=np.asarray(idx, dtype=np.int64))
        elif cfg.sampling == "random":
            rng = np.random.default_rng([self._seed, self.epoch])
            perm = rng.permutation(len(self.labels))
            for b in range(self._len):
                yield Batch(images=perm[b * cfg.batch_size : (b + 1) * cfg.batch_size])
        else:
            rows = np.asarray(self.sampler.rows)
            for b in range(self._len):
                chunk = rows[b * cfg.batch_size : (b + 1) * cfg.batch_size]
                if cfg.sampling == "offline-triplets":
                    uniq, inv = np.unique(chunk[:, :3], return_inverse=True)
                    yield Batch(images=uniq, triplets=inv.reshape(-1, 3).T)
                else:
                    uniq, inv = np.unique(chunk[:, :2], return_inverse=True)
                    local = inv.reshape(-1, 2)
                    pos = chunk[:, 2] == 1
                    yield Batch(
                        images=uniq,
                        pairs=(local[pos, 0], local[pos, 1], local[~pos, 0], local[~pos, 1]),
                    )


def build_batches(cfg: TrainConfig, labels: np.ndarray, rank: int = 0) -> Batches:
    return Batches(cfg, labels, rank)


def preprocessor(data: Data, *, augment: bool) -> Callable[..., torch.Tensor]:
    """uint8 batch (B, H, W[, C]) -> normalised float (B, C, H, W), optionally augmented with the
    dataset's own settings (no flips for digits, padding suited to the image size)."""
    transform = data.batch_transform(train=augment)

    def run(images: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
        out: torch.Tensor = transform(
            torch.from_numpy(np.ascontiguousarray(images)), generator=generator
        )
        return out

    return run


def validation_sample(cfg: TrainConfig, data: Data) -> tuple[np.ndarray, np.ndarray]:
    """Fixed (seeded) validation queries and the training-split sample they retrieve against."""
    rng = np.random.default_rng(cfg.seed + 17)
    nq = min(cfg.val_queries, len(data.validation.labels))
    nd = min(cfg.val_database, len(data.val_database.labels))
    q = np.sort(rng.choice(len(data.validation.labels), nq, replace=False))
    d = np.sort(rng.choice(len(data.val_database.labels), nd, replace=False))
    return q, d


def compute_loss(
    loss_fn: MetricLoss, out: torch.Tensor, labels: torch.Tensor, batch: Batch
) -> LossOutput:
    """Dispatch one batch to the loss: online (mining inside), offline triplets/pairs, or the
    two-step method's per-sample target codes (looked up by training-split index)."""
    if getattr(loss_fn, "targets", None) is not None:
        return loss_fn(out, torch.as_tensor(batch.images, device=out.device))
    result: LossOutput
    if batch.triplets is not None:
        a, p, n = (torch.as_tensor(t, device=out.device) for t in batch.triplets)
        result = loss_fn.compute_triplets(out, a, p, n)  # type: ignore[operator]
        return result
    if batch.pairs is not None:
        a1, p, a2, n = (torch.as_tensor(t, device=out.device) for t in batch.pairs)
        result = loss_fn.compute_pairs(out, a1, p, a2, n)  # type: ignore[operator]
        return result
    return loss_fn(out, labels)


def write_hash_extras(
    cfg: TrainConfig,
    q: np.ndarray,
    ql: np.ndarray,
    db: np.ndarray,
    dl: np.ndarray,
    metrics: dict[str, Any],
    run_dir: Path,
) -> None:
    """Bit statistics into ``metrics`` and a precision–recall curve plot for a hashing run."""
    from deephash import metrics as m
    from deephash.codes import pack_bits, sign
    from deephash.hashing.bit_stats import bit_stats
    from deephash.viz import plot_precision_recall

    assert cfg.bits is not None
    qc, dc = pack_bits(sign(q)), pack_bits(sign(db))
    stats = bit_stats(dc, cfg.bits)
    metrics["bit_stats"] = {
        "balance": [round(float(v), 4) for v in stats.balance],
        "max_abs_balance": stats.max_abs_balance,
        "distinct_fraction": stats.distinct_fraction,
        "mean_abs_correlation": stats.mean_abs_correlation,
        "max_abs_correlation": stats.max_abs_correlation,
    }
    curve = m.precision_recall_curve(qc, ql, dc, dl, distance="hamming", bits=cfg.bits)
    precision, recall = np.asarray(curve.precision), np.asarray(curve.recall)
    metrics["pr_curve"] = curve.to_dict()
    plot_precision_recall(
        {f"{cfg.loss} {cfg.bits} bits": (precision, recall)},
        run_dir / "pr_curve.png",
        title="Hamming ranking precision–recall",
    )


def start_epoch(loss_fn: MetricLoss, cfg: TrainConfig, epoch: int) -> None:
    """Per-epoch hooks of the loss and its miner: curriculum progress, and re-seeding of random
    miners from (seed, epoch) so that a resumed run draws the same triplets as an uninterrupted one."""
    miner = getattr(loss_fn, "miner", None)
    for obj in (loss_fn, miner):
        if obj is None:
            continue
        hook: Any = getattr(obj, "set_progress", None)
        if callable(hook):
            hook(epoch / cfg.epochs)
        hook = getattr(obj, "reseed", None)
        if callable(hook):
            hook(cfg.seed * 1_000_003 + epoch)
