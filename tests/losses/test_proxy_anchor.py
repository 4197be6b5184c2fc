import math

import pytest
import torch

from deephash.losses import create_loss


def _batch(seed: int = 0, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(24, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, classes - 1, (24,), generator=gen)  # the last class has no positives
    return x, y


def brute_force(x, y, proxies, alpha, delta) -> float:
    """Kim et al. 2020's formula, one proxy at a time, in Python floats."""

    def unit(v):  # type: ignore[no-untyped-def]
        v = [float(t) for t in v]
        nrm = math.sqrt(sum(t * t for t in v))
        return [t / nrm for t in v]

    xs = [unit(r) for r in x]
    ps = [unit(r) for r in proxies]
    lab = [int(t) for t in y]
    pos_sum, neg_sum, with_pos = 0.0, 0.0, 0
    for c, pc in enumerate(ps):
        s = [sum(a * b for a, b in zip(xi, pc)) for xi in xs]
        pos = [s[i] for i in range(len(xs)) if lab[i] == c]
        neg = [s[i] for i in range(len(xs)) if lab[i] != c]
        if pos:
            with_pos += 1
            pos_sum += math.log(1 + sum(math.exp(-alpha * (v - delta)) for v in pos))
        neg_sum += math.log(1 + sum(math.exp(alpha * (v + delta)) for v in neg))
    return pos_sum / with_pos + neg_sum / len(ps)


@pytest.mark.parametrize("alpha,delta", [(32.0, 0.1), (8.0, 0.3)])
def test_matches_the_formula(alpha, delta) -> None:
    x, y = _batch()
    torch.manual_seed(0)
    loss = create_loss("proxy-anchor", embedding_dim=6, num_classes=5, alpha=alpha, delta=delta)
    out = loss(x, y)
    want = brute_force(x, y, loss.proxies.detach(), alpha, delta)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    assert out.num_terms == 24
    cos = (
        torch.nn.functional.normalize(x, dim=1)
        @ torch.nn.functional.normalize(loss.proxies.detach().double(), dim=1).T
    )
    assert out.active_fraction == pytest.approx(float((cos.argmax(1) != y).double().mean()))


def test_equals_pytorch_metric_learning_values_and_gradients() -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    x, y = _batch(1)
    torch.manual_seed(1)
    ours = create_loss("proxy-anchor", embedding_dim=6, num_classes=5).double()
    ref = pml_losses.ProxyAnchorLoss(5, 6, margin=0.1, alpha=32).double()
    ref.proxies.data.copy_(ours.proxies.data)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    got, want = ours(x1, y).loss, ref(x2, y)
    got.backward()
    want.backward()
    assert got.item() == pytest.approx(want.item(), abs=1e-12)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.proxies.grad, ref.proxies.grad, rtol=0, atol=1e-12)


def test_proxies_init_like_the_authors() -> None:
    torch.manual_seed(3)
    loss = create_loss("proxy-anchor", embedding_dim=64, num_classes=100)
    torch.manual_seed(3)
    want = torch.nn.init.kaiming_normal_(torch.empty(100, 64), mode="fan_out")
    assert torch.equal(loss.proxies.data, want)
    assert [n for n, _ in loss.named_parameters()] == ["proxies"]


def test_gradients_train_a_toy_problem(train_toy) -> None:
    torch.manual_seed(0)
    hist = train_toy(create_loss("proxy-anchor", embedding_dim=8, num_classes=4), 8)
    assert hist[-1] < 0.5 * hist[0]


def test_errors() -> None:
    with pytest.raises(ValueError, match="num_classes >= 2"):
        create_loss("proxy-anchor", embedding_dim=4, num_classes=1)
    with pytest.raises(ValueError, match="alpha"):
        create_loss("proxy-anchor", embedding_dim=4, num_classes=3, alpha=0)
    loss = create_loss("proxy-anchor", embedding_dim=4, num_classes=3)
    with pytest.raises(ValueError, match="labels must lie"):
        loss(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="embedding_dim=4"):
        loss(torch.randn(2, 5), torch.tensor([0, 1]))
