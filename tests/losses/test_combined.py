import pytest
import torch

from deephash.losses import create_loss


def test_weighted_sum_of_components() -> None:
    torch.manual_seed(1)
    e = torch.randn(12, 8)
    y = torch.arange(12) % 3
    combined = create_loss(
        "combined",
        losses=[{"name": "norm-softmax", "weight": 0.5}, {"name": "batch-hard", "margin": 0.3}],
        embedding_dim=8,
        num_classes=3,
    )
    bh = create_loss("batch-hard", margin=0.3)
    ns = combined.parts[0]
    expected = bh(e, y).loss + 0.5 * ns(e, y).loss
    out = combined(e, y)
    assert float(out.loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-6)
    assert out.num_terms == bh(e, y).num_terms
    assert out.active_fraction == bh(e, y).active_fraction
    # the proxies are parameters of the combined loss, so the optimizer sees them
    assert any(p is ns.proxies for p in combined.parameters())


def test_schedulable_attributes_are_forwarded() -> None:
    combined = create_loss("combined", losses=[{"name": "batch-hard"}, {"name": "batch-all"}])
    combined.margin = 0.7
    assert [p.margin for p in combined.parts] == [0.7, 0.7]


def test_errors() -> None:
    with pytest.raises(ValueError, match="at least one"):
        create_loss("combined", losses=[])
    with pytest.raises(ValueError, match="unknown loss"):
        create_loss("combined", losses=[{"name": "nope"}])
