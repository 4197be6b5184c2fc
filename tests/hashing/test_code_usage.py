import math

import numpy as np
import pytest

from deephash.codes import pack_bits
from deephash.hashing.code_usage import bit_entropy, code_usage

# 6 database codes x 3 bits in three buckets: A = (+,+,-) x3, B = (-,+,-) x2, C = (+,-,+) x1
A, B, C = [1, 1, -1], [-1, 1, -1], [1, -1, 1]
DB = np.array([A, B, A, C, A, B], dtype=np.int8)


def test_buckets_and_entropies_by_hand() -> None:
    u = code_usage(DB)
    assert (u.bits, u.num_codes, u.distinct_codes, u.largest_bucket) == (3, 6, 3, 3)
    assert u.distinct_fraction == 0.5 and u.largest_bucket_share == 0.5
    # without queries each item's bucket minus itself: A items see 2, B items 1, C 0
    assert u.mean_query_bucket == pytest.approx((3 * 2 + 2 * 1 + 0) / 6)
    # buckets of 3, 2, 1 out of 6
    h = -(0.5 * math.log2(0.5) + (2 / 6) * math.log2(2 / 6) + (1 / 6) * math.log2(1 / 6))
    assert u.code_entropy == pytest.approx(h)
    # ones per bit: bit0 4/6, bit1 5/6, bit2 1/6
    hb = [-(p * math.log2(p) + (1 - p) * math.log2(1 - p)) for p in (4 / 6, 5 / 6, 1 / 6)]
    np.testing.assert_allclose(bit_entropy(DB), hb)
    assert u.mean_bit_entropy == pytest.approx(sum(hb) / 3)
    assert u.min_bit_entropy == pytest.approx(min(hb))


def test_queries_count_the_database_items_with_their_code() -> None:
    first, last = [-1, -1, -1], [1, 1, 1]  # in no bucket; sorted before and after every code
    queries = np.array([A, C, first, B, last], dtype=np.int8)
    u = code_usage(DB, queries)
    assert u.mean_query_bucket == pytest.approx((3 + 1 + 0 + 2 + 0) / 5)
    # leave-one-out: query i is database item i, so it does not count itself
    loo = code_usage(DB, DB, leave_one_out=True)
    assert loo.mean_query_bucket == code_usage(DB).mean_query_bucket
    with pytest.raises(ValueError, match="one query per database item"):
        code_usage(DB, queries, leave_one_out=True)


def test_packed_input_and_extremes() -> None:
    rng = np.random.default_rng(0)
    codes = np.where(rng.random((200, 20)) < 0.5, 1, -1).astype(np.int8)
    assert code_usage(pack_bits(codes), bits=20) == code_usage(codes)
    one = code_usage(np.ones((5, 8), dtype=np.int8))
    assert (one.distinct_codes, one.largest_bucket_share, one.code_entropy) == (1, 1.0, 0.0)
    assert one.mean_bit_entropy == 0.0 and one.mean_query_bucket == 4.0
    eye = code_usage(np.where(np.eye(8) > 0, 1, -1))
    assert eye.distinct_fraction == 1.0 and eye.code_entropy == pytest.approx(3.0)
    assert eye.to_dict()["largest_bucket"] == 1
