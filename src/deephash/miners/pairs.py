"""Pair miners for pair losses (contrastive): ``all-pairs`` and ``hard-pairs``."""

from __future__ import annotations

import torch

from deephash.miners.base import MiningBatch, PairMiner, Pairs, register_pair_miner

__all__ = ["AllPairsMiner", "HardPairsMiner"]


@register_pair_miner("all-pairs")
class AllPairsMiner(PairMiner):
    """Every ordered positive pair ``(i, j)``, ``i != j``, ``y_i == y_j``, and every ordered
    negative pair, ``y_i != y_j``; row-major order. Both ``(i, j)`` and ``(j, i)`` appear, as in
    pytorch-metric-learning's ``get_all_pairs_indices`` (for a symmetric pair loss this only
    doubles every term, leaving the mean unchanged)."""

    def mine(self, batch: MiningBatch) -> Pairs:
        a1, p = batch.positive_mask.nonzero(as_tuple=True)
        a2, n = batch.negative_mask.nonzero(as_tuple=True)
        return Pairs(a1, p, a2, n)


@register_pair_miner("hard-pairs")
class HardPairsMiner(PairMiner):
    """Every ordered positive pair, plus as many negative pairs as there are positive pairs:
    the closest ones in the whole batch (``min(#positive, #negative)`` of them; ties go to the
    smaller row-major index). Balances the two sides of the contrastive loss, which all-pairs
    leaves dominated by easy negatives. Ordered pairs as in ``all-pairs``, so a hard negative
    pair and its mirror usually come together. Output sorted row-major. Memory O(B²).
    """

    def mine(self, batch: MiningBatch) -> Pairs:
        a1, p = batch.positive_mask.nonzero(as_tuple=True)
        flat = batch.dist.masked_fill(~batch.negative_mask, float("inf")).flatten()
        k = min(int(a1.shape[0]), int(batch.negative_mask.sum()))
        b = batch.size
        if k == 0:
            e = torch.empty(0, dtype=torch.long, device=flat.device)
            return Pairs(a1, p, e, e.clone())
        # A stable sort makes ties deterministic (smaller flat index first); topk does not.
        order = torch.sort(flat, stable=True).indices[:k]
        order = torch.sort(order).values
        return Pairs(a1, p, order // b, order % b)
