import math

import pytest
import torch

from deephash.losses import create_loss


def test_vs_hand_softmax_and_parameters_reachable() -> None:
    loss = create_loss("cross-entropy", embedding_dim=3, num_classes=4)
    params = list(loss.parameters())
    assert [tuple(p.shape) for p in params] == [(4, 3), (4,)]
    x = torch.randn(5, 3)
    y = torch.tensor([0, 3, 1, 1, 2])
    out = loss(x, y)
    w, b = params
    expected = 0.0
    for i in range(5):
        logits = [
            sum(w[c, k].item() * x[i, k].item() for k in range(3)) + b[c].item() for c in range(4)
        ]
        mx = max(logits)
        lse = mx + math.log(sum(math.exp(v - mx) for v in logits))
        expected += lse - logits[y[i]]
    assert math.isclose(out.loss.item(), expected / 5, rel_tol=1e-5)
    assert out.num_terms == 5 and out.active_fraction == 1.0
    out.loss.backward()
    assert w.grad is not None  # the classifier is trained through loss.parameters()


def test_bad_labels_and_dims() -> None:
    loss = create_loss("cross-entropy", embedding_dim=3, num_classes=4)
    with pytest.raises(ValueError, match="num_classes"):
        loss(torch.randn(2, 3), torch.tensor([0, 4]))
    with pytest.raises(ValueError, match="embedding_dim"):
        loss(torch.randn(2, 5), torch.tensor([0, 1]))
