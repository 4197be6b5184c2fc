"""``semi-hard``: FaceNet's negatives farther than the positive but inside the margin."""

from __future__ import annotations

from typing import Literal

from deephash.distances import Metric
from deephash.miners._checks import check_choice, check_margin, check_max_triplets
from deephash.miners._select import pick_all, pick_window
from deephash.miners.base import MiningBatch, TripletMiner, Triplets, register_miner
from deephash.miners.seeded_random import SeededRandom

__all__ = ["SemiHardMiner"]


@register_miner("semi-hard")
class SemiHardMiner(TripletMiner):
    """Semi-hard negatives (Schroff, Kalenichenko & Philbin, FaceNet, CVPR 2015, Sec. 3.2):

        d(a, p) < d(a, n) < d(a, p) + margin     (tested as 0 < d(a,n) - d(a,p) < margin)

    FaceNet uses all anchor-positive pairs and, for each, a semi-hard negative; the paper does
    not say which one, so ``select`` makes it explicit:

    select="hardest" (default): per (a, p), the semi-hard negative closest to the anchor (the
        hardest one that is still farther than the positive; TensorFlow's
        ``triplet_semihard_loss`` makes the same choice). Pairs with no semi-hard negative give no
        triplet (TensorFlow would fall back to the farthest negative; we don't, so every returned
        triplet satisfies the definition).
    select="random": per (a, p), a uniformly random semi-hard negative (seeded by ``seed``).
    select="all": every semi-hard triplet, i.e. pytorch-metric-learning's
        ``TripletMarginMiner(type_of_triplets="semihard")``; ``max_triplets`` caps it.
    Use the loss's distance: FaceNet's margin is on *squared* L2 (``metric="squared_euclidean"``).
    Memory O(B²).
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        select: Literal["hardest", "random", "all"] = "hardest",
        max_triplets: int | None = None,
        seed: int | None = 0,
        metric: Metric = "euclidean",
        normalize: bool = True,
    ) -> None:
        super().__init__(metric=metric, normalize=normalize)
        self.margin = check_margin(margin, allow_zero=False)
        self.select = check_choice("select", select, ("hardest", "random", "all"))
        self.max_triplets = check_max_triplets(max_triplets)
        self._rng = SeededRandom(seed)

    def mine(self, batch: MiningBatch) -> Triplets:
        if self.select == "all":
            return pick_all(batch, 0.0, self.margin, self.max_triplets, self._rng)
        random = self.select == "random"
        return pick_window(batch, 0.0, self.margin, random=random, rng=self._rng)
