"""``multi-similarity``: the pair mining step of the Multi-Similarity loss (Wang et al. 2019)."""

from __future__ import annotations

import torch

from deephash.distances import Metric
from deephash.miners.base import MiningBatch, PairMiner, Pairs, register_pair_miner

__all__ = ["MultiSimilarityMiner"]


@register_pair_miner("multi-similarity")
class MultiSimilarityMiner(PairMiner):
    """The pair mining step of Wang, Han, Huang, Dong & Scott, "Multi-Similarity Loss with General
    Pair Weighting for Deep Metric Learning", CVPR 2019. With the cosine
    similarity ``S`` of L2-normalised embeddings, for each anchor i:

        negative pair (i, j) is kept if  S_ij + ε > min_{k: y_k = y_i, k ≠ i} S_ik
        positive pair (i, j) is kept if  S_ij - ε < max_{k: y_k ≠ y_i} S_ik

    i.e. negatives more similar than the least similar positive (minus ε), and positives less
    similar than the most similar negative (plus ε). Written with the distance ``d = 1 - S``
    (``metric="cosine"``, the paper's and the default) the rule is: positive if ``d_ij + ε >
    min_neg d``, negative if ``d_ij - ε < max_pos d``, which this miner applies to whichever
    ``metric`` it is given. An anchor keeps a positive exactly when it keeps a negative (both say
    ``min_pos S < max_neg S + ε``); anchors without a positive or a negative in the batch keep
    nothing. Same pairs as pytorch-metric-learning's ``MultiSimilarityMiner`` (which lists them
    per anchor in similarity order; here row-major order). Ordered pairs; memory O(B²).

    epsilon: ε >= 0 (0.1 in the paper).
    """

    def __init__(
        self, *, epsilon: float = 0.1, metric: Metric = "cosine", normalize: bool = True
    ) -> None:
        super().__init__(metric=metric, normalize=normalize)
        if not epsilon >= 0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.epsilon = float(epsilon)

    def mine(self, batch: MiningBatch) -> Pairs:
        d = batch.dist
        inf = torch.tensor(float("inf"), dtype=d.dtype, device=d.device)
        # Per anchor: the closest negative and the farthest positive (+-inf when there is none).
        min_neg = torch.where(batch.negative_mask, d, inf).min(dim=1, keepdim=True).values
        max_pos = torch.where(batch.positive_mask, d, -inf).max(dim=1, keepdim=True).values
        keep_pos = batch.positive_mask & (d + self.epsilon > min_neg)
        keep_neg = batch.negative_mask & (d - self.epsilon < max_pos)
        a1, p = keep_pos.nonzero(as_tuple=True)
        a2, n = keep_neg.nonzero(as_tuple=True)
        return Pairs(a1, p, a2, n)
