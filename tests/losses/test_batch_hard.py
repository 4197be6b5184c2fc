import math

import pytest
import torch

from deephash.losses import BatchHardLoss, create_loss


def _loop(x: torch.Tensor, y: list[int], m: float, soft: bool, normalize: bool) -> float:
    e = x.tolist()
    if normalize:
        e = [[v / math.hypot(*r) for v in r] for r in e]
    terms = []
    for a in range(len(y)):
        pos = [math.dist(e[a], e[p]) for p in range(len(y)) if p != a and y[p] == y[a]]
        neg = [math.dist(e[a], e[n]) for n in range(len(y)) if y[n] != y[a]]
        if not pos or not neg:
            continue
        z = max(pos) - min(neg)
        terms.append(math.log1p(math.exp(z)) if soft else max(0.0, z + m))
    return sum(terms) / len(terms)


@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("normalize", [True, False])
def test_vs_loop(soft: bool, normalize: bool) -> None:
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(20, 4, generator=gen, requires_grad=True)
    y = torch.tensor([0] * 5 + [1] * 5 + [2] * 5 + [3] * 4 + [4])  # class 4: no positive
    out = BatchHardLoss(margin=0.3, soft_margin=soft, normalize=normalize)(x, y)
    assert out.num_terms == 19
    assert math.isclose(
        out.loss.item(), _loop(x.detach(), y.tolist(), 0.3, soft, normalize), rel_tol=1e-5
    )
    out.loss.backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


def test_gradient_equals_max_min_autograd() -> None:
    """Mining without grad + gather gives the same gradient as autograd through max/min."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(16, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.arange(4).repeat_interleave(4)
    create_loss("batch-hard", margin=0.5, normalize=False)(x, y).loss.backward()
    ours = x.grad.clone()  # type: ignore[union-attr]
    x.grad = None
    d = torch.cdist(x, x)
    same = y[:, None] == y[None, :]
    eye = torch.eye(16, dtype=torch.bool)
    hp = d.masked_fill(~same | eye, -1e9).max(1).values
    hn = d.masked_fill(same, 1e9).min(1).values
    (hp - hn + 0.5).clamp_min(0).mean().backward()
    assert torch.allclose(ours, x.grad)  # type: ignore[arg-type]
