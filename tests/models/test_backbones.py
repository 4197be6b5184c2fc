import sys
import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deephash.models import Backbone, create_backbone, is_backbone, list_backbones
from deephash.models.backbones import register_backbone

BUILT_IN = [
    "cifar-resnet18",
    "cifar-resnet34",
    "efficientnet-lite0",
    "efficientnet-lite1",
    "efficientnet-lite2",
    "pixels",
    "resnet101",
    "resnet18",
    "resnet34",
    "resnet50",
    "small-cnn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
]
# Building these takes seconds each (VGG's fc6 alone is 103 M weights), so their grayscale
# contract run sits behind the slow marker; every entry still runs the RGB contract.
HEAVY = {
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "resnet101",
    "cifar-resnet34",
    "resnet34",
    "resnet50",
}


def test_registry_lists_every_built_in() -> None:
    assert list_backbones() == BUILT_IN
    assert list_backbones("resnet*") == ["resnet101", "resnet18", "resnet34", "resnet50"]
    assert list_backbones("vgg*_bn") == ["vgg16_bn", "vgg19_bn"]
    assert list_backbones(pretrained=True) == [
        "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2",
        "resnet101", "resnet18", "resnet34", "resnet50", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    ]  # fmt: skip


def _check_contract(model: Backbone, name: str, x: torch.Tensor) -> None:
    assert isinstance(model, nn.Module) and isinstance(model.out_features, int)
    assert model.arch == name
    for train in (True, False):
        model.train(train)
        with torch.no_grad():
            y = model(x)
        assert y.shape == (x.shape[0], model.out_features)
        assert y.dtype == torch.float32
        assert torch.isfinite(y).all()
        # features, not a constant: the two images must give different rows
        assert not torch.allclose(y[0], y[1])


@pytest.mark.parametrize("name", list_backbones())
def test_contract_rgb_32(name: str) -> None:
    torch.manual_seed(0)
    model = create_backbone(name)
    _check_contract(model, name, torch.rand(2, 3, 32, 32))


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in list_backbones()],
)
def test_contract_gray_28(name: str) -> None:
    torch.manual_seed(0)
    model = create_backbone(name, in_channels=1)
    assert model.in_channels == 1
    _check_contract(model, name, torch.rand(2, 1, 28, 28))


def test_unknown_name_lists_what_exists() -> None:
    with pytest.raises(ValueError, match=r"unknown backbone 'resnet-18'.*resnet18.*small-cnn"):
        create_backbone("resnet-18")


def test_unknown_option_lists_accepted_options() -> None:
    with pytest.raises(ValueError, match=r"unknown option\(s\) depth.*num_classes"):
        create_backbone("resnet18", depth=18)


def test_bad_in_channels() -> None:
    with pytest.raises(ValueError, match="in_channels must be >= 1"):
        create_backbone("small-cnn", in_channels=0)


def test_register_rejects_duplicates_and_colons() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_backbone("small-cnn")(lambda *, in_channels=3: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(ValueError, match="reserved for adapters"):
        register_backbone("my:net")


def test_forward_validates_input() -> None:
    model = create_backbone("small-cnn", in_channels=1)
    with pytest.raises(ValueError, match=r"built for 1-channel images but got 3.*in_channels=3"):
        model(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"floating-point.*x.float\(\) / 255"):
        model(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        model(torch.rand(1, 28, 28))


class _SizeProbe(Backbone):
    """Returns the input it received, flattened, to observe the base class's resizing."""

    def __init__(self, min_size: int) -> None:
        super().__init__()
        self.in_channels = 1
        self.out_features = 0
        self.min_input_size = min_size
        self.seen: torch.Tensor | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.seen = x
        return x.flatten(1)


@pytest.mark.parametrize(
    ("hw", "expected"),
    [((28, 28), (32, 32)), ((20, 40), (32, 64)), ((32, 32), (32, 32)), ((40, 33), (40, 33))],
)
def test_small_inputs_are_upsampled_to_min_size(
    hw: tuple[int, int], expected: tuple[int, int]
) -> None:
    probe = _SizeProbe(32)
    x = torch.rand(2, 1, *hw)
    probe(x)
    assert probe.seen is not None and tuple(probe.seen.shape[-2:]) == expected
    if expected != hw:
        ref = F.interpolate(x, size=expected, mode="bilinear", align_corners=False)
        torch.testing.assert_close(probe.seen, ref)
    else:
        assert probe.seen is x


def test_classify_applies_the_kept_classifier() -> None:
    torch.manual_seed(0)
    model = create_backbone("cifar-resnet18", num_classes=7).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        feats = model(x)
        logits = model.classify(x)
    assert logits.shape == (2, 7)
    torch.testing.assert_close(logits, feats @ model.fc.weight.T + model.fc.bias)  # type: ignore[union-attr]
    headless = create_backbone("cifar-resnet18", num_classes=0)
    assert headless.get_classifier() is None and "fc.weight" not in headless.state_dict()
    with pytest.raises(ValueError, match="no classifier"):
        headless.classify(x)


# --- adapters (torchvision / timm are not installed here) ---------------------------------------


def test_adapters_missing_library_gives_install_hint() -> None:
    if is_backbone("torchvision:resnet18") or is_backbone("timm:resnet18"):
        pytest.skip("torchvision or timm is installed")
    for name in ("torchvision:resnet18", "timm:resnet18"):
        with pytest.raises(ImportError, match=r"pip install 'deephash\[vision\]'"):
            create_backbone(name)
    assert not any(":" in n for n in list_backbones())


def test_unknown_adapter_prefix() -> None:
    with pytest.raises(ValueError, match=r"unknown backbone family 'keras'.*torchvision:.*timm:"):
        create_backbone("keras:resnet50")
    with pytest.raises(ValueError, match="names no model"):
        create_backbone("timm:")


def _tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1000)
    )


def test_torchvision_adapter_removes_classifier(monkeypatch: pytest.MonkeyPatch) -> None:
    tv = types.ModuleType("torchvision")
    models = types.ModuleType("torchvision.models")
    calls: list[tuple[str, object]] = []

    def get_model(name: str, weights: object = None) -> nn.Module:
        calls.append((name, weights))
        return _tiny_classifier()

    models.list_models = lambda module=None: ["tiny"]  # type: ignore[attr-defined]
    models.get_model = get_model  # type: ignore[attr-defined]
    tv.models = models  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", models)

    assert list_backbones("torchvision:*") == ["torchvision:tiny"]
    net = create_backbone("torchvision:tiny", weights="imagenet")
    assert calls == [("tiny", "DEFAULT")]
    assert net.out_features == 4
    ref = _tiny_classifier()[:4]
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(net(x), ref(x))
    # grayscale: the input replicated to RGB, i.e. the RGB filters summed
    gray = create_backbone("torchvision:tiny", in_channels=1)
    g = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(gray(g), ref(g.expand(-1, 3, -1, -1)))
    with pytest.raises(ValueError, match="unknown torchvision classification model 'nope'"):
        create_backbone("torchvision:nope")


def test_timm_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    class FakeTimmModel(nn.Module):
        def __init__(self, in_chans: int) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(in_chans, 6, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten()
            )
            self.head: nn.Module = nn.Linear(6, 1000)
            self.num_features = 6

        def reset_classifier(self, num_classes: int) -> None:
            assert num_classes == 0
            self.head = nn.Identity()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.body(x))

    timm = types.ModuleType("timm")
    seen: dict[str, object] = {}

    def create_model(name: str, pretrained: bool = False, in_chans: int = 3) -> nn.Module:
        seen.update(name=name, pretrained=pretrained, in_chans=in_chans)
        return FakeTimmModel(in_chans)

    timm.create_model = create_model  # type: ignore[attr-defined]
    timm.list_models = lambda: ["fake"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "timm", timm)
    assert "timm:fake" in list_backbones("timm:*")
    net = create_backbone("timm:fake", in_channels=1, weights="imagenet")
    assert seen == {"name": "fake", "pretrained": True, "in_chans": 1}
    assert net(torch.rand(3, 1, 8, 8)).shape == (3, 6)
