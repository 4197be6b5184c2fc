"""The instance term: a loss between two copy-like views of each image, added to a class loss.

Class losses pull every image of a class onto one code; a search engine must also tell the items
of a class apart, and find an item from a re-saved or edited copy of it. The instance term asks
the relaxed code of one view of an image to be nearer to the code of another view of *the same
image* than to any other image of the batch (NT-Xent, Chen et al. 2020, as CIBHash uses between
the codes of two views), and optionally spreads the codes of a batch apart (KoLeo, the
Kozachenko–Leonenko entropy estimator that SSCD adds for copy detection, Pizzi et al. 2022).

Both act on L2-normalised outputs, so they fit relaxed codes in (-1, 1) and float embeddings alike.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from deephash.losses.base import LossOutput

__all__ = ["InstanceTerm", "koleo", "nt_xent"]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent between two views: z1, z2 float (B, D), row i of each a view of image i.

    Each of the 2B outputs is classified among the other 2B - 1 by cosine similarity / temperature,
    its other view being the right answer; the mean cross-entropy (scalar) is returned.
    """
    if z1.shape != z2.shape or z1.ndim != 2:
        raise ValueError(
            f"views must be two (B, D) tensors of one shape, got {z1.shape}, {z2.shape}"
        )
    b = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(b)]).to(z.device)
    return F.cross_entropy(sim, target)


def koleo(z: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KoLeo spread: -mean_i log(min_{j != i} ||z_i - z_j||) of the L2-normalised rows of z (B, D).

    Lower when every output's nearest other output is far away (scalar)."""
    if z.ndim != 2 or z.shape[0] < 2:
        raise ValueError(f"koleo needs (B, D) with B >= 2, got {tuple(z.shape)}")
    n = F.normalize(z, dim=1)
    dots = n @ n.T
    dots = dots.masked_fill(torch.eye(len(n), dtype=torch.bool, device=n.device), -2.0)
    # ||a - b||^2 = 2 - 2 a.b for unit vectors: the nearest other row has the largest dot product
    nearest = torch.sqrt((2 - 2 * dots.max(dim=1).values).clamp_min(0) + eps)
    return -torch.log(nearest + eps).mean()


class InstanceTerm(nn.Module):
    """``weight`` · NT-Xent(view 1, view 2) + ``spread`` · KoLeo(view 1), for outputs (B, D).

    weight, spread >= 0; temperature > 0 (SimCLR's 0.1–0.5).
    """

    def __init__(self, weight: float, temperature: float = 0.2, spread: float = 0.0) -> None:
        super().__init__()
        for name, value in (("weight", weight), ("spread", spread)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"instance {name} must be a number >= 0 (0: off), got {value!r}")
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(f"instance temperature must be a number > 0, got {temperature!r}")
        self.weight, self.temperature, self.spread = (
            float(weight),
            float(temperature),
            float(spread),
        )

    def forward(self, z1: torch.Tensor, z2: torch.Tensor) -> LossOutput:
        loss = z1.new_zeros(())
        if self.weight > 0:
            loss = loss + self.weight * nt_xent(z1, z2, self.temperature)
        if self.spread > 0:
            loss = loss + self.spread * koleo(z1)
        return LossOutput(loss=loss, num_terms=2 * z1.shape[0], active_fraction=1.0)
