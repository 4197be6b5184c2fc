"""A recipe (:class:`TrainConfig`) becomes the objects it names: the protocol's data, the network,
the loss with its miner, the epoch's batches and the validation sample; and the two things the
epoch loop asks of the loss: its per-epoch hooks and how a batch reaches it.

Configs hold names and numbers; this module is where training turns them into objects. The
optimiser is :mod:`deephash.training.optim`, the schedules :mod:`deephash.training.schedules`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from deephash.data import Batch, Batches, ProtocolData, default_protocol, load_protocol_data
from deephash.data.copy_views import CopyViews
from deephash.data.protocols import Protocol, create_protocol, list_protocols, protocol_spec
from deephash.losses.base import LossOutput, MetricLoss
from deephash.losses.instance import InstanceTerm
from deephash.training.config import TrainConfig

if TYPE_CHECKING:
    from deephash.models.backbones import Backbone

__all__ = [
    "build_batches",
    "build_instance_term",
    "build_loss",
    "build_network",
    "compute_loss",
    "data_info",
    "load_data",
    "load_protocol",
    "start_epoch",
    "validation_sample",
]


def load_data(cfg: TrainConfig) -> ProtocolData:
    """Load the protocol's splits (uint8 images in memory), normalised as the backbone needs
    (its pretrained weights' statistics where it has them, else the dataset's)."""
    from deephash.models import backbone_input_stats

    return load_protocol_data(
        default_protocol(cfg.protocol_name),
        data_dir=cfg.data_dir,
        download=cfg.download,
        seed=cfg.seed,
        padding=cfg.augment_padding,
        train_includes_validation=cfg.fit_validation,
        crop_scale=cfg.augment_scale,
        jitter=cfg.augment_jitter,
        normalization=backbone_input_stats(cfg.backbone),
        **cfg.protocol_options,
    )


def load_protocol(cfg: TrainConfig) -> tuple[Protocol, np.ndarray]:
    """The recipe's protocol and its pool's labels, int64 (pool_size,), without decoding images
    (as :func:`load_data` cuts the pool, for checks before any training)."""
    from deephash.data.datasets import load_dataset_labels

    name = default_protocol(cfg.protocol_name)
    if name.endswith(".json") or (name not in list_protocols() and Path(name).is_file()):
        if cfg.protocol_options:
            raise ValueError(
                f"protocol_options {sorted(cfg.protocol_options)} cannot change a saved protocol "
                f"({name})"
            )
        protocol = Protocol.load(name)
        got = load_dataset_labels(
            protocol.dataset,
            data_dir=cfg.data_dir,
            download=cfg.download,
            root=protocol.options.get("root"),
        )
        return protocol, got.labels
    spec = protocol_spec(name)
    root = cfg.protocol_options.get("root")
    if spec.dataset == "folder" and root is None:
        root = cfg.data_dir
    got = load_dataset_labels(spec.dataset, data_dir=cfg.data_dir, download=cfg.download, root=root)
    protocol = create_protocol(
        name,
        cfg.seed,
        labels=got.labels,
        is_test=got.is_test,
        data_dir=cfg.data_dir,
        **cfg.protocol_options,
    )
    return protocol, got.labels


def data_info(data: ProtocolData) -> dict[str, Any]:
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
    """Backbone from the registry plus an embedding head (metric learning) or a hash head (and,
    with ``instance_backbone: own``, the instance bits' network of their own)."""
    from deephash.models.heads import create_head
    from deephash.models.network import RetrievalNet

    backbone = _backbone(cfg, in_channels, cfg.backbone_options)
    if cfg.bits is not None:
        own = cfg.instance_backbone == "own"
        head = create_head(
            cfg.head or ("linear" if cfg.loss == "bit-bce" else "tanh"),
            backbone.out_features,
            cfg.bits + (0 if own else cfg.instance_bits),
        )
        out_dim = cfg.bits
    else:
        head = create_head(
            "embedding", backbone.out_features, cfg.embedding_dim, normalize=cfg.normalize
        )
        out_dim = cfg.embedding_dim
    return RetrievalNet(
        backbone,
        head,
        out_dim,
        retrieve_from=cfg.retrieve_from,
        instance_dims=cfg.instance_bits,
        instance_backbone_grad=cfg.instance_backbone_grad,
        instance_net=_instance_net(cfg, in_channels),
    )


def _backbone(cfg: TrainConfig, in_channels: int, options: dict[str, Any]) -> Backbone:
    """A backbone of the recipe's family with ``options``, its own classifier frozen."""
    from deephash.models import create_backbone
    from deephash.models.weights import resolve_weights

    backbone = create_backbone(
        cfg.backbone, weights=resolve_weights(cfg.weights), in_channels=in_channels, **options
    )
    # The backbone's own classifier (ResNet fc, VGG classifier.6) is kept for state-dict
    # compatibility but unused: freeze it so optimisers and DDP ignore it.
    classifier = backbone.get_classifier() if hasattr(backbone, "get_classifier") else None
    if isinstance(classifier, nn.Module):
        classifier.requires_grad_(False)
    return backbone


def _instance_net(cfg: TrainConfig, in_channels: int) -> nn.Module | None:
    """The instance bits' network of their own (``instance_backbone: own``), else None."""
    if cfg.instance_backbone != "own":
        return None
    from deephash.models.heads import create_head
    from deephash.models.instance_net import InstanceNet

    options = {**cfg.backbone_options, **cfg.instance_backbone_options}
    backbone = _backbone(cfg, in_channels, options)
    head = create_head("linear", backbone.out_features, cfg.instance_bits)
    return InstanceNet(backbone, head, cfg.instance_bits)


def build_loss(cfg: TrainConfig, data: ProtocolData) -> MetricLoss:
    """The configured loss, with its miner (if any) created by name."""
    from deephash.losses import create_loss
    from deephash.losses.base import LOSSES

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
    # Losses with one vector per class (classifiers, proxies, hash centres) get the output width
    # and the number of training classes; seeded ones (csq's centres) the run's seed.
    accepted = LOSSES.options(cfg.loss)
    if "embedding_dim" in accepted:
        options.setdefault("embedding_dim", cfg.bits if cfg.bits is not None else cfg.embedding_dim)
    if "num_classes" in accepted:
        options.setdefault("num_classes", data.num_classes)
    if "seed" in accepted:
        options.setdefault("seed", cfg.seed)
    if cfg.loss == "bit-bce":
        # Zhuang et al. 2016, step 1: binary target codes for the training split from triplet
        # constraints on its labels; step 2 (the training loop) fits the network to them.
        from deephash.hashing.two_step import TripletCodeInference
        from deephash.losses.bit_bce import TwoStepTargets

        if cfg.bits is None:
            raise ValueError("loss bit-bce (two-step hashing) needs --bits")
        infer = TripletCodeInference(cfg.bits, seed=cfg.seed, **options.pop("infer", {}))
        infer.fit(data.train.labels)
        options["targets"] = TwoStepTargets(infer.codes_)
    return create_loss(cfg.loss, **options)


def build_instance_term(cfg: TrainConfig) -> tuple[InstanceTerm, CopyViews] | None:
    """The recipe's instance term and the copy-like views it compares, or None when it is off."""
    if not cfg.uses_instance_term:
        return None
    term = InstanceTerm(cfg.instance_weight, cfg.instance_temperature, cfg.instance_spread)
    return term, CopyViews(strength=cfg.instance_view_strength)


def build_batches(cfg: TrainConfig, labels: np.ndarray, rank: int = 0) -> Batches:
    """The epoch's batches over the training labels (n,), as the config's sampling says."""
    return Batches(
        labels,
        sampling=cfg.sampling,
        batch_size=cfg.batch_size,
        p=cfg.p,
        k=cfg.k,
        batches_per_epoch=cfg.batches_per_epoch,
        seed=cfg.seed,
        rank=rank,
    )


def validation_sample(cfg: TrainConfig, data: ProtocolData) -> tuple[np.ndarray, np.ndarray]:
    """Fixed (seeded) validation queries and the sample they retrieve against: int64 indices
    (val_queries,) into ``data.validation`` and (val_database,) into ``data.val_database``.

    Usually the database sample is of the training split, and both are sorted. With class-disjoint
    validation (``data.protocol.class_disjoint_validation``) ``val_database`` is the validation
    split itself: the database sample is a seeded random order of held-out images and the queries
    are its first ones (``q == d[:len(q)]``), each left out of its own ranking.
    """
    rng = np.random.default_rng(cfg.seed + 17)
    if data.protocol.class_disjoint_validation:
        nd = min(cfg.val_database, len(data.validation.labels))
        d = rng.choice(len(data.validation.labels), nd, replace=False).astype(np.int64)
        return d[: min(cfg.val_queries, nd)].copy(), d
    nq = min(cfg.val_queries, len(data.validation.labels))
    nd = min(cfg.val_database, len(data.val_database.labels))
    q = np.sort(rng.choice(len(data.validation.labels), nq, replace=False))
    d = np.sort(rng.choice(len(data.val_database.labels), nd, replace=False))
    return q, d


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


def compute_loss(
    loss_fn: MetricLoss, out: torch.Tensor, labels: torch.Tensor, batch: Batch
) -> LossOutput:
    """Dispatch one batch to the loss: online (mining inside), offline triplets/pairs, or the
    two-step method's per-sample target codes (looked up by training-split index).

    out: float (B, D) network outputs; labels: int64 (B,) on the same device."""
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
