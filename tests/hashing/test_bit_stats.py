import numpy as np
import pytest

from deephash.codes import pack_bits
from deephash.hashing.bit_stats import (
    bit_balance,
    bit_correlation,
    bit_stats,
    distinct_code_fraction,
)

# 4 codes x 3 bits: bit 0 balanced, bit 1 = bit 0 (corr 1), bit 2 constant +1
CODES = np.array([[1, 1, 1], [1, 1, 1], [-1, -1, 1], [-1, -1, 1]], dtype=np.int8)


def test_balance_distinct_correlation_by_hand() -> None:
    np.testing.assert_array_equal(bit_balance(CODES), [0.0, 0.0, 1.0])
    assert distinct_code_fraction(CODES) == 0.5
    corr = bit_correlation(CODES)
    np.testing.assert_array_equal(corr, [[1, 1, 0], [1, 1, 0], [0, 0, 1]])
    s = bit_stats(CODES)
    assert (s.bits, s.num_codes, s.max_abs_balance, s.distinct_fraction) == (3, 4, 1.0, 0.5)
    assert s.max_abs_correlation == 1.0 and s.mean_abs_correlation == pytest.approx(2 / 6)


def test_packed_and_01_inputs_agree() -> None:
    rng = np.random.default_rng(0)
    codes = np.where(rng.random((50, 12)) < 0.3, 1, -1).astype(np.int8)
    packed = pack_bits(codes)
    np.testing.assert_allclose(bit_balance(packed, bits=12), codes.mean(axis=0))
    np.testing.assert_allclose(bit_balance((codes > 0).astype(np.int64)), codes.mean(axis=0))
    np.testing.assert_allclose(bit_correlation(packed, 12), np.corrcoef(codes.T.astype(float)))
    assert bit_stats(packed, 12).distinct_fraction == distinct_code_fraction(codes)
    with pytest.raises(ValueError, match="bits=8 but"):
        bit_balance(codes, bits=8)
    with pytest.raises(ValueError, match="non-empty 2-D"):
        bit_stats(codes[0])
