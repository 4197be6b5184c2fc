import math

import pytest
import torch

from deephash.distances import Distance, pairwise_distances, safe_sqrt


def _loop(x: torch.Tensor, y: torch.Tensor, metric: str, normalize: bool) -> list[list[float]]:
    xs, ys = x.tolist(), y.tolist()
    if normalize or metric == "cosine":
        xs = [[v / math.hypot(*r) for v in r] for r in xs]
        ys = [[v / math.hypot(*r) for v in r] for r in ys]
    out = []
    for u in xs:
        row = []
        for v in ys:
            if metric == "cosine":
                row.append(1 - sum(a * b for a, b in zip(u, v)))
            else:
                d = math.dist(u, v)
                row.append(d * d if metric == "squared_euclidean" else d)
        out.append(row)
    return out


@pytest.mark.parametrize("metric", ["euclidean", "squared_euclidean", "cosine"])
@pytest.mark.parametrize("normalize", [True, False])
def test_matches_loop(metric: str, normalize: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(7, 5, generator=gen, dtype=torch.float64) * 3
    y = torch.randn(4, 5, generator=gen, dtype=torch.float64)
    got = pairwise_distances(x, y, metric=metric, normalize=normalize)
    assert torch.allclose(got, torch.tensor(_loop(x, y, metric, normalize), dtype=torch.float64))
    self_d = Distance(metric, normalize).matrix(x)  # type: ignore[arg-type]
    assert torch.allclose(self_d, torch.tensor(_loop(x, x, metric, normalize), dtype=torch.float64))
    assert bool((self_d.diagonal() == 0).all())


def test_no_nan_gradient_at_zero_distance() -> None:
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0], [0.0, 1.0]], requires_grad=True)  # a duplicate
    for normalize in (True, False):
        d = pairwise_distances(x, metric="euclidean", normalize=normalize)
        d.sum().backward()
        assert x.grad is not None and bool(torch.isfinite(x.grad).all())
        x.grad = None
    # the gradient of ||x0 - x2|| is the unit vector, as by hand
    d = pairwise_distances(x, metric="euclidean", normalize=False)
    d[0, 2].backward()
    assert x.grad is not None
    assert torch.allclose(x.grad[0], torch.tensor([1.0, 1.0]) / math.sqrt(2))
    z = torch.zeros(3, requires_grad=True)
    safe_sqrt(z).sum().backward()
    assert z.grad is not None and z.grad.tolist() == [0.0, 0.0, 0.0]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="unknown metric"):
        Distance("manhattan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same D"):
        pairwise_distances(torch.zeros(2, 3), torch.zeros(2, 4))
