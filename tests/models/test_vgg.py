import pytest
import torch
import torch.nn.functional as F

from deephash.models import VGG, create_backbone, load_backbone_weights

# Indices of the convolutions in torchvision's ``features`` (conv, ReLU [, BN] and pools counted).
VGG16_CONVS = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]
VGG19_CONVS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
VGG16_BN_CONVS = [0, 3, 7, 10, 14, 17, 20, 24, 27, 30, 34, 37, 40]


def _meta(name: str, **options: object) -> VGG:
    with torch.device("meta"):
        model = create_backbone(name, **options)
    assert isinstance(model, VGG)
    return model


def _classifier_keys() -> list[str]:
    return [f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")]


def test_vgg16_keys_match_torchvision() -> None:
    sd = _meta("vgg16").state_dict()
    expected = [f"features.{i}.{p}" for i in VGG16_CONVS for p in ("weight", "bias")]
    assert list(sd) == expected + _classifier_keys()
    assert len(sd) == 32
    assert tuple(sd["features.0.weight"].shape) == (64, 3, 3, 3)
    assert tuple(sd["features.28.weight"].shape) == (512, 512, 3, 3)
    assert tuple(sd["classifier.0.weight"].shape) == (4096, 512 * 7 * 7)
    assert tuple(sd["classifier.3.weight"].shape) == (4096, 4096)
    assert tuple(sd["classifier.6.weight"].shape) == (1000, 4096)


def test_vgg19_keys_match_torchvision() -> None:
    sd = _meta("vgg19").state_dict()
    expected = [f"features.{i}.{p}" for i in VGG19_CONVS for p in ("weight", "bias")]
    assert list(sd) == expected + _classifier_keys()


def test_vgg16_bn_keys_match_torchvision() -> None:
    sd = _meta("vgg16_bn").state_dict()
    assert len(sd) == 13 * 2 + 13 * 5 + 6 == 97
    for i in VGG16_BN_CONVS:
        assert f"features.{i}.weight" in sd and f"features.{i + 1}.running_var" in sd
    assert "features.41.num_batches_tracked" in sd


@pytest.mark.parametrize(
    ("name", "params"),
    [("vgg16", 138_357_544), ("vgg19", 143_667_240), ("vgg16_bn", 138_365_992),
     ("vgg19_bn", 143_678_248)],
)  # fmt: skip
def test_parameter_counts_match_torchvision(name: str, params: int) -> None:
    assert sum(p.numel() for p in _meta(name).parameters()) == params


def test_features_are_fc7_after_relu() -> None:
    torch.manual_seed(0)
    # a tiny configuration exercises the same code path as VGG-16 in milliseconds
    net = VGG([8, "M", 16, "M"], in_channels=3, num_classes=5, arch="tiny").eval()
    x = torch.rand(2, 3, 32, 32)
    h = x
    for i in (0, 3):  # conv, relu, pool
        conv = net.features[i]
        h = F.max_pool2d(F.relu(F.conv2d(h, conv.weight, conv.bias, padding=1)), 2)
    h = F.adaptive_avg_pool2d(h, 7).flatten(1)
    fc6, fc7, fc8 = net.classifier[0], net.classifier[3], net.classifier[6]
    fc7_out = F.relu(F.linear(F.relu(F.linear(h, fc6.weight, fc6.bias)), fc7.weight, fc7.bias))
    with torch.no_grad():
        torch.testing.assert_close(net(x), fc7_out)
        torch.testing.assert_close(net.classify(x), F.linear(fc7_out, fc8.weight, fc8.bias))


def test_28px_input_is_upsampled_to_32() -> None:
    torch.manual_seed(0)
    net = VGG([8, "M", 8, "M", 8, "M", 8, "M", 8, "M"], in_channels=1, arch="tiny").eval()
    x = torch.rand(2, 1, 28, 28)
    up = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(up))


def test_grayscale_adaptation_targets_the_vgg_stem() -> None:
    with torch.device("meta"):
        rgb = create_backbone("vgg16")
        gray = create_backbone("vgg16", in_channels=1)
    result = load_backbone_weights(gray, rgb.state_dict())
    assert result.adapted == ["features.0.weight"]
    assert len(result.loaded) == 32


def test_headless_vgg_ignores_fc8_when_loading() -> None:
    with torch.device("meta"):
        full = create_backbone("vgg16")
        headless = create_backbone("vgg16", num_classes=0)
    assert "classifier.6.weight" not in headless.state_dict()
    result = load_backbone_weights(headless, full.state_dict())
    assert result.skipped == ["classifier.6.bias", "classifier.6.weight"]


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="dropout"):
        VGG([8, "M"], dropout=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        VGG([8, "M"], num_classes=-1)
