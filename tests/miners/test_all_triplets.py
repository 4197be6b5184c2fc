import pytest
import torch
from _miner_brute import as_set, py_dist, valid_triplets

from deephash.miners import create_miner


def test_all_is_every_valid_triplet(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    t = create_miner("all")(x, y)
    expected = valid_triplets(y.tolist())
    assert list(zip(*(v.tolist() for v in t))) == expected  # same set, lexicographic order


@pytest.mark.parametrize("metric", ["euclidean", "squared_euclidean", "cosine"])
def test_all_with_margin_matches_loop(small_batch, metric) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    d = py_dist(x, metric)
    m = 0.3
    expected = {(a, p, n) for a, p, n in valid_triplets(y.tolist()) if d[a][n] - d[a][p] < m}
    assert as_set(create_miner("all", margin=m, metric=metric)(x, y)) == expected


def test_matches_pml_all() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.miners")
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(64, 16, generator=gen)
    y = torch.arange(8).repeat_interleave(8)
    theirs = pml.TripletMarginMiner(margin=0.2, type_of_triplets="all")(x, y)
    assert as_set(create_miner("all", margin=0.2)(x, y)) == as_set(theirs)


def test_cap_returns_a_uniform_subset(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    full = as_set(create_miner("all")(x, y))
    cap = 200
    counts: dict[tuple[int, int, int], int] = {}
    for seed in range(60):
        t = create_miner("all", max_triplets=cap, seed=seed)(x, y)
        rows = list(zip(*(v.tolist() for v in t)))
        assert len(rows) == cap == len(set(rows))  # without replacement
        assert rows == sorted(rows) and set(rows) <= full
        for r in rows:
            counts[r] = counts.get(r, 0) + 1
    # every triplet has inclusion probability cap/|full|: mean count 60*cap/|full|
    expect = 60 * cap / len(full)
    hits = [counts.get(r, 0) for r in full]
    assert abs(sum(hits) / len(hits) - expect) < 1e-9
    assert max(hits) < expect + 6 * expect**0.5  # no triplet systematically favoured
    same_seed = create_miner("all", max_triplets=cap, seed=7)
    assert as_set(same_seed(x, y)) == as_set(create_miner("all", max_triplets=cap, seed=7)(x, y))


def test_torch_path_equals_numba_path(small_batch) -> None:  # type: ignore[no-untyped-def]
    """The chunked torch enumeration (used off-CPU) gives the numba kernel's set."""
    from deephash.miners import _select
    from deephash.miners.seeded_random import SeededRandom

    x, y = small_batch
    miner = create_miner("semi-hard", select="all", margin=0.5)
    batch = miner._prepare(x, y)
    cpu = _select.pick_all(batch, 0.0, 0.5)
    ref = _select._pick_all_torch(batch, 0.0, 0.5, None, None)
    assert [v.tolist() for v in cpu] == [v.tolist() for v in ref]
    rng = SeededRandom(0)
    capped = _select._pick_all_torch(batch, 0.0, 0.5, 10, rng)
    assert len(capped.anchor) == 10 and as_set(capped) <= as_set(ref)
