import numpy as np
import pytest

from deephash.codes import hamming_distance_matrix, pack_bits
from deephash.index import create_index
from deephash.index.binary_rerank import BinaryRerankIndex


def _codes(rng: np.random.Generator, n: int, bits: int) -> np.ndarray:
    return pack_bits(np.where(rng.random((n, bits)) < 0.5, 1, -1))


def _brute_force(codes, desc, ids, q, qd, k, kc, kd, radius=None, copy=None):  # type: ignore[no-untyped-def]
    """The union of each query's kc nearest codes and kd nearest descriptors (ties by id), ranked
    by (descriptor distance, code distance, id), in plain Python; with a copy radius, those
    within it so, then the others by (code distance, descriptor distance, id)."""
    dc = hamming_distance_matrix(q, codes)
    dd = hamming_distance_matrix(qd, desc)
    out = []
    for i in range(len(q)):
        by_code = sorted(range(len(ids)), key=lambda j: (dc[i, j], ids[j]))[:kc]
        by_desc = sorted(range(len(ids)), key=lambda j: (dd[i, j], ids[j]))[:kd]
        union = {j for j in by_code + by_desc if radius is None or dc[i, j] <= radius}

        ranked = sorted(union, key=lambda j, i=i: _key(dc[i, j], dd[i, j], ids[j], copy))[:k]
        out.append([(int(ids[j]), int(dc[i, j]), int(dd[i, j])) for j in ranked])
    return out


def _key(dc: int, dd: int, item: int, copy: int | None) -> tuple[int, ...]:
    if copy is None or dd <= copy:
        return (0, dd, dc, item)
    return (1, dc, dd, item)


@pytest.mark.parametrize(("backend", "copy"), [("flat", None), ("mih", None), ("mih", 9)])
def test_search_equals_brute_force_over_the_union_with_ties_and_changes(
    backend: str, copy: int | None
) -> None:
    rng = np.random.default_rng(0)
    codes, desc = _codes(rng, 400, 8), _codes(rng, 400, 24)  # 8-bit codes: many ties
    index = BinaryRerankIndex(
        create_index(backend, 8),
        create_index(backend, 24),
        candidates=10,
        descriptor_candidates=6,
        copy_radius=copy,
    )
    index.add(codes[:300], desc[:300])
    index.remove_ids(np.arange(0, 300, 7))
    index.add(codes[300:], desc[300:], ids=np.arange(1000, 1100))
    keep = np.r_[np.setdiff1d(np.arange(300), np.arange(0, 300, 7)), np.arange(300, 400)]
    ids = np.r_[np.setdiff1d(np.arange(300), np.arange(0, 300, 7)), np.arange(1000, 1100)]
    q, qd = _codes(rng, 25, 8), _codes(rng, 25, 24)
    for radius in (None, 2):
        got = index.search(q, qd, 5, radius=radius)
        want = _brute_force(codes[keep], desc[keep], ids, q, qd, 5, 10, 6, radius, copy)
        checked = 0
        for i, rows in enumerate(want):
            n = len(rows)
            assert got.ids[i, :n].tolist() == [r[0] for r in rows]
            assert got.distances[i, :n].tolist() == [r[1] for r in rows]
            np.testing.assert_allclose(got.scores[i, :n], [1 - 2 * r[2] / 24 for r in rows])
            assert (got.ids[i, n:] == -1).all() and np.isnan(got.scores[i, n:]).all()
            checked += 1
        assert checked == 25


def test_an_item_is_found_by_its_descriptor_whatever_the_size_of_its_tie_band() -> None:
    rng = np.random.default_rng(1)
    codes = np.repeat(_codes(rng, 1, 16), 5000, axis=0)  # one class, one code
    desc = _codes(rng, 5000, 64)
    index = BinaryRerankIndex(create_index("mih", 16), create_index("mih", 64), candidates=8)
    index.add(codes, desc)
    copy = desc[4321].copy()
    copy[0] ^= 0b101  # a copy: two descriptor bits flipped
    got = index.search(codes[:1], copy[None, :], 3)
    assert got.ids[0, 0] == 4321 and got.distances[0, 0] == 0
    assert got.scores[0, 0] == pytest.approx(1 - 2 * 2 / 64)


def test_bad_input_changes_nothing() -> None:
    rng = np.random.default_rng(2)
    index = BinaryRerankIndex(create_index("flat", 16), create_index("flat", 32))
    with pytest.raises(ValueError, match=r"shape \(n, 4\)"):
        index.add(_codes(rng, 3, 16), _codes(rng, 3, 16))
    with pytest.raises(ValueError, match="3 codes but 2 descriptors"):
        index.add(_codes(rng, 3, 16), _codes(rng, 2, 32))
    assert index.ntotal == 0 and index.index.ntotal == 0 and index.descriptor_index.ntotal == 0
    index.add(_codes(rng, 3, 16), _codes(rng, 3, 32))
    with pytest.raises(ValueError, match="ids must be new"):
        index.add(_codes(rng, 1, 16), _codes(rng, 1, 32), ids=[2])
    with pytest.raises(ValueError, match="query descriptors"):
        index.search(_codes(rng, 1, 16), _codes(rng, 1, 16), 1)
    with pytest.raises(ValueError, match="candidates must be a positive integer"):
        BinaryRerankIndex(create_index("flat", 16), create_index("flat", 32), candidates=0)
