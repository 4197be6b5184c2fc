"""L2-SP: regularise the backbone towards its starting point (Li, Grandvalet & Davoine, "Explicit
inductive bias for transfer learning with convolutional networks", ICML 2018).

The penalty ``weight * sum_i ||theta_i - theta_i(0)||^2`` over the backbone's parameters keeps a
network close to where it started (random init or pretrained weights) while the loss trains it. On
classes never seen in training this keeps the generic features that training on a few classes
would otherwise reshape (docs/RESULTS.md, "Unseen classes").
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["L2SP"]


class L2SP(nn.Module):
    """Snapshot ``module``'s trainable parameters now; :meth:`forward` gives the weighted squared
    distance to that snapshot (a scalar tensor with gradients to ``module``'s parameters).

    weight: the penalty's factor (>= 0; 0 gives a zero penalty without touching the parameters).
    The snapshot is a buffer, so it moves with ``.to(device)``; it is not saved in checkpoints: a
    resumed run rebuilds the same start from its seed.
    """

    def __init__(self, module: nn.Module, weight: float) -> None:
        super().__init__()
        if weight < 0:
            raise ValueError(f"the L2-SP weight must be >= 0, got {weight}")
        self.weight = float(weight)
        self._params = [p for p in module.parameters() if p.requires_grad]
        for i, p in enumerate(self._params):
            self.register_buffer(f"start_{i}", p.detach().clone(), persistent=False)

    def forward(self) -> torch.Tensor:
        if not self._params:
            return torch.zeros(())
        device = self._params[0].device
        if self.weight == 0:
            return torch.zeros((), device=device)
        total = torch.zeros((), device=device)
        for i, p in enumerate(self._params):
            total = total + (p - getattr(self, f"start_{i}")).pow(2).sum()
        return self.weight * total
