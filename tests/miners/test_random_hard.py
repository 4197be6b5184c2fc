import pytest
import torch
from _miner_brute import as_set, py_dist, valid_triplets

from deephash.miners import create_miner


def _violating(x, y, margin):  # type: ignore[no-untyped-def]
    d = py_dist(x)
    return {(a, p, n) for a, p, n in valid_triplets(y.tolist()) if d[a][n] - d[a][p] < margin}


def test_one_random_violating_negative_per_pair(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    viol = _violating(x, y, 0.2)
    pairs = {(a, p) for a, p, _ in viol}
    t = create_miner("random-hard", margin=0.2, seed=0)(x, y)
    got = as_set(t)
    assert got <= viol
    assert {(a, p) for a, p, _ in got} == pairs  # every pair with a violator gets exactly one
    assert len(got) == len(pairs)


def test_seeded_and_uniform(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    a1 = create_miner("random-hard", seed=4)(x, y)
    a2 = create_miner("random-hard", seed=4)(x, y)
    assert [v.tolist() for v in a1] == [v.tolist() for v in a2]
    # uniform among the violators of one (a, p) pair
    viol = _violating(x, y, 0.2)
    a, p = max({(a, p) for a, p, _ in viol}, key=lambda k: sum(1 for t in viol if t[:2] == k))
    cands = sorted(n for aa, pp, n in viol if (aa, pp) == (a, p))
    miner = create_miner("random-hard", seed=1)
    counts = dict.fromkeys(cands, 0)
    draws = 400
    for _ in range(draws):
        t = miner(x, y)
        sel = (t.anchor == a) & (t.positive == p)
        counts[int(t.negative[sel])] += 1
    expect = draws / len(cands)
    assert all(abs(c - expect) < 5 * expect**0.5 for c in counts.values())


def test_select_all_matches_pml_all_and_hard() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.miners")
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 16, generator=gen)
    y = torch.arange(16).repeat_interleave(4)
    ours = create_miner("random-hard", margin=0.2, select="all")(x, y)
    assert as_set(ours) == as_set(pml.TripletMarginMiner(0.2, type_of_triplets="all")(x, y))
    hard = create_miner("random-hard", margin=0.0, select="all")(x, y)
    assert as_set(hard) == as_set(pml.TripletMarginMiner(0.2, type_of_triplets="hard")(x, y))
