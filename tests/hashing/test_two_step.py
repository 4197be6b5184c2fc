import itertools
import time

import numpy as np
import pytest

from deephash.codes import hamming_distance_matrix, pack_bits
from deephash.hashing.two_step import (
    TripletCodeInference,
    sample_triplets,
    spread_codes,
    triplet_satisfaction,
)


def test_sample_triplets_valid_and_covering() -> None:
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])  # class 3 has a single sample
    t = sample_triplets(y, 50, seed=0)
    assert t.shape == (9 * 50, 3) and t.dtype == np.int64
    for a, p, n in t:
        assert a != p and y[a] == y[p] != y[n]
    valid = {
        (a, p, n)
        for a, p, n in itertools.product(range(10), repeat=3)
        if a != p and y[a] == y[p] and y[a] != y[n]
    }
    seen = {tuple(r) for r in t.tolist()}
    assert seen <= valid
    # every allowed positive and negative of anchor 0 shows up with 50 draws
    assert {p for a, p, _ in seen if a == 0} == {1, 2}
    assert {n for a, _, n in seen if a == 0} == set(range(3, 10))
    with pytest.raises(ValueError, match="two classes"):
        sample_triplets(np.zeros(5, dtype=int), 2)


def _hinge_loss(codes: np.ndarray, trip: np.ndarray, margin: float) -> float:
    total = 0.0
    for a, p, n in trip.tolist():
        dp = sum(int(x != y) for x, y in zip(codes[a], codes[p]))
        dn = sum(int(x != y) for x, y in zip(codes[a], codes[n]))
        total += max(0.0, dp - dn + margin)
    return total / len(trip)


def test_inference_on_separable_problem() -> None:
    y = np.repeat(np.arange(5), 16)
    inf = TripletCodeInference(16, triplets_per_sample=8, seed=0).fit(y)
    z = inf.codes_
    assert z.shape == (80, 16) and z.dtype == np.int8 and set(np.unique(z)) <= {-1, 1}
    hist = inf.loss_history_
    assert np.all(np.diff(hist) <= 1e-12) and hist[-1] < 0.1 * hist[0]
    # bookkeeping: the last recorded loss is the brute-force loss of the final codes
    assert hist[-1] == pytest.approx(_hinge_loss(z, inf.triplets_, 16 / 4))
    fresh = sample_triplets(y, 20, seed=99)  # constraints not used in fitting
    rand = np.where(np.random.default_rng(0).random(z.shape) < 0.5, 1, -1)
    assert triplet_satisfaction(z, fresh) > 0.95
    assert triplet_satisfaction(rand, fresh) < 0.6
    d = hamming_distance_matrix(pack_bits(z), pack_bits(z))
    same = (y[:, None] == y[None, :]) & ~np.eye(80, dtype=bool)
    assert d[same].mean() < 0.4 * d[y[:, None] != y[None, :]].mean()


def test_inference_given_triplets_and_init() -> None:
    y = np.array([0, 0, 1, 1])
    trip = np.array([[0, 1, 2], [1, 0, 3], [2, 3, 0], [3, 2, 1]])
    init = np.array([[1, 1], [-1, -1], [1, 1], [-1, -1]])  # violates every triplet
    inf = TripletCodeInference(2, margin=1.0, seed=0).fit(y, triplets=trip, init_codes=init)
    assert inf.loss_history_[0] == pytest.approx(_hinge_loss(init, trip, 1.0))
    # exhaustive optimum over all 2^8 code sets
    best = min(
        _hinge_loss(np.array(c).reshape(4, 2), trip, 1.0)
        for c in itertools.product([-1, 1], repeat=8)
    )
    assert inf.loss_history_[-1] == pytest.approx(best)
    with pytest.raises(ValueError, match="not \\(anchor, same-class, other-class\\)"):
        TripletCodeInference(2).fit(y, triplets=np.array([[0, 2, 1]]))
    with pytest.raises(ValueError, match="init_codes must be"):
        TripletCodeInference(3).fit(y, init_codes=init)


@pytest.mark.slow
def test_scales_to_60k_by_48_bits() -> None:
    y = np.random.default_rng(0).integers(0, 10, 60_000)
    start = time.perf_counter()
    inf = TripletCodeInference(48, triplets_per_sample=10, seed=0).fit(y)
    elapsed = time.perf_counter() - start
    assert elapsed < 300
    assert triplet_satisfaction(inf.codes_, sample_triplets(y, 2, seed=7)) > 0.95


def test_spread_codes_are_far_apart_and_seeded() -> None:
    codes = spread_codes(10, 12, seed=3)
    assert codes.shape == (10, 12) and codes.dtype == np.int8
    assert set(np.unique(codes)) == {-1, 1}
    dist = (codes[:, None, :] != codes[None, :, :]).sum(-1)[np.triu_indices(10, 1)]
    # 10 random 12-bit codes are typically 1-2 bits apart at the closest pair; greedy max-min
    # selection reaches 6 (the Plotkin-type bound for 10 words of length 12 is 6).
    assert dist.min() >= 5
    np.testing.assert_array_equal(codes, spread_codes(10, 12, seed=3))
    with pytest.raises(ValueError, match="positive"):
        spread_codes(0, 12)


def test_class_init_gives_one_code_per_class() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 2000) * 7 + 3  # arbitrary label values
    inf = TripletCodeInference(12, init="class", seed=0).fit(labels)
    z = inf.codes_
    per_class = {int(c): np.unique(z[labels == c], axis=0) for c in np.unique(labels)}
    assert all(len(u) == 1 for u in per_class.values())
    # Every sampled triplet is satisfied by the margin (bits / 4 = 3): brute force over triplets.
    a, p, n = inf.triplets_.T
    d_pos = (z[a] != z[p]).sum(1)
    d_neg = (z[a] != z[n]).sum(1)
    assert np.all(np.maximum(0, d_pos - d_neg + 3) == 0)
    assert inf.loss_history_[0] == 0.0
    # The random start instead ends with many codes per class.
    rand = TripletCodeInference(12, seed=0).fit(labels).codes_
    assert len(np.unique(rand[labels == labels[0]], axis=0)) > 10
    with pytest.raises(ValueError, match="init must be"):
        TripletCodeInference(12, init="hadamard")  # type: ignore[arg-type]
