import pytest
from torch import nn

from deephash.training import builders
from deephash.training.config import TrainConfig


def _convs(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())


def test_backbone_options_reach_the_backbone() -> None:
    plain = builders.build_network(TrainConfig(embedding_dim=16), 1)
    deep = builders.build_network(
        TrainConfig(embedding_dim=16, backbone_options={"depths": [1, 2, 2], "out_features": 64}),
        1,
    )
    assert _convs(plain) == 3 and _convs(deep) == 5
    assert deep.backbone.out_features == 64


def test_backbone_options_that_do_not_fit_are_a_clear_error() -> None:
    cfg = TrainConfig(backbone_options={"depth": [1, 2, 2]})
    with pytest.raises(ValueError, match=r"'small-cnn' got unknown option\(s\) depth; .*depths"):
        builders.build_network(cfg, 1)
