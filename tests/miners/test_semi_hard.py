import pytest
import torch
from _miner_brute import as_set, py_dist, valid_triplets

from deephash.miners import create_miner


def _semi_hard(d, y, m):  # type: ignore[no-untyped-def]
    return {(a, p, n) for a, p, n in valid_triplets(y.tolist()) if 0 < d[a][n] - d[a][p] < m}


@pytest.mark.parametrize("metric", ["euclidean", "squared_euclidean"])
def test_hardest_semi_hard_per_pair(small_batch, metric) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    d = py_dist(x, metric)
    semi = _semi_hard(d, y, 0.3)
    expected = set()
    for a, p in {(a, p) for a, p, _ in semi}:
        n = min((n for aa, pp, n in semi if (aa, pp) == (a, p)), key=lambda n: d[a][n])
        expected.add((a, p, n))
    assert as_set(create_miner("semi-hard", margin=0.3, metric=metric)(x, y)) == expected


def test_random_and_all_variants(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    semi = _semi_hard(py_dist(x), y, 0.3)
    assert as_set(create_miner("semi-hard", margin=0.3, select="all")(x, y)) == semi
    rnd = as_set(create_miner("semi-hard", margin=0.3, select="random", seed=3)(x, y))
    assert rnd <= semi and {t[:2] for t in rnd} == {t[:2] for t in semi}


def test_select_all_matches_pml_semihard() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.miners")
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(96, 32, generator=gen)
    y = torch.arange(12).repeat_interleave(8)
    ours = create_miner("semi-hard", margin=0.2, select="all")(x, y)
    theirs = pml.TripletMarginMiner(0.2, type_of_triplets="semihard")(x, y)
    assert len(ours.anchor) > 1000
    assert as_set(ours) == as_set(theirs)
