import math

import pytest
import torch

from deephash.losses import create_loss


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(20, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 4, (20,), generator=gen)
    return x, y


def brute_force(x, y, weight, s, m) -> float:
    """Deng et al. 2019, Eq. (3), one sample at a time via angles (math.acos), with the authors'
    fallback cos θ - m sin m where θ + m > π."""

    def unit(v):  # type: ignore[no-untyped-def]
        v = [float(t) for t in v]
        nrm = math.sqrt(sum(t * t for t in v))
        return [t / nrm for t in v]

    ws = [unit(r) for r in weight]
    total = 0.0
    for xi, yi in zip(x, y):
        e = unit(xi)
        cos = [sum(a * b for a, b in zip(e, w)) for w in ws]
        theta = math.acos(max(-1.0, min(1.0, cos[int(yi)])))
        target = math.cos(theta + m) if theta + m <= math.pi else cos[int(yi)] - m * math.sin(m)
        logits = [s * (target if c == int(yi) else cos[c]) for c in range(len(ws))]
        top = max(logits)
        total += -(logits[int(yi)] - top - math.log(sum(math.exp(v - top) for v in logits)))
    return total / len(x)


@pytest.mark.parametrize("scale,margin", [(64.0, 0.5), (30.0, 0.3), (10.0, 1.4)])
def test_matches_the_formula(scale, margin) -> None:
    x, y = _batch()
    torch.manual_seed(0)
    loss = create_loss("arcface", embedding_dim=6, num_classes=4, scale=scale, margin=margin)
    out = loss(x, y)
    want = brute_force(x, y, loss.weight.detach(), scale, margin)
    assert out.loss.item() == pytest.approx(want, rel=1e-9)
    assert out.num_terms == 20


def test_the_fallback_branch_is_exercised() -> None:
    # an embedding opposite its class weight: θ = π - 0.1 < π, but θ + m > π for m = 0.5
    loss = create_loss("arcface", embedding_dim=2, num_classes=2, scale=2.0, margin=0.5)
    loss.weight.data = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[-math.cos(0.1), math.sin(0.1)]], dtype=torch.float64)
    y = torch.tensor([0])
    want = brute_force(x, y, loss.weight.detach(), 2.0, 0.5)
    assert loss.double()(x, y).loss.item() == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("margin", [0.5, 0.2])
def test_equals_pytorch_metric_learning_values_and_gradients(margin) -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    x, y = _batch(1)
    torch.manual_seed(1)
    ours = create_loss("arcface", embedding_dim=6, num_classes=4, margin=margin).double()
    # PML's margin is in degrees and its weight is (D, C)
    ref = pml_losses.ArcFaceLoss(4, 6, margin=math.degrees(margin), scale=64).double()
    ref.W.data.copy_(ours.weight.data.T)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    got, want = ours(x1, y).loss, ref(x2, y)
    got.backward()
    want.backward()
    assert got.item() == pytest.approx(want.item(), abs=1e-10)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-10)
    torch.testing.assert_close(ours.weight.grad, ref.W.grad.T, rtol=0, atol=1e-10)


def test_no_nan_gradient_when_an_embedding_equals_its_class_weight() -> None:
    loss = create_loss("arcface", embedding_dim=3, num_classes=2)
    x = loss.weight.detach()[:1].clone().requires_grad_(True)
    loss(x, torch.tensor([0])).loss.backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(loss.weight.grad).all()


def test_gradients_train_a_toy_problem(train_toy) -> None:
    torch.manual_seed(0)
    loss = create_loss("arcface", embedding_dim=8, num_classes=4, scale=16.0)
    hist = train_toy(loss, 8)
    assert hist[-1] < 0.5 * hist[0]


def test_errors() -> None:
    with pytest.raises(ValueError, match="scale"):
        create_loss("arcface", embedding_dim=4, num_classes=3, scale=0)
    with pytest.raises(ValueError, match="margin"):
        create_loss("arcface", embedding_dim=4, num_classes=3, margin=2.0)
    loss = create_loss("arcface", embedding_dim=4, num_classes=3)
    with pytest.raises(ValueError, match="labels must lie"):
        loss(torch.randn(2, 4), torch.tensor([0, 3]))
