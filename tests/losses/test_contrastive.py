import math

import pytest
import torch

from deephash.losses import ContrastiveLoss, create_loss
from deephash.miners import create_pair_miner


def _loop(
    x: torch.Tensor, pos: list[tuple[int, int]], neg: list[tuple[int, int]], m: float
) -> float:
    e = [[v / math.hypot(*r) for v in r] for r in x.tolist()]
    terms = [math.dist(e[i], e[j]) ** 2 for i, j in pos]  # y = 1: d²
    terms += [max(0.0, m - math.dist(e[i], e[j])) ** 2 for i, j in neg]  # y = 0: max(0, m-d)²
    return sum(terms) / len(terms)


def test_given_pairs_vs_loop() -> None:
    x = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [-1.0, 0.2]])
    pos, neg = [(0, 1), (2, 3)], [(0, 2), (1, 3), (0, 3)]
    t = lambda ps, k: torch.tensor([q[k] for q in ps])  # noqa: E731
    out = ContrastiveLoss(margin=1.2).compute_pairs(x, t(pos, 0), t(pos, 1), t(neg, 0), t(neg, 1))
    assert math.isclose(out.loss.item(), _loop(x, pos, neg, 1.2), rel_tol=1e-6)
    assert out.num_terms == 5


@pytest.mark.parametrize("miner", ["all-pairs", "hard-pairs"])
def test_mined_vs_loop(miner: str) -> None:
    gen = torch.Generator().manual_seed(6)
    x = torch.randn(20, 3, generator=gen, requires_grad=True)
    y = torch.arange(4).repeat_interleave(5)
    out = create_loss("contrastive", margin=0.8, miner=miner)(x, y)
    a1, p, a2, n = create_pair_miner(miner)(x, y)
    pos = list(zip(a1.tolist(), p.tolist()))
    neg = list(zip(a2.tolist(), n.tolist()))
    assert out.num_terms == len(pos) + len(neg)
    assert math.isclose(out.loss.item(), _loop(x.detach(), pos, neg, 0.8), rel_tol=1e-5)
    out.loss.backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


def test_zero_distance_positive_pair_has_finite_gradient() -> None:
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], requires_grad=True)
    out = ContrastiveLoss()(x, torch.tensor([0, 0, 1]))
    out.loss.backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    with pytest.raises(ValueError, match="margin"):
        ContrastiveLoss(margin=0)
