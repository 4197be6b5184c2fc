from pathlib import Path

import pytest
import torch

from deephash.models import ResNet, create_backbone

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _meta(name: str, **options: object) -> ResNet:
    with torch.device("meta"):  # shapes and keys only: no memory, no init cost
        model = create_backbone(name, **options)
    assert isinstance(model, ResNet)
    return model


def _bn(prefix: str) -> list[str]:
    return [f"{prefix}.{b}" for b in BN]


def test_resnet18_keys_match_torchvision() -> None:
    sd = _meta("resnet18").state_dict()
    # torchvision's order for the stem and the first block, written out by hand
    expected_head = [
        "conv1.weight", *_bn("bn1"),
        "layer1.0.conv1.weight", *_bn("layer1.0.bn1"),
        "layer1.0.conv2.weight", *_bn("layer1.0.bn2"),
        "layer1.1.conv1.weight",
    ]  # fmt: skip
    assert list(sd)[: len(expected_head)] == expected_head
    assert list(sd)[-2:] == ["fc.weight", "fc.bias"]
    for key in [
        "layer2.0.downsample.0.weight", *_bn("layer2.0.downsample.1"),
        "layer3.0.downsample.0.weight", "layer4.0.downsample.1.running_var",
        "layer4.1.conv2.weight", "layer4.1.bn2.num_batches_tracked",
    ]:  # fmt: skip
        assert key in sd
    assert "layer1.0.downsample.0.weight" not in sd  # 64 -> 64, stride 1: identity shortcut
    # 1 stem conv + 8 blocks × 2 convs + 3 projections = 20 convs, each followed by a BN with
    # 2 parameters + 3 buffers; plus fc weight and bias.
    assert len(sd) == 20 + 20 * 5 + 2 == 122
    shapes = {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.conv1.weight": (64, 64, 3, 3),
        "layer2.0.conv1.weight": (128, 64, 3, 3),
        "layer2.0.downsample.0.weight": (128, 64, 1, 1),
        "layer4.1.conv2.weight": (512, 512, 3, 3),
        "fc.weight": (1000, 512),
        "fc.bias": (1000,),
        "bn1.num_batches_tracked": (),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key


def test_resnet50_keys_match_torchvision() -> None:
    sd = _meta("resnet50").state_dict()
    # 1 + 16 bottlenecks × 3 convs + 4 projections = 53 convs and 53 BNs, plus fc.
    assert len(sd) == 53 + 53 * 5 + 2 == 320
    shapes = {
        "layer1.0.conv1.weight": (64, 64, 1, 1),
        "layer1.0.conv2.weight": (64, 64, 3, 3),
        "layer1.0.conv3.weight": (256, 64, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),  # channel projection even at stride 1
        "layer2.0.conv1.weight": (128, 256, 1, 1),
        "layer2.0.conv2.weight": (128, 128, 3, 3),
        "layer3.5.conv3.weight": (1024, 256, 1, 1),
        "layer4.2.conv3.weight": (2048, 512, 1, 1),
        "layer4.2.bn3.running_mean": (2048,),
        "fc.weight": (1000, 2048),
    }
    for key, shape in shapes.items():
        assert tuple(sd[key].shape) == shape, key
    assert "layer3.6.conv1.weight" not in sd  # ResNet-50 has 6 blocks in layer3


def test_resnet101_has_23_blocks_in_layer3() -> None:
    sd = _meta("resnet101").state_dict()
    assert "layer3.22.bn3.weight" in sd and "layer3.23.conv1.weight" not in sd
    assert len(sd) == (1 + 33 * 3 + 4) * 6 + 2  # 104 convs + 104 BNs (×5 entries) + fc


@pytest.mark.parametrize(
    ("name", "params"),
    # torchvision's published parameter counts (``*_Weights.IMAGENET1K_V1.meta["num_params"]``)
    [("resnet18", 11_689_512), ("resnet34", 21_797_672), ("resnet50", 25_557_032),
     ("resnet101", 44_549_160)],
)  # fmt: skip
def test_parameter_counts_match_torchvision(name: str, params: int) -> None:
    assert sum(p.numel() for p in _meta(name).parameters()) == params


def test_strided_conv_is_the_3x3_in_bottlenecks() -> None:
    m = _meta("resnet50")
    assert m.layer2[0].conv1.stride == (1, 1) and m.layer2[0].conv2.stride == (2, 2)


def test_cifar_resnet_differs_only_in_stem() -> None:
    imagenet = _meta("resnet18").state_dict()
    cifar = _meta("cifar-resnet18", num_classes=1000).state_dict()
    assert list(cifar) == list(imagenet)
    diff = [k for k in imagenet if imagenet[k].shape != cifar[k].shape]
    assert diff == ["conv1.weight"] and tuple(cifar["conv1.weight"].shape) == (64, 3, 3, 3)
    assert tuple(_meta("cifar-resnet18").state_dict()["fc.weight"].shape) == (10, 512)
    assert len(_meta("cifar-resnet34").state_dict()) == len(_meta("resnet34").state_dict())


@pytest.mark.parametrize(("name", "grid"), [("resnet18", 1), ("cifar-resnet18", 4)])
def test_stem_downsampling(name: str, grid: int) -> None:
    # ImageNet stem: /32 in total, so layer4 sees 1×1 at 32 px; CIFAR stem: /8, 4×4.
    model = create_backbone(name).eval()
    seen: list[tuple[int, ...]] = []
    model.layer4.register_forward_hook(lambda m, i, o: seen.append(tuple(o.shape)))
    with torch.no_grad():
        model(torch.rand(1, 3, 32, 32))
    assert seen == [(1, 512, grid, grid)]


def test_init_is_torchvision_like() -> None:
    torch.manual_seed(0)
    model = create_backbone("resnet18")
    w = model.layer3[0].conv1.weight  # kaiming normal, fan_out = 256 * 3 * 3
    assert abs(w.std().item() - (2.0 / (256 * 9)) ** 0.5) < 0.003
    assert torch.equal(model.bn1.weight, torch.ones(64)) and torch.equal(
        model.bn1.bias, torch.zeros(64)
    )
    zero = create_backbone("resnet18", zero_init_residual=True)
    assert torch.count_nonzero(zero.layer1[0].bn2.weight) == 0


def _randomized_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Random values for every entry, BN buffers included, so a load is visible in outputs."""
    state = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            state[k] = torch.tensor(7)
        elif k.endswith("running_var"):
            state[k] = torch.rand_like(v) + 0.5
        else:
            state[k] = torch.randn_like(v) * 0.05
    return state


def test_load_torchvision_style_file_reproduces_outputs(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = create_backbone("resnet18")
    state = _randomized_state(source)
    source.load_state_dict(state)
    source.eval()
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)  # a plain state dict with torchvision's names, fc.* included

    loaded = create_backbone("resnet18", weights=path).eval()
    for k, v in state.items():
        assert torch.equal(loaded.state_dict()[k], v), k
    x = torch.rand(2, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x))
        torch.testing.assert_close(loaded.classify(x), source.classify(x))

    # grayscale: the stem's RGB filters are summed ...
    gray = create_backbone("resnet18", in_channels=1, weights=path).eval()
    w = state["conv1.weight"]
    torch.testing.assert_close(gray.conv1.weight, w[:, 0:1] + w[:, 1:2] + w[:, 2:3])
    # ... so by linearity a gray image gives what it gives replicated into R, G and B
    g = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(gray(g), source(g.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-5)
