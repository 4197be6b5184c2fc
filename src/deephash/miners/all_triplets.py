"""``all``: every valid triplet of the batch, optionally only those violating a margin."""

from __future__ import annotations

import math

from deephash.distances import Metric
from deephash.miners._checks import check_margin, check_max_triplets
from deephash.miners._select import pick_all
from deephash.miners.base import MiningBatch, TripletMiner, Triplets, register_miner
from deephash.miners.seeded_random import SeededRandom

__all__ = ["AllTripletsMiner"]


@register_miner("all")
class AllTripletsMiner(TripletMiner):
    """All triplets ``(a, p, n)``: ``y_a == y_p``, ``a != p``, ``y_a != y_n``.

    margin: ``None`` (default) keeps every valid triplet; a float keeps only the triplets that
        violate it, ``d(a, n) - d(a, p) < margin`` (the set pytorch-metric-learning's
        ``TripletMarginMiner(type_of_triplets="all")`` returns, up to ties at the boundary).
    max_triplets: cap; when more triplets qualify, a uniformly random subset of exactly this many
        is returned (seeded by ``seed``). The number of triplets grows as ``B · (K-1) · (B-K)`` for
        K samples per class, e.g. 31.5M at B = 1,024 with 32 classes × 32, so set a cap for big
        batches. Enumeration is chunked over anchor-positive pairs: memory O(B²) plus the output.
    Output order: lexicographic in (a, p, n).
    """

    def __init__(
        self,
        *,
        margin: float | None = None,
        max_triplets: int | None = None,
        seed: int | None = 0,
        metric: Metric = "euclidean",
        normalize: bool = True,
    ) -> None:
        super().__init__(metric=metric, normalize=normalize)
        self.margin = None if margin is None else check_margin(margin)
        self.max_triplets = check_max_triplets(max_triplets)
        self._rng = SeededRandom(seed)

    def mine(self, batch: MiningBatch) -> Triplets:
        hi = math.inf if self.margin is None else self.margin
        return pick_all(batch, -math.inf, hi, self.max_triplets, self._rng)
