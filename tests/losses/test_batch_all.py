import math

import pytest
import torch

from deephash.losses import BatchAllLoss, create_loss


def _loop(x: torch.Tensor, y: list[int], m: float, soft: bool) -> tuple[float, int, int]:
    e = [[v / math.hypot(*r) for v in r] for r in x.tolist()]
    terms = []
    for a in range(len(y)):
        for p in range(len(y)):
            if p == a or y[p] != y[a]:
                continue
            for n in range(len(y)):
                if y[n] != y[a]:
                    z = math.dist(e[a], e[p]) - math.dist(e[a], e[n])
                    terms.append(math.log1p(math.exp(z)) if soft else max(0.0, z + m))
    active = sum(t > 0 for t in terms)
    return sum(terms) / (len(terms) if soft else active), len(terms), active


@pytest.mark.parametrize("soft", [False, True])
def test_vs_loop_and_autograd(soft: bool) -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(18, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0] * 6 + [1] * 6 + [2] * 4 + [3, 4])
    out = BatchAllLoss(margin=0.4, soft_margin=soft)(x, y)
    value, n, active = _loop(x.detach(), y.tolist(), 0.4, soft)
    assert out.num_terms == n
    assert math.isclose(out.loss.item(), value, rel_tol=1e-9)
    assert math.isclose(out.active_fraction, active / n)
    out.loss.backward()
    ours = x.grad.clone()  # type: ignore[union-attr]
    # reference gradient: plain autograd over the explicit (B, B, B) cube
    x.grad = None
    xn = torch.nn.functional.normalize(x, dim=1)
    d = (xn[:, None] - xn[None]).pow(2).sum(-1).clamp_min(1e-30).sqrt()
    same = y[:, None] == y[None, :]
    valid = (same & ~torch.eye(18, dtype=torch.bool))[:, :, None] & ~same[:, None, :]
    z = d[:, :, None] - d[:, None, :]
    t = (torch.nn.functional.softplus(z) if soft else (z + 0.4).clamp_min(0)) * valid
    (t.sum() / (valid.sum() if soft else (t > 0).sum())).backward()
    assert torch.allclose(ours, x.grad, atol=1e-9)  # type: ignore[arg-type]


def test_matches_pml_triplet_margin_loss() -> None:
    """PML's TripletMarginLoss (all triplets, mean over non-zero) is batch-all with a hinge."""
    losses = pytest.importorskip("pytorch_metric_learning.losses")
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(64, 16, generator=gen)
    y = torch.arange(8).repeat_interleave(8)
    theirs = losses.TripletMarginLoss(margin=0.2)(x, y)
    assert math.isclose(
        float(create_loss("batch-all", margin=0.2)(x, y).loss), float(theirs), rel_tol=1e-4
    )


def test_given_triplets() -> None:
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.1]])
    out = BatchAllLoss(margin=0.1).compute_triplets(
        x, torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([2, 2])
    )
    e = [[v / math.hypot(*r) for v in r] for r in x.tolist()]
    t1 = max(0.0, math.dist(e[0], e[1]) - math.dist(e[0], e[2]) + 0.1)
    t2 = max(0.0, math.dist(e[1], e[0]) - math.dist(e[1], e[2]) + 0.1)
    assert math.isclose(out.loss.item(), (t1 + t2) / sum(t > 0 for t in (t1, t2)), rel_tol=1e-6)


@pytest.mark.slow
def test_batch_1024() -> None:
    """B = 1,024 with 15.5M triplets: chunked, never materializes the cube with gradient."""
    gen = torch.Generator().manual_seed(0)
    big = torch.randn(1024, 32, generator=gen, requires_grad=True)
    yb = torch.arange(64).repeat_interleave(16)
    o = BatchAllLoss()(big, yb)
    assert o.num_terms == 1024 * 15 * 1008
    o.loss.backward()
    assert big.grad is not None and bool(torch.isfinite(big.grad).all())
