import pytest
import torch
from _miner_brute import py_dist

from deephash.miners import create_pair_miner


def test_pairs_follow_the_rule_by_brute_force(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    d = py_dist(x, "cosine")  # 1 - cosine similarity
    lab = y.tolist()
    eps = 0.1
    want_pos, want_neg = [], []
    for i in range(24):
        pos = [j for j in range(24) if j != i and lab[j] == lab[i]]
        neg = [j for j in range(24) if lab[j] != lab[i]]
        s_min_pos = min(1 - d[i][j] for j in pos)
        s_max_neg = max(1 - d[i][j] for j in neg)
        want_pos += [(i, j) for j in pos if (1 - d[i][j]) - eps < s_max_neg]
        want_neg += [(i, j) for j in neg if (1 - d[i][j]) + eps > s_min_pos]
    a1, p, a2, n = create_pair_miner("multi-similarity", epsilon=eps)(x, y)
    assert list(zip(a1.tolist(), p.tolist())) == want_pos  # row-major order
    assert list(zip(a2.tolist(), n.tolist())) == want_neg
    assert 0 < len(want_pos) < sum(lab[i] == lab[j] for i in range(24) for j in range(24)) - 24
    # an anchor keeps positives exactly when it keeps negatives
    assert set(a1.tolist()) == set(a2.tolist())


@pytest.mark.parametrize("epsilon", [0.0, 0.1, 0.5])
def test_same_pairs_as_pytorch_metric_learning(epsilon) -> None:
    miners = pytest.importorskip("pytorch_metric_learning.miners")
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (40,), generator=gen)
    y[-1] = 7  # a class with a single sample: an anchor without positives keeps nothing
    want = miners.MultiSimilarityMiner(epsilon=epsilon)(x, y)
    got = create_pair_miner("multi-similarity", epsilon=epsilon)(x, y)
    for lo in (0, 2):
        assert sorted(zip(got[lo].tolist(), got[lo + 1].tolist())) == sorted(
            zip(want[lo].tolist(), want[lo + 1].tolist())
        )
    assert 39 not in got.a1.tolist() and 39 not in got.a2.tolist()
    assert len(got.a1) > 0


def test_options_and_errors() -> None:
    with pytest.raises(ValueError, match="epsilon"):
        create_pair_miner("multi-similarity", epsilon=-0.1)
    m = create_pair_miner("multi-similarity")
    assert m.epsilon == 0.1 and m.distance.metric == "cosine"
    # well-separated classes: nothing is hard, nothing is mined
    x = torch.tensor([[1.0, 0.0], [0.99, 0.05], [0.0, 1.0], [0.05, 0.99]])
    a1, p, a2, n = m(x, torch.tensor([0, 0, 1, 1]))
    assert a1.numel() == p.numel() == a2.numel() == n.numel() == 0
