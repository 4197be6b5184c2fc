"""Fixtures shared by the loss tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn

from deephash.losses import MetricLoss


def _train_toy(loss: MetricLoss, out_dim: int, *, steps: int = 30, tanh: bool = False) -> list:
    """A few Adam steps of a linear map (and the loss's own parameters) on a fixed, learnable
    batch: 4 classes x 8 samples around class means in 10-D. Returns the loss per step."""
    gen = torch.Generator().manual_seed(0)
    means = torch.randn(4, 10, generator=gen) * 2
    y = torch.arange(4).repeat_interleave(8)
    x = means[y] + torch.randn(32, 10, generator=gen)
    torch.manual_seed(0)
    net: nn.Module = nn.Linear(10, out_dim)
    if tanh:
        net = nn.Sequential(net, nn.Tanh())
    opt = torch.optim.Adam(list(net.parameters()) + list(loss.parameters()), lr=0.01)
    history = []
    for _ in range(steps):
        out = loss(net(x), y)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        history.append(float(out.loss.detach()))
    return history


@pytest.fixture
def train_toy() -> Callable[..., list]:
    """``train_toy(loss, out_dim, steps=30, tanh=False) -> [loss per step]``: gradients of the loss
    reach the network and its own parameters and make it fall."""
    return _train_toy
