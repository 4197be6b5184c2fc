from typing import Any

import pytest
import torch
from torch import nn

from deephash.training import recipe
from deephash.training.config import TrainConfig


def _convs(model: nn.Module) -> int:
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())


def test_backbone_options_reach_the_backbone() -> None:
    plain = recipe.build_network(TrainConfig(embedding_dim=16), 1)
    deep = recipe.build_network(
        TrainConfig(embedding_dim=16, backbone_options={"depths": [1, 2, 2], "out_features": 64}),
        1,
    )
    assert _convs(plain) == 3 and _convs(deep) == 5
    assert deep.backbone.out_features == 64


def test_backbone_options_that_do_not_fit_are_a_clear_error() -> None:
    cfg = TrainConfig(backbone_options={"depth": [1, 2, 2]})
    with pytest.raises(ValueError, match=r"'small-cnn' got unknown option\(s\) depth; .*depths"):
        recipe.build_network(cfg, 1)


def test_augment_padding_zero_means_flips_only(tiny_config_values: dict[str, Any]) -> None:
    cfg = TrainConfig(**{**tiny_config_values, "augment_padding": 0})
    data = recipe.load_data(cfg)
    assert data.batch_transform(train=True).padding == 0
    images = data.train.images[:64]
    plain = data.preprocessor(augment=False)(images)
    out = data.preprocessor(augment=True)(images, torch.Generator().manual_seed(0))
    same = (out == plain).flatten(1).all(1)
    flipped = (out == plain.flip(-1)).flatten(1).all(1)
    assert bool((same | flipped).all())  # every image is itself or its mirror: no crop
    assert 0 < int(flipped.sum()) < 64  # and about half are mirrored
    # The dataset default (None) crops: 28 px images get 4 px of padding.
    default = recipe.load_data(TrainConfig(**tiny_config_values))
    assert default.batch_transform(train=True).padding == 4


def test_negative_augment_padding_is_rejected() -> None:
    with pytest.raises(ValueError, match="augment_padding must be >= 0"):
        TrainConfig(augment_padding=-1).validate()


@pytest.mark.parametrize(
    "loss,bits,extra",
    [("proxy-anchor", None, {}), ("arcface", None, {"scale": 16.0}), ("csq", 16, {})],
)
def test_class_vector_losses_get_width_classes_and_seed(
    loss: str, bits: int | None, extra: dict[str, Any], tiny_config_values: dict[str, Any]
) -> None:
    cfg = TrainConfig(
        **{**tiny_config_values, "loss": loss, "bits": bits, "seed": 7, "loss_options": extra}
    )
    data = recipe.load_data(cfg)
    built: Any = recipe.build_loss(cfg, data)
    assert built.embedding_dim == (bits or cfg.embedding_dim)
    assert built.num_classes == data.num_classes == 10
    if loss == "csq":
        from deephash.losses import hash_centers

        assert built.seed == 7
        assert torch.equal(built.centers, torch.from_numpy(hash_centers(10, 16, seed=7)))
    if loss == "arcface":
        assert built.scale == 16.0


def test_multi_similarity_with_its_miner_by_name(tiny_config_values: dict[str, Any]) -> None:
    from deephash.miners import MultiSimilarityMiner

    cfg = TrainConfig(
        **{
            **tiny_config_values,
            "loss": "multi-similarity",
            "miner": "multi-similarity",
            "miner_options": {"epsilon": 0.2},
        }
    )
    built: Any = recipe.build_loss(cfg, recipe.load_data(cfg))
    assert isinstance(built.miner, MultiSimilarityMiner) and built.miner.epsilon == 0.2


def test_strong_augmentation_and_projection_head_reach_data_and_network(
    tiny_config_values: dict[str, Any],
) -> None:
    values = {
        **tiny_config_values,
        "augment_padding": 0,
        "augment_scale": 0.6,
        "augment_jitter": 0.4,
        "retrieve_from": "backbone",
    }
    cfg = TrainConfig(**values)
    data = recipe.load_data(cfg)
    t = data.batch_transform(train=True)
    assert (t.crop_scale, t.jitter) == (0.6, 0.4)
    assert data.batch_transform(train=False).augment is False  # evaluation never augments
    images = data.train.images[:16]
    plain = data.preprocessor(augment=False)(images)
    out = data.preprocessor(augment=True)(images, torch.Generator().manual_seed(0))
    same = (out == plain).flatten(1).all(1) | (out == plain.flip(-1)).flatten(1).all(1)
    assert not bool(same.any())  # every image is cropped / jittered beyond a flip
    net = recipe.build_network(cfg, data.in_channels).eval()
    assert net.out_dim == net.backbone.out_features
    with torch.no_grad():
        assert net(plain).shape == (16, net.backbone.out_features)


@pytest.mark.parametrize(
    "values,message",
    [
        ({"augment_scale": 0.0}, "augment_scale"),
        ({"augment_scale": 1.5}, "augment_scale"),
        ({"augment_jitter": 1.0}, "augment_jitter"),
        ({"retrieve_from": "neck"}, "retrieve_from must be"),
        ({"retrieve_from": "backbone", "bits": 16}, "itq baseline"),
    ],
)
def test_strong_augmentation_and_retrieve_from_are_checked(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrainConfig(**values).validate()
