import math

import pytest
import torch

from deephash.losses import create_loss
from deephash.miners import create_pair_miner


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 8, generator=gen, dtype=torch.float64)
    y = torch.arange(4).repeat_interleave(8)[torch.randperm(32, generator=gen)]
    return x, y


def brute_force(x, pos_pairs, neg_pairs, alpha, beta, base) -> float:
    """The paper's formula, one anchor at a time, in Python floats."""
    rows = [[float(v) for v in r] for r in x]
    rows = [[v / math.sqrt(sum(t * t for t in r)) for v in r] for r in rows]

    def sim(i: int, j: int) -> float:
        return sum(a * b for a, b in zip(rows[i], rows[j]))

    total = 0.0
    for i in range(len(rows)):
        ps = {j for a, j in pos_pairs if a == i}
        ns = {j for a, j in neg_pairs if a == i}
        total += math.log(1 + sum(math.exp(-alpha * (sim(i, k) - base)) for k in ps)) / alpha
        total += math.log(1 + sum(math.exp(beta * (sim(i, k) - base)) for k in ns)) / beta
    return total / len(rows)


@pytest.mark.parametrize("alpha,beta,base", [(2.0, 50.0, 0.5), (1.0, 10.0, 0.3)])
def test_matches_the_formula_on_the_mined_pairs(alpha, beta, base) -> None:
    x, y = _batch()
    loss = create_loss("multi-similarity", alpha=alpha, beta=beta, base=base)
    a1, p, a2, n = create_pair_miner("multi-similarity")(x, y)
    out = loss(x, y)
    pos, neg = list(zip(a1.tolist(), p.tolist())), list(zip(a2.tolist(), n.tolist()))
    want = brute_force(x, pos, neg, alpha, beta, base)
    assert float(out.loss) == pytest.approx(want, rel=1e-12)
    assert out.num_terms == len(pos) + len(neg)
    all_pairs = 32 * 31
    assert out.active_fraction == pytest.approx((len(pos) + len(neg)) / all_pairs)


@pytest.mark.parametrize("miner", ["multi-similarity", "all-pairs"])
def test_equals_pytorch_metric_learning_values_and_gradients(miner) -> None:
    pml_losses = pytest.importorskip("pytorch_metric_learning.losses")
    pml_miners = pytest.importorskip("pytorch_metric_learning.miners")
    x, y = _batch(1)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    got = create_loss("multi-similarity", miner=miner)(x1, y).loss
    ref = pml_losses.MultiSimilarityLoss(alpha=2, beta=50, base=0.5)
    pairs = pml_miners.MultiSimilarityMiner(epsilon=0.1)(x2, y) if miner != "all-pairs" else None
    want = ref(x2, y, pairs)
    got.backward()
    want.backward()
    assert got.item() == pytest.approx(want.item(), abs=1e-12)
    torch.testing.assert_close(x1.grad, x2.grad, rtol=0, atol=1e-12)


def test_offline_pairs_duplicates_and_empty() -> None:
    x, y = _batch(2)
    loss = create_loss("multi-similarity")
    a1, p, a2, n = create_pair_miner("all-pairs")(x, y)
    once = loss.compute_pairs(x, a1, p, a2, n)
    twice = loss.compute_pairs(x, a1.repeat(2), p.repeat(2), a2.repeat(2), n.repeat(2))
    assert float(once.loss) == float(twice.loss)
    e = torch.empty(0, dtype=torch.long)
    xg = x.clone().requires_grad_(True)
    out = loss.compute_pairs(xg, e, e, e, e)
    out.loss.backward()
    assert out.loss.item() == 0.0 and out.num_terms == 0 and float(xg.grad.abs().sum()) == 0.0


def test_gradients_train_a_toy_problem(train_toy) -> None:
    hist = train_toy(create_loss("multi-similarity"), 8)
    assert hist[-1] < 0.5 * hist[0]


def test_errors() -> None:
    with pytest.raises(ValueError, match="alpha and beta"):
        create_loss("multi-similarity", beta=0)
    with pytest.raises(ValueError, match="pair-miner"):
        create_loss("multi-similarity", miner=3)
    with pytest.raises(ValueError, match="unknown pair miner"):
        create_loss("multi-similarity", miner="semi-hard")
