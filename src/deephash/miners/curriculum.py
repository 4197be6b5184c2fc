"""``curriculum``: semi-hard negatives early, hardest negatives late, on a schedule."""

from __future__ import annotations

import math

from deephash.distances import Metric
from deephash.miners._checks import check_margin
from deephash.miners._select import pick_window
from deephash.miners.base import (
    MiningBatch,
    TripletMiner,
    Triplets,
    _check_fraction,
    register_miner,
)

__all__ = ["CurriculumMiner"]


@register_miner("curriculum")
class CurriculumMiner(TripletMiner):
    """Hardness curriculum (ours): per anchor-positive pair, the closest negative inside the window

        (1 - t) · d(a, p) < d(a, n) < d(a, p) + margin,        t = progress in [0, 1].

    At t = 0 this is FaceNet's semi-hard rule (``semi-hard`` miner, ``select="hardest"``): only
    negatives farther than the positive, which avoids the collapse the FaceNet paper reports for
    the hardest negatives early in training. As t grows the lower edge slides linearly towards
    the anchor, admitting harder negatives; at t = 1 it picks the hardest negative among those
    violating the margin. Pairs whose window holds no negative give no triplet.

    The trainer calls ``set_progress(fraction)`` (e.g. epoch / epochs); ``progress`` starts at 0.
    Deterministic (ties to the smallest index). Memory O(B²).
    """

    def __init__(
        self,
        *,
        margin: float = 0.2,
        progress: float = 0.0,
        metric: Metric = "euclidean",
        normalize: bool = True,
    ) -> None:
        super().__init__(metric=metric, normalize=normalize)
        self.margin = check_margin(margin, allow_zero=False)
        _check_fraction(progress)
        self.progress = float(progress)

    def set_progress(self, fraction: float) -> None:
        """Set the training progress t in [0, 1] that places the window's lower edge."""
        _check_fraction(fraction)
        self.progress = float(fraction)

    def mine(self, batch: MiningBatch) -> Triplets:
        return pick_window(batch, -math.inf, self.margin, scale=1.0 - self.progress)
