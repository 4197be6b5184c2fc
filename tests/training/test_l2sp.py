import pytest
import torch
from torch import nn

from deephash.training.l2sp import L2SP


def test_penalty_is_the_weighted_squared_distance_to_the_start() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    start = [p.detach().clone() for p in net.parameters()]
    penalty = L2SP(net, 0.5)
    assert float(penalty().detach()) == 0.0
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p))
    want = 0.5 * sum(float(((p - s) ** 2).sum().detach()) for p, s in zip(net.parameters(), start))
    assert float(penalty().detach()) == pytest.approx(want, rel=1e-6)
    # its gradient pulls each parameter back: d/dp = 2 * weight * (p - start)
    penalty().backward()
    for p, s in zip(net.parameters(), start):
        torch.testing.assert_close(p.grad, 2 * 0.5 * (p.detach() - s))


def test_frozen_parameters_are_left_out_and_bad_weights_refused() -> None:
    net = nn.Linear(2, 2)
    net.bias.requires_grad_(False)
    penalty = L2SP(net, 1.0)
    with torch.no_grad():
        net.bias.add_(10.0)
    assert float(penalty().detach()) == 0.0
    with pytest.raises(ValueError, match=">= 0"):
        L2SP(net, -1.0)
