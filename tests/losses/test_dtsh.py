import itertools
import math

import pytest
import torch

from deephash.losses.base import create_loss
from deephash.losses.dtsh import DTSHLoss


def _brute(u: list[list[float]], labels: list[int], alpha: float, lam: float) -> tuple[float, int]:
    terms = []
    for i, j, k in itertools.product(range(len(u)), repeat=3):
        if i != j and labels[i] == labels[j] and labels[i] != labels[k]:
            th_ij = 0.5 * sum(a * b for a, b in zip(u[i], u[j]))
            th_ik = 0.5 * sum(a * b for a, b in zip(u[i], u[k]))
            x = th_ij - th_ik - alpha
            terms.append(-(x - math.log(1 + math.exp(x))))
    quant = sum(sum(((1.0 if v >= 0 else -1.0) - v) ** 2 for v in row) for row in u) / len(u)
    return sum(terms) / len(terms) + lam * quant, len(terms)


def test_dtsh_matches_brute_force() -> None:
    u = [
        [0.9, -0.2, 0.4, 0.0],
        [0.5, -0.8, 0.1, 0.3],
        [-0.7, 0.6, 0.2, -0.9],
        [-0.1, 0.95, -0.6, -0.4],
        [0.3, 0.3, -0.3, 0.8],
    ]
    labels = [0, 0, 1, 1, 2]
    for alpha, lam in [(0.0, 0.0), (1.0, 0.5), (2.5, 2.0)]:
        ref, count = _brute(u, labels, alpha, lam)
        out = DTSHLoss(alpha=alpha, lam=lam)(
            torch.tensor(u, dtype=torch.float64), torch.tensor(labels)
        )
        assert out.loss.item() == pytest.approx(ref, rel=1e-10)
        assert out.num_terms == count


def test_dtsh_is_stable_for_large_inner_products() -> None:
    u = torch.tensor([[40.0] * 8, [40.0] * 8, [-40.0] * 8])
    out = DTSHLoss(alpha=0.0, lam=0.0)(u, torch.tensor([0, 0, 1]))
    assert torch.isfinite(out.loss) and out.loss.item() == pytest.approx(0.0, abs=1e-6)
    bad = DTSHLoss(alpha=0.0, lam=0.0)(u, torch.tensor([0, 1, 1]))
    # triplet (1,2,0): Θ12 - Θ10 = -6400 - 6400 -> loss 12800; (2,1,0): Θ21 - Θ20 = 0 -> log 2
    assert bad.loss.item() == pytest.approx((12800.0 + math.log(2)) / 2)
    assert bad.active_fraction == 0.5  # active = margin violated (Θij − Θik < α)


def test_dtsh_uses_miner_and_schedulable_attributes() -> None:
    u = torch.randn(6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    trip = (torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([4, 0]))
    loss = create_loss("dtsh", alpha=1.0, lam=0.0, miner=lambda e, y: trip)
    loss.alpha = 3.0  # type: ignore[assignment]
    ref = 0.0
    for i, j, k in zip(*(t.tolist() for t in trip)):
        x = 0.5 * float(u[i] @ u[j]) - 0.5 * float(u[i] @ u[k]) - 3.0
        ref += math.log1p(math.exp(-x)) / 2
    out = loss(u, labels)
    assert out.loss.item() == pytest.approx(ref) and out.num_terms == 2


def test_dtsh_no_triplets_and_gradient() -> None:
    u = torch.tensor([[0.5, -0.5], [0.2, 0.1]], requires_grad=True)
    out = DTSHLoss(lam=1.0)(u, torch.tensor([0, 1]))
    assert out.num_terms == 0
    assert out.loss.item() == pytest.approx(((0.5**2) * 2 + 0.8**2 + 0.9**2) / 2)
    out.loss.backward()
    assert u.grad is not None
    with pytest.raises(ValueError, match="lam must be >= 0"):
        DTSHLoss(lam=-1.0)
