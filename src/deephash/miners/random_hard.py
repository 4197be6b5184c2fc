"""``random-hard``: for every anchor-positive pair, a random margin-violating negative."""

from __future__ import annotations

import math
from typing import Literal

from deephash.distances import Metric
from deephash.miners._checks import check_choice, check_margin, check_max_triplets
from deephash.miners._select import pick_all, pick_window
from deephash.miners.base import MiningBatch, TripletMiner, Triplets, register_miner
from deephash.miners.seeded_random import SeededRandom

__all__ = ["RandomHardMiner"]


@register_miner("random-hard")
class RandomHardMiner(TripletMiner):
    """Negatives that violate the margin: ``d(a, n) < d(a, p) + margin``.

    select="one" (default): per anchor-positive pair ``(a, p)``, one such negative drawn
        uniformly at random (generator seeded by ``seed``; the same seed and inputs give the same
        triplets); pairs with no violating negative give no triplet.
    select="all": every violating triplet, i.e. pytorch-metric-learning's
        ``TripletMarginMiner(type_of_triplets="all")``; with ``margin=0`` it is its ``"hard"``
        (``d(a, n) < d(a, p)``). ``max_triplets`` caps it as in the ``all`` miner.
    The test is written ``d(a, n) - d(a, p) < margin`` in both modes. Memory O(B²).
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        select: Literal["one", "all"] = "one",
        max_triplets: int | None = None,
        seed: int | None = 0,
        metric: Metric = "euclidean",
        normalize: bool = True,
    ) -> None:
        super().__init__(metric=metric, normalize=normalize)
        self.margin = check_margin(margin)
        self.select = check_choice("select", select, ("one", "all"))
        self.max_triplets = check_max_triplets(max_triplets)
        self._rng = SeededRandom(seed)

    def mine(self, batch: MiningBatch) -> Triplets:
        if self.select == "all":
            return pick_all(batch, -math.inf, self.margin, self.max_triplets, self._rng)
        return pick_window(batch, -math.inf, self.margin, random=True, rng=self._rng)
