"""The torch path (used on GPUs) and the numba path (CPU) of the selection helpers agree."""

import math

import pytest
import torch
from _miner_brute import as_set

from deephash.miners import _select, create_miner
from deephash.miners.seeded_random import SeededRandom


@pytest.fixture
def torch_path(monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_select, "_USE_NUMBA", False)


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("hardest", {}),
        ("semi-hard", {"margin": 0.3}),
        ("curriculum", {"margin": 0.3, "progress": 0.4}),
        ("all", {"margin": 0.3}),
        ("semi-hard", {"margin": 0.3, "select": "all"}),
    ],
)
def test_deterministic_miners_same_on_both_paths(small_batch, monkeypatch, name, options) -> None:  # type: ignore[no-untyped-def]
    x, y = small_batch
    fast = create_miner(name, **options)(x, y)
    monkeypatch.setattr(_select, "_USE_NUMBA", False)
    slow = create_miner(name, **options)(x, y)
    assert [v.tolist() for v in fast] == [v.tolist() for v in slow]


@pytest.mark.parametrize("name", ["random-hard", "distance-weighted"])
@pytest.mark.parametrize("select", ["numba", "torch"])
def test_random_miners_valid_on_both_paths(small_batch, monkeypatch, name, select) -> None:  # type: ignore[no-untyped-def]
    if select == "torch":
        monkeypatch.setattr(_select, "_USE_NUMBA", False)
    x, y = small_batch
    m = create_miner(name, seed=3)
    t = m(x, y)
    assert [v.tolist() for v in t] == [v.tolist() for v in create_miner(name, seed=3)(x, y)]
    assert bool((y[t.anchor] == y[t.positive]).all() & (y[t.anchor] != y[t.negative]).all())
    pairs = {(a, p) for a, p, _ in as_set(t)}
    assert len(pairs) == len(t.anchor)  # at most one triplet per (a, p)


def test_torch_path_weighted_frequencies(torch_path) -> None:  # type: ignore[no-untyped-def]
    """Gumbel-max on the torch path draws ∝ weights: 3 allowed negatives, weights 1 : 2 : 5."""
    labels = torch.tensor([0] * 61 + [1, 2, 3])
    batch = create_miner("hardest")._prepare(torch.randn(64, 3), labels)
    log_w = torch.zeros(64, 64)
    log_w[0, 61:] = torch.log(torch.tensor([1.0, 2.0, 5.0]))
    allowed = batch.negative_mask.clone()
    rng = SeededRandom(0)
    counts = [0, 0, 0]
    for _ in range(10):
        t = _select.pick_weighted(batch, log_w, allowed, rng)
        for n in t.negative[t.anchor == 0].tolist():
            counts[n - 61] += 1
    total = sum(counts)
    for c, w in zip(counts, (1, 2, 5)):
        expect = total * w / 8
        assert abs(c - expect) < 5 * math.sqrt(expect)
