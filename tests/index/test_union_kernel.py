"""The compiled ranking of a two-source candidate union against plain Python."""

import numpy as np
import pytest

from deephash.codes import to_words
from deephash.index.binary_rerank import rank_union


def _hamming(a: np.ndarray, b: np.ndarray) -> int:
    return int(sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b)))


def _brute_force(q, qd, ids, codes, descs, code_ids, desc_ids, k, dbits, radius, copy):  # type: ignore[no-untyped-def]
    """Each query's distinct candidates that are stored, within ``radius`` (code distance),
    sorted by (0, dd, dc, id) for copies (dd <= copy, all when None), else (1, dc, dd, id)."""
    rows = {int(v): r for r, v in enumerate(ids)}
    out = []
    for i in range(len(q)):
        union = {int(v) for v in np.concatenate([code_ids[i], desc_ids[i]]) if v in rows}
        ranked = []
        for v in union:
            dc, dd = _hamming(q[i], codes[rows[v]]), _hamming(qd[i], descs[rows[v]])
            if radius is not None and dc > radius:
                continue
            is_copy = copy is None or dd <= copy
            ranked.append(((0, dd, dc, v) if is_copy else (1, dc, dd, v), v, dc, dd))
        ranked.sort()
        out.append([(v, dc, np.float32(1.0 - 2.0 * dd / dbits)) for _, v, dc, dd in ranked[:k]])
    return out


def _check(got, want, k: int) -> None:  # type: ignore[no-untyped-def]
    assert got.ids.shape == got.distances.shape == got.scores.shape == (len(want), k)
    for row, hits in enumerate(want):
        n = len(hits)
        assert got.ids[row, :n].tolist() == [v for v, _, _ in hits]
        assert got.distances[row, :n].tolist() == [dc for _, dc, _ in hits]
        np.testing.assert_array_equal(got.scores[row, :n], [s for _, _, s in hits])
        assert (got.ids[row, n:] == -1).all() and (got.distances[row, n:] == -1).all()
        assert np.isnan(got.scores[row, n:]).all()


@pytest.mark.parametrize("copy", [None, 0, 3])
@pytest.mark.parametrize("radius", [None, 6])
def test_equals_brute_force_with_ties_repeats_missing_ids_and_short_rows(
    copy: int | None, radius: int | None
) -> None:
    rng = np.random.default_rng(0)
    n, nq = 60, 25
    ids = np.sort(rng.choice(1000, n, replace=False)).astype(np.int64)
    codes = rng.integers(0, 4, (n, 6), dtype=np.uint8)  # few bits set: many ties
    descs = rng.integers(0, 4, (n, 8), dtype=np.uint8)
    q = rng.integers(0, 4, (nq, 6), dtype=np.uint8)
    qd = np.concatenate([descs[:10], rng.integers(0, 4, (nq - 10, 8), dtype=np.uint8)])
    pool = np.concatenate([ids, [-1, -1, -1, 5000, 5001]])  # padding and unknown (removed) ids
    code_ids = rng.choice(pool, (nq, 12))
    desc_ids = np.concatenate([code_ids[:, :5], rng.choice(pool, (nq, 7))], axis=1)  # repeats
    code_ids[0] = -1  # a row without any candidate
    ranked_rows = 0
    for k in (1, 4, 30):  # 30: more than any union
        want = _brute_force(q, qd, ids, codes, descs, code_ids, desc_ids, k, 64, radius, copy)
        got = rank_union((q, qd), (ids, codes, descs), code_ids, desc_ids, k, 64, radius, copy)
        _check(got, want, k)
        words = rank_union(
            (to_words(q), to_words(qd)),
            (ids, to_words(codes), to_words(descs)),
            code_ids,
            desc_ids,
            k,
            64,
            radius,
            copy,
        )
        for a, b in zip(
            (got.ids, got.distances, got.scores), (words.ids, words.distances, words.scores)
        ):
            np.testing.assert_array_equal(a, b)
        ranked_rows += sum(len(w) > 1 for w in want)
    assert ranked_rows > 10  # the loop compared real rankings, not empty rows


def test_an_empty_collection_and_mixed_packing() -> None:
    empty = (np.zeros(0, np.int64), np.zeros((0, 6), np.uint8), np.zeros((0, 8), np.uint8))
    q, qd = np.zeros((2, 6), np.uint8), np.zeros((2, 8), np.uint8)
    got = rank_union((q, qd), empty, np.full((2, 3), 7), np.full((2, 3), -1), 5, 64)
    assert (got.ids == -1).all() and np.isnan(got.scores).all()
    with pytest.raises(ValueError, match="packed the same way"):
        rank_union((to_words(q), qd), empty, np.full((2, 3), -1), np.full((2, 3), -1), 5, 64)
