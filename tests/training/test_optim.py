import math

import pytest
import torch

from deephash.training import optim, recipe
from deephash.training.config import TrainConfig


def test_lr_factor_warms_up_then_follows_the_schedule() -> None:
    cfg = TrainConfig(epochs=4, warmup_epochs=1, lr_schedule="cosine")
    f = optim.lr_lambda(cfg, steps_per_epoch=10)
    assert [f(s) for s in (0, 4, 9)] == [pytest.approx(v) for v in (0.1, 0.5, 1.0)]
    # after warm-up: cosine over the remaining 30 steps
    assert f(10) == pytest.approx(1.0)
    assert f(25) == pytest.approx(0.5 * (1 + math.cos(math.pi * 15 / 30)))
    assert f(40) == pytest.approx(0.0)
    step = optim.lr_lambda(TrainConfig(epochs=3, warmup_epochs=0, lr_schedule="step"), 10)
    assert [step(s) for s in (0, 10, 20)] == [pytest.approx(v) for v in (1.0, 0.1, 0.01)]


def test_param_groups_scale_the_backbone_and_include_loss_parameters() -> None:
    cfg = TrainConfig(embedding_dim=8, lr=0.01, backbone_lr_scale=0.1, loss="cross-entropy")
    model = recipe.build_network(cfg, 1)
    loss = torch.nn.Linear(8, 3)
    groups = optim.param_groups(cfg, model, loss)
    assert [g["lr"] for g in groups] == [pytest.approx(0.001), pytest.approx(0.01)]
    assert sum(p.numel() for p in groups[1]["params"]) == sum(
        p.numel() for p in [*model.head.parameters(), *loss.parameters()]
    )
    for name, kind in (
        ("sgd", torch.optim.SGD),
        ("adam", torch.optim.Adam),
        ("adamw", torch.optim.AdamW),
    ):
        cfg.optimizer = name
        assert isinstance(optim.build_optimizer(cfg, groups), kind)


def test_loss_lr_scale_puts_the_loss_parameters_in_their_own_group() -> None:
    cfg = TrainConfig(embedding_dim=8, lr=0.01, loss_lr_scale=100.0, loss="proxy-anchor")
    model = recipe.build_network(cfg, 1)
    loss = torch.nn.Linear(8, 3)
    groups = optim.param_groups(cfg, model, loss)
    assert [g["lr"] for g in groups] == [pytest.approx(v) for v in (0.01, 0.01, 1.0)]
    assert groups[2]["params"] == list(loss.parameters())
    assert groups[1]["params"] == list(model.head.parameters())
    with pytest.raises(ValueError, match="loss_lr_scale"):
        TrainConfig(loss_lr_scale=0).validate()
