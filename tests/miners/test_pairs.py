import pytest
import torch
from _miner_brute import py_dist

from deephash.miners import create_pair_miner


def test_all_pairs(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    lab = y.tolist()
    a1, p, a2, n = create_pair_miner("all-pairs")(x, y)
    pos = [(i, j) for i in range(24) for j in range(24) if i != j and lab[i] == lab[j]]
    neg = [(i, j) for i in range(24) for j in range(24) if lab[i] != lab[j]]
    assert list(zip(a1.tolist(), p.tolist())) == pos
    assert list(zip(a2.tolist(), n.tolist())) == neg


def test_all_pairs_matches_pml() -> None:
    lmu = pytest.importorskip("pytorch_metric_learning.utils.loss_and_miner_utils")
    y = torch.tensor([0, 1, 0, 2, 1, 0])
    ours = create_pair_miner("all-pairs")(torch.randn(6, 3), y)
    assert [t.tolist() for t in ours] == [t.tolist() for t in lmu.get_all_pairs_indices(y)]


def test_hard_pairs(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    d = py_dist(x)
    lab = y.tolist()
    a1, _p, a2, n = create_pair_miner("hard-pairs")(x, y)
    n_pos = sum(1 for i in range(24) for j in range(24) if i != j and lab[i] == lab[j])
    assert len(a1) == n_pos == len(a2)
    neg = sorted((d[i][j], i, j) for i in range(24) for j in range(24) if lab[i] != lab[j])
    chosen = {(i, j) for i, j in zip(a2.tolist(), n.tolist())}
    # the chosen ones are the n_pos closest (up to float ties at the cut)
    cut = neg[n_pos - 1][0]
    assert all(d[i][j] <= cut + 1e-6 for i, j in chosen)
    assert {(i, j) for v, i, j in neg if v < cut - 1e-6} <= chosen
