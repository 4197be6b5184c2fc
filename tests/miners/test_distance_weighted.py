import math

import pytest
import torch
from _miner_brute import py_dist

from deephash.miners import create_miner
from deephash.miners.distance_weighted import log_inverse_sphere_density


def test_log_density_formula() -> None:
    d = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
    n = 16
    ref = [-math.log(v ** (n - 2) * (1 - v * v / 4) ** ((n - 3) / 2)) for v in d.tolist()]
    assert torch.allclose(log_inverse_sphere_density(d, n), torch.tensor(ref, dtype=torch.float64))


def test_sampling_frequencies_match_the_weights() -> None:
    """Empirical negative frequencies of anchor 0 vs min(λ, 1/q(d)) computed by hand.

    Class 0 has 60 members, so each call gives 59 independent draws (one per positive) from the
    anchor's distribution, which depends only on its negatives."""
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(9, 4, generator=gen), torch.randn(60, 4, generator=gen)])
    y = torch.tensor([1, 1, 1, 2, 2, 2, 3, 3, 3] + [0] * 60)
    a, dim = 9, 4
    d = py_dist(x)
    negs = [n for n in range(9) if d[a][n] < 1.4]
    assert len(negs) >= 3

    def w(v: float) -> float:
        v = max(v, 0.5)
        return 1.0 / (v ** (dim - 2) * (1 - v * v / 4) ** ((dim - 3) / 2))

    total = sum(w(d[a][n]) for n in negs)
    probs = {n: w(d[a][n]) / total for n in negs}
    miner = create_miner("distance-weighted", seed=0)
    counts = dict.fromkeys(range(9), 0)
    for _ in range(40):
        t = miner(x, y)
        for n in t.negative[t.anchor == a].tolist():
            counts[n] += 1
    draws = sum(counts.values())
    assert draws == 40 * 59
    for n in range(9):
        expect = draws * probs.get(n, 0.0)
        assert abs(counts[n] - expect) <= 5 * math.sqrt(expect + 1), (n, counts[n], expect)


def test_fallback_uniform_when_all_negatives_far() -> None:
    # two antipodal clusters: every negative is at distance ~2 > nonzero_loss_cutoff
    x = torch.tensor([[1.0, 0, 0], [1.0, 0.01, 0], [-1.0, 0, 0], [-1.0, 0.01, 0]])
    y = torch.tensor([0, 0, 1, 1])
    t = create_miner("distance-weighted")(x, y)
    assert len(t.anchor) == 4 and bool((y[t.negative] != y[t.anchor]).all())


def test_rejects_non_sphere_distances() -> None:
    with pytest.raises(ValueError, match="unit sphere"):
        create_miner("distance-weighted", normalize=False)
    with pytest.raises(ValueError, match="cutoff"):
        create_miner("distance-weighted", cutoff=1.5)
