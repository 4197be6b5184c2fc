import numpy as np
import pytest

from deephash.codes import (
    code_bytes,
    hamming_distance_matrix,
    pack_bits,
    sign,
    to_words,
    unpack_bits,
)


@pytest.mark.parametrize("bits", [1, 7, 8, 12, 24, 32, 48, 63, 64, 65, 128, 256])
def test_pack_unpack_round_trip(bits: int) -> None:
    rng = np.random.default_rng(bits)
    codes = sign(rng.standard_normal((17, bits)))
    packed = pack_bits(codes)
    assert packed.dtype == np.uint8 and packed.shape == (17, code_bytes(bits))
    np.testing.assert_array_equal(unpack_bits(packed, bits), codes)
    # padding bits are zero, so they never count in a distance
    if bits % 8:
        assert np.all(packed[:, -1] >> (bits % 8) == 0)


def test_layout_is_lsb_first_like_faiss() -> None:
    x = np.zeros((1, 16))
    x[0, 0] = 1  # bit 0 -> byte 0, value 1
    x[0, 9] = 1  # bit 9 -> byte 1, value 2
    assert pack_bits(x).tolist() == [[1, 2]]


def test_matches_faiss_real_to_binary() -> None:
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 48)).astype(np.float32)
    ref = np.empty((5, 6), dtype=np.uint8)
    faiss.real_to_binary(48 * 5, faiss.swig_ptr(x), faiss.swig_ptr(ref))
    np.testing.assert_array_equal(pack_bits(x), ref)


def test_sign_zero_is_plus_one() -> None:
    assert sign(np.array([[-0.5, 0.0, 2.0]])).tolist() == [[-1, 1, 1]]


@pytest.mark.parametrize("bits", [8, 12, 64, 100, 256])
def test_hamming_matrix_brute_force(bits: int) -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2, (9, bits))
    b = rng.integers(0, 2, (11, bits))
    expected = (a[:, None, :] != b[None, :, :]).sum(-1)
    np.testing.assert_array_equal(hamming_distance_matrix(pack_bits(a), pack_bits(b)), expected)


def test_to_words_pads() -> None:
    packed = np.arange(6, dtype=np.uint8).reshape(1, 6)
    w = to_words(packed)
    assert w.shape == (1, 1) and w.dtype == np.uint64
    assert int(w[0, 0]) == int.from_bytes(bytes([0, 1, 2, 3, 4, 5, 0, 0]), "little")


def test_unpack_rejects_wrong_width() -> None:
    with pytest.raises(ValueError, match="bytes per row"):
        unpack_bits(np.zeros((2, 3), dtype=np.uint8), 32)


def test_check_padding_bits() -> None:
    from deephash.codes import check_padding_bits

    ok = np.array([[0xFF, 0x0F]], dtype=np.uint8)  # 12 bits: high nibble of byte 1 unused
    check_padding_bits(ok, 12)
    check_padding_bits(np.array([[0xFF, 0xFF]], dtype=np.uint8), 16)  # no padding bits at 16
    check_padding_bits(np.zeros((0, 2), dtype=np.uint8), 12)
    with pytest.raises(ValueError, match="query codes set padding bits beyond bit 11"):
        check_padding_bits(np.array([[0, 0x10]], dtype=np.uint8), 12, "query codes")
