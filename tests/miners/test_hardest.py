import torch
from _miner_brute import as_set, py_dist

from deephash.miners import create_miner


def test_hardest_negative_per_pair(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    d = py_dist(x)
    lab = y.tolist()
    expected = set()
    for a in range(len(lab)):
        negs = [n for n in range(len(lab)) if lab[n] != lab[a]]
        hardest = min(negs, key=lambda n: d[a][n])
        for p in range(len(lab)):
            if p != a and lab[p] == lab[a]:
                expected.add((a, p, hardest))
    assert as_set(create_miner("hardest")(x, y)) == expected


def test_cosine_and_unnormalized(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    x = x * torch.linspace(0.1, 5, 24)[:, None]  # norms matter without normalization
    for metric, normalize in (("cosine", True), ("euclidean", False)):
        d = py_dist(x, metric, normalize)
        t = create_miner("hardest", metric=metric, normalize=normalize)(x, y)
        assert len(t.anchor) > 0  # the loop below checks every mined triplet
        for a, n in zip(t.anchor.tolist(), t.negative.tolist()):
            negs = [d[a][k] for k in range(24) if y[k] != y[a]]
            assert abs(d[a][n] - min(negs)) < 1e-5
