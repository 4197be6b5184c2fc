"""``hardest``: for every anchor-positive pair, the closest negative."""

from __future__ import annotations

from deephash.miners._select import pick_window
from deephash.miners.base import MiningBatch, TripletMiner, Triplets, register_miner

__all__ = ["HardestNegativeMiner"]


@register_miner("hardest")
class HardestNegativeMiner(TripletMiner):
    """One triplet per anchor-positive pair ``(a, p)``: ``n = argmin_{y_n != y_a} d(a, n)``.

    Every (a, p) pair with at least one negative in the batch yields a triplet, whether or not it
    violates any margin (the loss decides; its ``active_fraction`` reports how many do). Ties go
    to the smallest index. Memory O(B²). Options: ``metric``, ``normalize`` (see ``Distance``).
    """

    def mine(self, batch: MiningBatch) -> Triplets:
        return pick_window(batch)
