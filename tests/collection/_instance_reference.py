"""The reference of the instance collection tests: brute force over the union of code and
descriptor candidates (numpy: every distance, then lexsort), and items with many ties."""

import numpy as np

from deephash.collection import Collection, NewItem

BITS = 64  # the tiny instance run's instance outputs


def hamming(q: np.ndarray, db: np.ndarray) -> np.ndarray:
    """Hamming distances from one packed row q to every row of db, by unpacking."""
    return np.unpackbits(q[None, :] ^ db, axis=1).sum(1).astype(np.int64)


def brute_force(
    col: Collection,
    code: np.ndarray,
    desc: np.ndarray,
    k: int,
    kc: int,
    kd: int,
    radius: int | None = None,
) -> list[tuple[int, int, float]]:
    """(id, code distance, score) of the k best of the union of the max(k, kc) nearest codes
    and the max(k, kd) nearest descriptors (each by (distance, id)): copies (descriptor
    distance within the collection's copy radius) first by (descriptor distance, code distance,
    id), then the others by (code distance, descriptor distance, id); codes beyond ``radius``
    dropped."""
    ids, codes, descs = col.ids, col.codes, col.descriptors
    assert descs is not None
    dc, dd = hamming(code, codes), hamming(desc, descs)
    within = np.ones(len(ids), bool) if radius is None else dc <= radius
    by_code = [j for j in np.lexsort((ids, dc)) if within[j]][: max(k, kc)]
    by_desc = np.lexsort((ids, dd))[: max(k, kd)]
    union = np.array(sorted(set(by_code) | {j for j in by_desc if within[j]}), dtype=np.int64)
    if not len(union):
        return []
    t = BITS if col.copy_radius is None else col.copy_radius

    def key(j: int) -> tuple[int, int, int, int]:
        if dd[j] <= t:
            return (0, int(dd[j]), int(dc[j]), int(ids[j]))
        return (1, int(dc[j]), int(dd[j]), int(ids[j]))

    best = sorted(union.tolist(), key=key)[:k]
    return [(int(ids[j]), int(dc[j]), 1.0 - 2.0 * float(dd[j]) / BITS) for j in best]


def triples(hits: list) -> list[tuple[int, int, float | None]]:  # type: ignore[type-arg]
    return [(h.id, h.distance, h.score) for h in hits]


def random_items(rng: np.random.Generator, n: int, base: np.ndarray) -> list[NewItem]:
    """Items with few distinct codes (many ties) and descriptors 0 to 15 bits from ``base``
    (ties too; both sides of the copy radius)."""
    codes = np.zeros((n, 2), np.uint8)
    codes[:, 0] = rng.integers(0, 4, n)
    flips = rng.integers(0, BITS, size=(n, 16))
    desc = np.repeat(base[None, :], n, axis=0)
    for row, bits in enumerate(flips):
        for b in bits[: rng.integers(0, 16)]:
            desc[row, b // 8] ^= np.uint8(1 << (b % 8))
    return [NewItem(codes[i], label=f"r{i % 5}", descriptor=desc[i]) for i in range(n)]


def check_against_brute_force(col: Collection, queries: list[int]) -> int:
    """Search by id for each query with several candidate counts; returns the checks made."""
    checks = 0
    for q in queries:
        code, desc = col.code_of(q), col.descriptor_of(q)
        for k, kc, kd, radius in ((1, 1, 1, None), (5, 3, 4, None), (10, 32, 32, None),
                                  (10, 2, 20, 1), (10, 500, 500, None)):  # fmt: skip
            got = col.search_by_id(q, k, radius, candidates=kc, descriptor_candidates=kd)
            assert triples(got) == brute_force(col, code, desc, k, kc, kd, radius), (q, k, kc)
            checks += 1
    return checks
