import math

import pytest
import torch

from deephash.losses.instance import InstanceTerm, koleo, nt_xent


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


def test_nt_xent_against_a_loop_over_the_2b_outputs() -> None:
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    z = [_unit(v) for v in torch.cat([z1, z2])]
    tau, b, total = 0.3, 5, 0.0
    for i in range(2 * b):
        positive = (i + b) % (2 * b)
        logits = {j: float(z[i] @ z[j]) / tau for j in range(2 * b) if j != i}
        total += -logits[positive] + math.log(sum(math.exp(v) for v in logits.values()))
    assert float(nt_xent(z1, z2, tau)) == pytest.approx(total / (2 * b), rel=1e-5)


def test_koleo_against_the_nearest_neighbour_by_hand() -> None:
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    n = [_unit(v) for v in z]
    want = -sum(
        math.log(min(float((n[i] - n[j]).norm()) for j in range(3) if j != i)) for i in range(3)
    )
    assert float(koleo(z)) == pytest.approx(want / 3, rel=1e-5)


def test_gradients_reach_both_views_and_pull_views_together() -> None:
    g = torch.Generator().manual_seed(1)
    z1 = torch.randn(8, 16, generator=g, requires_grad=True)
    z2 = (z1.detach() + 0.5 * torch.randn(8, 16, generator=g)).requires_grad_()
    out = InstanceTerm(1.0, temperature=0.2, spread=0.1)(z1, z2)
    out.loss.backward()
    assert z1.grad is not None and z2.grad is not None
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0
    assert out.num_terms == 16
    # matching views score lower than shuffled ones
    assert nt_xent(z1, z2, 0.2) < nt_xent(z1, z2.roll(1, 0), 0.2)


def test_zero_weights_give_exactly_zero_and_bad_settings_are_refused() -> None:
    z = torch.randn(4, 3)
    assert float(InstanceTerm(0.0, spread=0.0)(z, z).loss) == 0.0
    for bad in (-1.0, "a", True):
        with pytest.raises(ValueError, match="instance weight"):
            InstanceTerm(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="temperature"):
        InstanceTerm(1.0, temperature=0)
    with pytest.raises(ValueError, match="one shape"):
        nt_xent(z, z[:3], 0.1)
