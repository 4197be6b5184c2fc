import numpy as np
import pytest

from deephash.codes import code_bytes, unpack_bits
from deephash.hashing.lsh import LSH


def test_codes_match_brute_force_projection() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 6)) + 5.0
    lsh = LSH(12, seed=3).fit(x)
    codes = lsh.encode(x)
    assert codes.dtype == np.uint8 and codes.shape == (20, code_bytes(12))
    mean = [sum(x[i, f] for i in range(20)) / 20 for f in range(6)]
    bits = unpack_bits(codes, 12)
    for i in range(20):
        for r in range(12):
            proj = sum((x[i, f] - mean[f]) * lsh.planes_[f, r] for f in range(6))
            assert bits[i, r] == (1 if proj >= 0 else -1)


def test_bits_roughly_balanced_even_for_shifted_data() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4000, 32)) + 10.0  # all positive: origin hyperplanes would fail
    bits = unpack_bits(LSH(64, seed=0).fit_encode(x), 64)
    assert np.abs(bits.mean(axis=0)).max() < 0.1


def test_seeded_and_errors() -> None:
    x = np.random.default_rng(2).standard_normal((50, 8))
    np.testing.assert_array_equal(LSH(16, seed=4).fit_encode(x), LSH(16, seed=4).fit_encode(x))
    assert not np.array_equal(LSH(16, seed=4).fit_encode(x), LSH(16, seed=5).fit_encode(x))
    with pytest.raises(ValueError, match="not fitted"):
        LSH(8).encode(x)
    with pytest.raises(ValueError, match="fitted on 8"):
        LSH(8).fit(x).encode(x[:, :4])
    with pytest.raises(ValueError, match="2-D"):
        LSH(8).fit(x[0])
    with pytest.raises(ValueError, match="bits must be a positive int"):
        LSH(0)
