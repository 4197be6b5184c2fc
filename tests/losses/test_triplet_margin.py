import math

import pytest
import torch

from deephash.losses import TripletMarginLoss, create_loss
from deephash.miners import create_miner


def _unit(v: list[float]) -> list[float]:
    n = math.hypot(*v)
    return [a / n for a in v]


def _loop_loss(x: torch.Tensor, trip: list[tuple[int, int, int]], m: float, squared: bool) -> float:
    e = [_unit(r) for r in x.tolist()]
    total = 0.0
    for a, p, n in trip:
        dp, dn = math.dist(e[a], e[p]), math.dist(e[a], e[n])
        if squared:
            dp, dn = dp * dp, dn * dn
        total += max(0.0, dp - dn + m)
    return total / len(trip)


# Hand-built: 2-D unit circle, labels 0/1.
X = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0], [0.6, 0.8], [-1.0, 0.0], [0.9, -0.3]])
Y = torch.tensor([0, 0, 0, 1, 1, 1])
TRIP = [(0, 1, 3), (1, 2, 3), (0, 2, 5), (3, 4, 1), (4, 3, 2), (5, 3, 0)]


@pytest.mark.parametrize("squared", [True, False])
def test_given_triplets_vs_loop(squared: bool) -> None:
    loss = TripletMarginLoss(margin=0.3, squared=squared)
    a, p, n = (torch.tensor(c) for c in zip(*TRIP))
    out = loss.compute_triplets(X, a, p, n)
    assert out.num_terms == 6
    assert math.isclose(out.loss.item(), _loop_loss(X, TRIP, 0.3, squared), rel_tol=1e-5)
    e = [_unit(r) for r in X.tolist()]
    active = [
        (math.dist(e[a], e[p]) ** (2 if squared else 1))
        - (math.dist(e[a], e[n]) ** (2 if squared else 1))
        + 0.3
        > 0
        for a, p, n in TRIP
    ]
    assert math.isclose(out.active_fraction, sum(active) / 6)


def test_mined_equals_loop_over_mined_triplets() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(32, 6, generator=gen, requires_grad=True)
    y = torch.arange(4).repeat_interleave(8)
    loss = create_loss("triplet-margin", margin=0.4, miner="semi-hard")
    t = create_miner("semi-hard", margin=0.4, metric="squared_euclidean")(x, y)
    out = loss(x, y)
    trip = list(zip(*(v.tolist() for v in t)))
    assert out.num_terms == len(trip) > 0
    assert math.isclose(out.loss.item(), _loop_loss(x.detach(), trip, 0.4, True), rel_tol=1e-5)
    out.loss.backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())


def test_margin_schedule_reaches_the_miner() -> None:
    loss = TripletMarginLoss(margin=0.2)
    loss.margin = 0.5
    x, y = torch.randn(16, 4), torch.arange(4).repeat_interleave(4)
    loss(x, y)
    assert loss.miner.margin == 0.5
    mine = create_miner("hardest")
    assert TripletMarginLoss(miner=mine).miner is mine


def test_gradient_finite_with_duplicates_and_empty() -> None:
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], requires_grad=True)
    y = torch.tensor([0, 0, 1, 1])
    out = TripletMarginLoss(miner="all").compute_triplets(
        x, torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    )
    out.loss.backward()
    assert math.isclose(out.loss.item(), 0.2, rel_tol=1e-6)
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    empty = TripletMarginLoss()(x, torch.arange(4))  # no positives: zero loss, still backward-able
    assert empty.num_terms == 0 and empty.loss.item() == 0.0
    empty.loss.backward()
    del y


def test_bad_indices() -> None:
    loss = TripletMarginLoss()
    with pytest.raises(ValueError, match="outside"):
        loss.compute_triplets(X, torch.tensor([0]), torch.tensor([9]), torch.tensor([1]))
    with pytest.raises(ValueError, match="same length"):
        loss.compute_triplets(X, torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([3]))
    with pytest.raises(ValueError, match="margin"):
        TripletMarginLoss(margin=-1)
