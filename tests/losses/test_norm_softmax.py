import math

import pytest
import torch

from deephash.losses import create_loss


def test_matches_a_hand_loop() -> None:
    torch.manual_seed(0)
    loss = create_loss("norm-softmax", embedding_dim=4, num_classes=3, temperature=0.1)
    e = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 1, 0])
    out = loss(e, y)
    w = loss.proxies.detach()
    total = 0.0
    wrong = 0
    for i in range(5):
        ei = e[i] / e[i].norm()
        cos = [float(ei @ (w[c] / w[c].norm())) for c in range(3)]
        z = [c / 0.1 for c in cos]
        total += -(z[int(y[i])] - math.log(sum(math.exp(v) for v in z)))
        wrong += int(max(range(3), key=lambda c: cos[c]) != int(y[i]))
    assert float(out.loss.detach()) == pytest.approx(total / 5, rel=1e-5)
    assert out.active_fraction == pytest.approx(wrong / 5)
    assert out.num_terms == 5


def test_proxies_are_trained_and_errors() -> None:
    loss = create_loss("norm-softmax", embedding_dim=2, num_classes=2)
    assert [n for n, _ in loss.named_parameters()] == ["proxies"]
    with pytest.raises(ValueError, match="temperature"):
        create_loss("norm-softmax", embedding_dim=2, num_classes=2, temperature=0)
    with pytest.raises(ValueError, match="labels must lie"):
        loss(torch.randn(2, 2), torch.tensor([0, 5]))
