import math

import torch

from deephash.losses import HofferLoss, create_loss


def test_given_triplets_vs_loop() -> None:
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [3.0, 1.0], [0.5, 0.5]])
    trip = [(0, 1, 2), (1, 0, 3), (2, 4, 1), (0, 4, 3)]
    expected = 0.0
    for a, p, n in trip:
        dp, dn = math.dist(x[a].tolist(), x[p].tolist()), math.dist(x[a].tolist(), x[n].tolist())
        sp = math.exp(dp) / (math.exp(dp) + math.exp(dn))  # softmax over (d+, d-)
        sn = math.exp(dn) / (math.exp(dp) + math.exp(dn))
        expected += sp**2 + (sn - 1) ** 2  # ||(d+, d-) - (0, 1)||²
    expected /= len(trip)
    a, p, n = (torch.tensor(c) for c in zip(*trip))
    out = HofferLoss().compute_triplets(x, a, p, n)
    assert math.isclose(out.loss.item(), expected, rel_tol=1e-6)
    assert out.num_terms == 4 and out.active_fraction == 1.0


def test_mined_all_triplets_and_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 3, generator=gen, requires_grad=True)
    y = torch.arange(3).repeat_interleave(4)
    out = create_loss("hoffer")(x, y)
    assert out.num_terms == 12 * 3 * 8
    out.loss.backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all())
    # huge distances: sigmoid form stays finite where exp(d) would overflow
    big = torch.tensor([[0.0], [1.0], [1e4]])
    o = HofferLoss().compute_triplets(big, torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))
    assert o.loss.item() == 0.0
