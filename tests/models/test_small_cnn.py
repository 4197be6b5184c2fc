import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deephash.models import SmallCNN, create_backbone, load_backbone_weights


@pytest.mark.parametrize("in_channels", [1, 3])
def test_parameter_count_by_hand(in_channels: int) -> None:
    model = create_backbone("small-cnn", in_channels=in_channels)
    convs = in_channels * 9 * 32 + 32 * 9 * 64 + 64 * 9 * 128  # 3×3, no bias
    bn2d = 2 * (32 + 64 + 128)
    fc = 128 * 3 * 3 * 256  # no bias: BN1d follows
    bn1d = 2 * 256
    assert sum(p.numel() for p in model.parameters()) == convs + bn2d + fc + bn1d
    assert 300_000 < convs + bn2d + fc + bn1d < 1_000_000


def test_forward_matches_hand_written_reference() -> None:
    torch.manual_seed(0)
    model = create_backbone("small-cnn", in_channels=1)
    for m in model.modules():  # non-trivial BN statistics
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    model.eval()
    x = torch.rand(4, 1, 28, 28)

    def bn(h: torch.Tensor, m: nn.Module) -> torch.Tensor:
        return F.batch_norm(h, m.running_mean, m.running_var, m.weight, m.bias, eps=m.eps)

    h = x
    for stage in model.features:
        h = F.relu(bn(F.max_pool2d(F.conv2d(h, stage.conv.weight, padding=1), 2), stage.bn))
    assert h.shape == (4, 128, 3, 3)  # 28 -> 14 -> 7 -> 3
    ref = F.relu(bn(F.linear(h.flatten(1), model.fc.weight), model.bn))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-5)


def test_channels_last_layout_does_not_change_results() -> None:
    torch.manual_seed(0)
    fast = SmallCNN(in_channels=3, channels_last=True).eval()
    plain = SmallCNN(in_channels=3, channels_last=False).eval()
    plain.load_state_dict(fast.state_dict())
    assert fast.features[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-5)


def test_options_and_minimum_size() -> None:
    model = create_backbone("small-cnn", widths=(8, 16, 24), out_features=40, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.rand(2, 1, 8, 8)).shape == (2, 40)
        assert model(torch.rand(2, 1, 5, 5)).shape == (2, 40)  # up-sampled to 8
    with pytest.raises(ValueError, match="widths must be 3"):
        SmallCNN(widths=(8, 16))
    with pytest.raises(ValueError, match="out_features"):
        SmallCNN(out_features=0)


def test_learns_a_small_problem() -> None:
    """Features + a linear classifier fit 4 classes of noisy templates in a few Adam steps."""
    torch.manual_seed(0)
    templates = torch.rand(4, 1, 28, 28)
    labels = torch.arange(32) % 4
    x = templates[labels] + 0.3 * torch.randn(32, 1, 28, 28)
    model = create_backbone("small-cnn", in_channels=1)
    clf = nn.Linear(model.out_features, 4)
    opt = torch.optim.Adam([*model.parameters(), *clf.parameters()], lr=3e-3)
    for _ in range(15):
        opt.zero_grad()
        loss = F.cross_entropy(clf(model(x)), labels)
        loss.backward()
        opt.step()
    # 15 steps are too few for BN's running averages (momentum 0.1) to catch up with the
    # weights; re-estimate them exactly (cumulative average over one pass) before evaluating.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None
        model(x)
        model.eval()
        acc = (clf(model(x)).argmax(1) == labels).float().mean().item()
    assert loss.item() < 0.1 and acc == 1.0


def test_grayscale_adaptation_of_small_cnn() -> None:
    torch.manual_seed(0)
    rgb = create_backbone("small-cnn")
    gray = create_backbone("small-cnn", in_channels=1)
    result = load_backbone_weights(gray, rgb.state_dict())
    assert result.adapted == ["features.0.conv.weight"]
    w = rgb.features[0].conv.weight
    torch.testing.assert_close(gray.features[0].conv.weight, w.sum(1, keepdim=True))
    rgb.eval()
    gray.eval()
    g = torch.rand(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(gray(g), rgb(g.expand(-1, 3, -1, -1)), rtol=1e-4, atol=1e-5)


def test_depths_add_convs_after_pooling() -> None:
    torch.manual_seed(0)
    plain = create_backbone("small-cnn", in_channels=1)
    deep = create_backbone("small-cnn", in_channels=1, depths=(1, 2, 3))
    convs = [m for m in deep.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 64, 128, 128, 128]
    # Extra convs are w×w×3×3, each with a BN (2w parameters): the count follows by hand.
    extra = 64 * 64 * 9 + 2 * 64 + 2 * (128 * 128 * 9 + 2 * 128)
    count = sum(p.numel() for p in deep.parameters()) - sum(p.numel() for p in plain.parameters())
    assert count == extra
    # Depth 1 keeps the original state-dict keys, so older checkpoints still load.
    assert set(plain.state_dict()) == set(SmallCNN(in_channels=1).state_dict())
    assert not any(".extra." in k for k in plain.state_dict())
    # A stage is conv -> pool -> BN -> ReLU, then (conv -> BN -> ReLU) per extra layer.
    stage = deep.features[1].eval()
    x = torch.rand(2, 32, 14, 14)
    ref = F.relu(stage.bn(F.max_pool2d(stage.conv(x), 2)))
    ref = F.relu(stage.extra[1](stage.extra[0](ref)))
    with torch.no_grad():
        torch.testing.assert_close(stage(x), ref)
        assert deep.eval()(torch.rand(2, 1, 28, 28)).shape == (2, 256)
    with pytest.raises(ValueError, match="depths must be 3"):
        SmallCNN(depths=(1, 0, 1))


def test_dropout_acts_in_training_only() -> None:
    torch.manual_seed(0)
    plain = SmallCNN(in_channels=1)
    drop = SmallCNN(in_channels=1, dropout=0.5)
    assert set(drop.state_dict()) == set(plain.state_dict())  # no parameters of its own
    drop.load_state_dict(plain.state_dict())
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(drop.eval()(x), plain.eval()(x))
        # In training, the flattened pooled features are zeroed with p = 0.5 (survivors x2).
        drop.train()
        feats = torch.flatten(drop.pool(drop.features(x)), 1)
        torch.manual_seed(1)
        dropped = drop.dropout(feats)
        live = feats != 0  # post-ReLU features: many are zero already
        zeroed = live & (dropped == 0)
        assert 0.4 < float(zeroed.sum()) / float(live.sum()) < 0.6
        torch.testing.assert_close(dropped[live & ~zeroed], 2 * feats[live & ~zeroed])
    with pytest.raises(ValueError, match="dropout must be in"):
        SmallCNN(dropout=1.0)
