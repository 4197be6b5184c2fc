import pytest
import torch
from _miner_brute import as_set, py_dist

from deephash.miners import create_miner


def test_farthest_positive_closest_negative(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    d = py_dist(x)
    lab = y.tolist()
    expected = set()
    for a in range(len(lab)):
        pos = [p for p in range(len(lab)) if p != a and lab[p] == lab[a]]
        neg = [n for n in range(len(lab)) if lab[n] != lab[a]]
        expected.add((a, max(pos, key=lambda p: d[a][p]), min(neg, key=lambda n: d[a][n])))
    assert as_set(create_miner("batch-hard")(x, y)) == expected


def test_anchor_without_positive_is_skipped() -> None:
    y = torch.tensor([0, 0, 1, 2])
    t = create_miner("batch-hard")(torch.randn(4, 3), y)
    assert sorted(t.anchor.tolist()) == [0, 1]


def test_matches_pml_batch_hard() -> None:
    pml = pytest.importorskip("pytorch_metric_learning.miners")
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(128, 32, generator=gen)
    y = torch.randint(0, 20, (128,), generator=gen)
    assert as_set(create_miner("batch-hard")(x, y)) == as_set(pml.BatchHardMiner()(x, y))
