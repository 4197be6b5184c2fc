"""Shared machinery for losses on mined triplets or pairs (private).

A loss built on a miner mines under ``no_grad`` (the miner does that), then evaluates its terms on
the gradient-carrying ``(B, B)`` distance matrix at the mined indices. The same terms are
available for externally given indices (``compute_triplets`` / ``compute_pairs``), so offline
triplets from ``deephash.data.offline`` go through exactly the same code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from deephash.distances import Distance, Metric
from deephash.losses.base import LossOutput, MetricLoss

if TYPE_CHECKING:
    from deephash.miners import PairMiner, TripletMiner

__all__ = [
    "MinedPairLoss",
    "MinedTripletLoss",
    "check_indices",
    "check_pairs",
    "pair_miner",
    "zero_loss",
]


def zero_loss(embeddings: torch.Tensor) -> LossOutput:
    """A zero loss still attached to the graph (backward gives zero gradients, not an error)."""
    return LossOutput(embeddings.sum() * 0.0, 0, 0.0)


def check_indices(batch_size: int, names: tuple[str, ...], *idx: torch.Tensor) -> None:
    """Validate index tensors: 1-D, integer, equal length within a group, inside [0, B)."""
    for name, t in zip(names, idx):
        if not isinstance(t, torch.Tensor) or t.ndim != 1:
            raise ValueError(f"{name} must be a 1-D int64 tensor of batch indices")
        if t.is_floating_point() or t.dtype == torch.bool:
            raise ValueError(f"{name} must hold integer indices, got dtype {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= batch_size):
            raise ValueError(
                f"{name} has indices outside [0, {batch_size}): "
                f"min {int(t.min())}, max {int(t.max())}"
            )


def check_pairs(
    embeddings: torch.Tensor,
    a1: torch.Tensor,
    p: torch.Tensor,
    a2: torch.Tensor,
    n: torch.Tensor,
) -> None:
    """Validate given pairs: embeddings (B, D), positive pairs (a1, p) and negative pairs (a2, n)
    as int64 (P,) / (N,) batch indices of matching lengths."""
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be (B, D), got shape {tuple(embeddings.shape)}")
    check_indices(embeddings.shape[0], ("a1", "p", "a2", "n"), a1, p, a2, n)
    if a1.shape != p.shape or a2.shape != n.shape:
        raise ValueError(
            f"a1/p and a2/n must pair up, got lengths {a1.shape[0]}/{p.shape[0]} and "
            f"{a2.shape[0]}/{n.shape[0]}"
        )


def pair_miner(miner: Any, **options: Any) -> Any:
    """A pair miner from its name (created with ``options``) or the miner object itself."""
    if isinstance(miner, str):
        from deephash.miners import create_pair_miner

        return create_pair_miner(miner, **options)
    if callable(miner):
        return miner
    raise ValueError(f"miner must be a pair-miner name or object, got {type(miner).__name__}")


def _miner_kwargs(
    name: str, metric: Metric, normalize: bool, margin: float | None
) -> tuple[dict[str, Any], bool]:
    from deephash.miners import miner_options

    opts = miner_options(name)
    kwargs: dict[str, Any] = {"metric": metric, "normalize": normalize}
    # Pass the loss's margin only to miners whose margin is a window (default is a float);
    # ``all`` (margin default None = keep everything) stays unfiltered.
    sync = margin is not None and isinstance(opts.get("margin"), float)
    if sync:
        kwargs["margin"] = margin
    return kwargs, sync


class MinedTripletLoss(MetricLoss):
    """Base for losses on triplets: subclasses implement ``triplet_terms`` and may override
    ``reduce``.

    miner: a triplet miner object, or a miner name. A name is built with this loss's ``metric``
        and ``normalize`` and, for miners with a margin window (``semi-hard``, ``random-hard``,
        ``curriculum``), with this loss's ``margin``; the loss then keeps that miner's margin equal
        to its own when a schedule changes ``loss.margin``. A miner object is used as given.
    """

    margin: float | None

    def __init__(
        self,
        *,
        miner: TripletMiner | str,
        metric: Metric,
        normalize: bool,
        margin: float | None,
    ) -> None:
        super().__init__()
        self.distance = Distance(metric, normalize)
        self.margin = margin
        self._sync_margin = False
        if isinstance(miner, str):
            from deephash.miners import create_miner

            kwargs, self._sync_margin = _miner_kwargs(miner, metric, normalize, margin)
            self.miner: Any = create_miner(miner, **kwargs)
        elif callable(miner):
            self.miner = miner
        else:
            raise ValueError(f"miner must be a miner name or object, got {type(miner).__name__}")

    def set_progress(self, fraction: float) -> None:
        """Forward training progress in [0, 1] to the miner (used by scheduled miners)."""
        if hasattr(self.miner, "set_progress"):
            self.miner.set_progress(fraction)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        if self._sync_margin:
            self.miner.margin = self.margin
        anchor, positive, negative = self.miner(embeddings, labels)
        return self.compute_triplets(embeddings, anchor, positive, negative)

    def compute_triplets(
        self,
        embeddings: torch.Tensor,
        anchor: torch.Tensor,
        positive: torch.Tensor,
        negative: torch.Tensor,
    ) -> LossOutput:
        """The loss on given triplets (e.g. offline ones).

        embeddings: float (B, D); anchor, positive, negative: int64 (T,) indices into the batch.
        """
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must be (B, D), got shape {tuple(embeddings.shape)}")
        check_indices(
            embeddings.shape[0], ("anchor", "positive", "negative"), anchor, positive, negative
        )
        if not anchor.shape == positive.shape == negative.shape:
            raise ValueError(
                "anchor, positive and negative must have the same length, got "
                f"{anchor.shape[0]}, {positive.shape[0]}, {negative.shape[0]}"
            )
        if anchor.numel() == 0:
            return zero_loss(embeddings)
        dev = embeddings.device
        anchor, positive, negative = (t.to(dev).long() for t in (anchor, positive, negative))
        dist = self.distance.matrix(embeddings)
        terms = self.triplet_terms(dist[anchor, positive], dist[anchor, negative])
        return self.reduce(terms)

    def triplet_terms(self, d_ap: torch.Tensor, d_an: torch.Tensor) -> torch.Tensor:
        """Per-triplet losses float (T,) from anchor-positive and anchor-negative distances."""
        raise NotImplementedError

    def reduce(self, terms: torch.Tensor) -> LossOutput:
        """Mean over all triplets; ``active_fraction`` = share of non-zero terms."""
        active = int((terms > 0).sum()) / terms.numel()
        return LossOutput(terms.mean(), int(terms.numel()), active)


class MinedPairLoss(MetricLoss):
    """Base for losses on pairs: subclasses implement ``pair_terms``.

    miner: a pair miner object or name (``create_pair_miner``), built with this loss's metric.
    """

    def __init__(self, *, miner: PairMiner | str, metric: Metric, normalize: bool) -> None:
        super().__init__()
        self.distance = Distance(metric, normalize)
        self.miner: Any = pair_miner(miner, metric=metric, normalize=normalize)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        a1, p, a2, n = self.miner(embeddings, labels)
        return self.compute_pairs(embeddings, a1, p, a2, n)

    def compute_pairs(
        self,
        embeddings: torch.Tensor,
        a1: torch.Tensor,
        p: torch.Tensor,
        a2: torch.Tensor,
        n: torch.Tensor,
    ) -> LossOutput:
        """The loss on given pairs: positive pairs (a1, p) int64 (P,), negative pairs (a2, n)
        int64 (N,), indices into embeddings float (B, D). The mean is over all P + N pairs."""
        check_pairs(embeddings, a1, p, a2, n)
        if a1.numel() + a2.numel() == 0:
            return zero_loss(embeddings)
        dev = embeddings.device
        a1, p, a2, n = (t.to(dev).long() for t in (a1, p, a2, n))
        dist = self.distance.matrix(embeddings)
        pos_terms, neg_terms = self.pair_terms(dist[a1, p], dist[a2, n])
        terms = torch.cat([pos_terms, neg_terms])
        active = int((terms > 0).sum()) / terms.numel()
        return LossOutput(terms.mean(), int(terms.numel()), active)

    def pair_terms(
        self, d_pos: torch.Tensor, d_neg: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pair losses for positive pairs (P,) and negative pairs (N,)."""
        raise NotImplementedError
