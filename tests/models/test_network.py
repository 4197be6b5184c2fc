import pytest
import torch
from torch import nn

from deephash.models import create_backbone
from deephash.models.heads import create_head
from deephash.models.network import RetrievalNet


def _net(retrieve_from: str) -> RetrievalNet:
    torch.manual_seed(0)
    backbone = create_backbone("small-cnn", in_channels=1, out_features=32)
    head = create_head("embedding", 32, 8)
    return RetrievalNet(backbone, head, 8, retrieve_from=retrieve_from)


def test_projection_head_serves_the_loss_and_the_backbone_retrieves() -> None:
    net = _net("backbone")
    x = torch.randn(5, 1, 28, 28)
    assert net.out_dim == 32
    net.eval()
    with torch.no_grad():
        features = net.backbone(x)
        out = net(x)
    assert out.shape == (5, 32)
    torch.testing.assert_close(out, features / features.norm(dim=1, keepdim=True))
    torch.testing.assert_close(out.norm(dim=1), torch.ones(5))
    net.train()
    trained = net(x)
    assert trained.shape == (5, 8)  # the head's embedding, for the loss
    trained.sum().backward()
    assert net.head.fc.weight.grad is not None


def test_default_retrieves_with_the_head() -> None:
    net = _net("head").eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net.head(net.backbone(x)))
    assert net.out_dim == 8


def test_retrieve_from_is_checked() -> None:
    with pytest.raises(ValueError, match="head or backbone"):
        RetrievalNet(nn.Identity(), nn.Identity(), 4, retrieve_from="neck")
    with pytest.raises(ValueError, match="out_features"):
        RetrievalNet(nn.Identity(), nn.Identity(), 4, retrieve_from="backbone")


def _instance_net(grad: float) -> RetrievalNet:
    torch.manual_seed(0)
    backbone = create_backbone("small-cnn", in_channels=1, out_features=32)
    return RetrievalNet(
        backbone, create_head("tanh", 32, 16 + 8), 16, instance_dims=8, instance_backbone_grad=grad
    )


def test_instance_outputs_split_by_mode_and_their_backbone_gradient_is_scaled() -> None:
    x = torch.randn(4, 1, 28, 28)
    grads = {}
    for scale in (1.0, 0.25, 0.0):
        net = _instance_net(scale).train()
        out = net(x)
        assert out.shape == (4, 24)
        out[:, 16:].sum().backward()  # a loss on the instance outputs only
        grads[scale] = [p.grad.clone() for p in net.backbone.parameters() if p.grad is not None]
        head_grad = net.head.fc.weight.grad
        assert head_grad is not None and head_grad[16:].abs().sum() > 0  # the head rows learn
        assert head_grad[:16].abs().sum() == 0
        net.eval()
        with torch.no_grad():
            assert net(x).shape == (4, 16)
            code, inst = net.with_instance(x)
            torch.testing.assert_close(code, net(x))
            assert inst.shape == (4, 8)
    for g1, g025, g0 in zip(grads[1.0], grads[0.25], grads[0.0]):
        torch.testing.assert_close(g025, 0.25 * g1)
        assert g0.abs().sum() == 0
    with pytest.raises(ValueError, match="instance_backbone_grad"):
        _instance_net(1.5)


def _own_instance_net() -> RetrievalNet:
    from deephash.models.instance_net import InstanceNet

    torch.manual_seed(0)
    backbone = create_backbone("small-cnn", in_channels=1, out_features=32)
    own = InstanceNet(
        create_backbone("small-cnn", in_channels=1, out_features=16, widths=(8, 8, 16)),
        create_head("linear", 16, 8),
        8,
    )
    return RetrievalNet(
        backbone, create_head("linear", 32, 16), 16, instance_dims=8, instance_net=own
    )


def test_an_own_instance_network_and_the_class_network_share_no_gradient() -> None:
    x = torch.randn(4, 1, 28, 28)
    net = _own_instance_net().train()
    assert net(x).shape == (4, 16)  # the class outputs alone, in every mode
    assert net.instance_net is not None
    net.instance_net(x).sum().backward()
    assert all(p.grad is None for p in [*net.backbone.parameters(), *net.head.parameters()])
    assert all(p.grad is not None for p in net.instance_net.parameters())
    net.zero_grad(set_to_none=True)
    net(x).sum().backward()
    assert all(p.grad is None for p in net.instance_net.parameters())
    net.eval()
    with torch.no_grad():
        code, inst = net.with_instance(x)
        torch.testing.assert_close(code, net(x))
        torch.testing.assert_close(inst, net.instance_net(x))
        assert inst.shape == (4, 8)
    with pytest.raises(ValueError, match="instance_net needs instance_dims"):
        RetrievalNet(net.backbone, net.head, 16, instance_net=net.instance_net)
