"""DTSH: Deep supervised hashing with triplet labels (Wang, Shi & Kitani, ACCV 2016, arXiv:1612.03900).

For relaxed codes ``u`` (B, bits) and a triplet ``(i, j, k)`` (``i, j`` similar, ``k`` not), with
``Θ_ij = ½ u_iᵀ u_j`` the paper maximizes the likelihood of the triplet labels
``p(t | u) = σ(Θ_ij − Θ_ik − α)`` (Sec. 3.2) and, after relaxing ``b`` to ``u``, minimizes (Sec. 3.3)

    L = −Σ_t (Θ_ij − Θ_ik − α − log(1 + exp(Θ_ij − Θ_ik − α))) + λ Σ_i ||b_i − u_i||²,
    b_i = sign(u_i).

Since ``−(x − log(1 + eˣ)) = softplus(−x)`` the triplet term is computed as ``softplus(α − Θ_ij +
Θ_ik)``, which never overflows. Normalization (ours; the paper writes plain sums): the triplet term
is averaged over the triplets used, the quantization term is summed over bits and averaged over the
batch samples, so ``λ`` does not depend on the batch size or the number of triplets:

    loss = mean_t softplus(α − Θ_ij + Θ_ik) + λ · mean_i ||sign(u_i) − u_i||².

Triplets: every valid triplet of the mini-batch by default (as in the paper), or a miner's.
Defaults ``alpha=5, lam=1`` follow common re-implementations; the paper tunes both per data set.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from deephash.losses.base import LossOutput, MetricLoss, register_loss
from deephash.losses.quantization import quantization_error
from deephash.losses.triplet_hash import TripletMinerLike, resolve_miner, select_triplets

__all__ = ["DTSHLoss"]


@register_loss("dtsh")
class DTSHLoss(MetricLoss):
    """DTSH triplet negative log-likelihood plus quantization error.

    forward(u float (B, bits) relaxed codes, labels int (B,)) -> LossOutput; ``num_terms`` is the
    number of triplets; ``active_fraction`` the share of triplets with ``Θ_ij − Θ_ik < α``.
    ``alpha`` and ``lam`` are plain float attributes a schedule may change.
    """

    def __init__(
        self,
        *,
        alpha: float = 5.0,
        lam: float = 1.0,
        miner: TripletMinerLike | str | None = None,
    ) -> None:
        super().__init__()
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.alpha = float(alpha)
        self.lam = float(lam)
        self.miner = resolve_miner(miner)

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        u = embeddings
        a, p, n = select_triplets(u, labels, self.miner)
        quant = quantization_error(u)
        if a.numel() == 0:
            return LossOutput(loss=self.lam * quant, num_terms=0, active_fraction=0.0)
        theta = 0.5 * (u @ u.T)
        margin = theta[a, p] - theta[a, n] - self.alpha
        nll = F.softplus(-margin).mean()
        active = float((margin < 0).float().mean().item())
        return LossOutput(
            loss=nll + self.lam * quant, num_terms=int(a.numel()), active_fraction=active
        )
