import pytest
from _miner_brute import as_set, py_dist, valid_triplets

from deephash.miners import create_miner


def _window_hardest(d, y, m, t):  # type: ignore[no-untyped-def]
    cands = {
        (a, p, n)
        for a, p, n in valid_triplets(y.tolist())
        if (1 - t) * d[a][p] < d[a][n] and d[a][n] - d[a][p] < m
    }
    out = set()
    for a, p in {c[:2] for c in cands}:
        out.add((a, p, min((c[2] for c in cands if c[:2] == (a, p)), key=lambda n: d[a][n])))
    return out


@pytest.mark.parametrize("progress", [0.0, 0.3, 1.0])
def test_window_by_loop(small_batch, progress) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    d = py_dist(x)
    miner = create_miner("curriculum", margin=0.3)
    miner.set_progress(progress)
    assert as_set(miner(x, y)) == _window_hardest(d, y, 0.3, progress)


def test_starts_semi_hard_ends_hardest(small_batch) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    cur = create_miner("curriculum", margin=0.3)
    assert as_set(cur(x, y)) == as_set(create_miner("semi-hard", margin=0.3)(x, y))
    cur.set_progress(1.0)
    hardest = as_set(create_miner("hardest")(x, y))
    d = py_dist(x)
    assert as_set(cur(x, y)) == {(a, p, n) for a, p, n in hardest if d[a][n] - d[a][p] < 0.3}
    with pytest.raises(ValueError, match="progress"):
        cur.set_progress(-0.1)
