"""``batch-hard``: per anchor, the farthest positive and the closest negative."""

from __future__ import annotations

from deephash.miners.base import MiningBatch, TripletMiner, Triplets, register_miner

__all__ = ["BatchHardMiner"]


@register_miner("batch-hard")
class BatchHardMiner(TripletMiner):
    """One triplet per anchor (Hermans, Beyer & Leibe 2017, "In Defense of the Triplet Loss",
    Sec. 2, Batch Hard):

        p(a) = argmax_{y_p = y_a, p != a} d(a, p),    n(a) = argmin_{y_n != y_a} d(a, n).

    Anchors without a positive or without a negative in the batch give no triplet. Same triplets
    as pytorch-metric-learning's ``BatchHardMiner`` (ties aside: ours go to the smallest index).
    Two masked reductions over the (B, B) matrix: memory O(B²).
    """

    def mine(self, batch: MiningBatch) -> Triplets:
        d = batch.dist
        inf = float("inf")
        pos_d, pos = d.masked_fill(~batch.positive_mask, -inf).max(dim=1)
        neg_d, neg = d.masked_fill(~batch.negative_mask, inf).min(dim=1)
        ok = (pos_d > -inf) & (neg_d < inf)
        anchor = ok.nonzero(as_tuple=True)[0]
        return Triplets(anchor, pos[anchor], neg[anchor])
