import pytest
import torch
from torch import nn

from deephash.models.backbones import create_backbone
from deephash.models.descriptors import compute_descriptors, descriptor_dim, list_descriptors
from deephash.models.heads import create_head
from deephash.models.network import RetrievalNet


@pytest.fixture()
def net() -> RetrievalNet:
    torch.manual_seed(0)
    backbone = create_backbone("small-cnn", in_channels=1, depths=(1, 2, 2))
    # 48 code outputs and 16 instance outputs (the instance kind)
    return RetrievalNet(backbone, create_head("tanh", 256, 64), 48, instance_dims=16).eval()


@pytest.mark.parametrize("kind", list_descriptors())
def test_every_kind_is_unit_and_keeps_the_output(kind: str, net: RetrievalNet) -> None:
    x = torch.randn(5, 1, 28, 28)
    desc, out = compute_descriptors(net, x, kind)
    assert desc.shape == (5, descriptor_dim(net, kind, (1, 28, 28)))
    torch.testing.assert_close(desc.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(out, net(x))  # the code comes from the same pass


def test_stages_by_hand(net: RetrievalNet) -> None:
    x = torch.randn(3, 1, 28, 28)
    parts, h = [], x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for stage in net.backbone.features:
            h = stage(h)
            g = nn.functional.adaptive_avg_pool2d(h, 3).flatten(1)
            parts.append(g / g.norm(dim=1, keepdim=True))
    want = torch.cat(parts, 1)
    want = want / want.norm(dim=1, keepdim=True)
    desc, _ = compute_descriptors(net, x, "stages")
    assert desc.shape == (3, 9 * (32 + 64 + 128))
    torch.testing.assert_close(desc, want)
    early = torch.cat(parts[:2], 1)
    early = early / early.norm(dim=1, keepdim=True)
    desc, _ = compute_descriptors(net, x, "early-stages")
    assert desc.shape == (3, 9 * (32 + 64))
    torch.testing.assert_close(desc, early)


def test_errors(net: RetrievalNet) -> None:
    with pytest.raises(ValueError, match="unknown descriptor"):
        compute_descriptors(net, torch.zeros(1, 1, 28, 28), "sift")
    flat = RetrievalNet(nn.Sequential(nn.Flatten(), nn.Linear(784, 8)), nn.Identity(), 8)
    with pytest.raises(ValueError, match="convolution stages"):
        compute_descriptors(flat, torch.zeros(1, 1, 28, 28), "stages")


def test_efficientnet_lite_stages_by_hand() -> None:
    """EfficientNet-Lite names its stages' last blocks: the stage kinds pool their outputs."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    backbone = create_backbone("efficientnet-lite0", num_classes=0, input_size=32)
    net = RetrievalNet(backbone, create_head("tanh", 1280, 16), 16).eval()
    x = torch.randn(2, 3, 32, 32)
    parts = []
    with torch.no_grad():
        h = F.relu6(backbone._bn0(backbone._conv_stem(x)))
        for i, block in enumerate(backbone._blocks):
            h = block(h)
            if i + 1 in backbone.stage_ends[:2]:
                g = nn.functional.adaptive_avg_pool2d(h, 3).flatten(1)
                parts.append(g / g.norm(dim=1, keepdim=True))
    want = torch.cat(parts, 1)
    want = want / want.norm(dim=1, keepdim=True)
    desc, out = compute_descriptors(net, x, "early-stages")
    assert desc.shape == (2, 9 * (16 + 24)) == (2, descriptor_dim(net, "early-stages", (3, 32, 32)))
    torch.testing.assert_close(desc, want)
    torch.testing.assert_close(out, net(x))


def test_kinds_are_listed_in_registration_order() -> None:
    assert list_descriptors() == [
        "head", "backbone", "conv", "stages", "stages-2x2", "early-stages", "instance"
    ]  # fmt: skip


def test_instance_is_the_networks_instance_outputs(net: RetrievalNet) -> None:
    """The instance kind: the head's outputs after the code's (unit length; a collection keeps
    their signs), which only a network trained with instance outputs has."""
    from deephash.models.descriptors import BINARY_DESCRIPTORS, supports

    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        full = net.head(net.backbone(x))
    desc, out = compute_descriptors(net, x, "instance")
    assert "instance" in BINARY_DESCRIPTORS and supports(net, "instance")
    torch.testing.assert_close(desc, full[:, 48:] / full[:, 48:].norm(dim=1, keepdim=True))
    torch.testing.assert_close(out, full[:, :48])
    plain = RetrievalNet(net.backbone, create_head("tanh", 256, 48), 48).eval()
    assert not supports(plain, "instance")
    with pytest.raises(ValueError, match="instance outputs"):
        compute_descriptors(plain, x, "instance")
