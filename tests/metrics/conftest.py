"""Brute-force, pure-Python references for the retrieval metrics, and tie-heavy test data.

The references never touch deephash's kernels: distances come from Python integers (popcount via
``bin``) or float64 loops, rankings from ``sorted`` with the key (distance, database index), and
every metric is computed from its textbook definition one query at a time.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from deephash.codes import pack_bits


def hamming(a: np.ndarray, b: np.ndarray) -> int:
    return sum(bin(int(x) ^ int(y)).count("1") for x, y in zip(a, b))


def distance_rows(q: np.ndarray, db: np.ndarray, distance: str) -> list[list[float]]:
    out = []
    for qi in q:
        row = []
        for x in db:
            if distance == "hamming":
                row.append(float(hamming(qi, x)))
            elif distance == "euclidean":
                diff = [float(a) - float(b) for a, b in zip(qi, x)]
                row.append(sum(d * d for d in diff))
            else:
                qn = sum(float(a) ** 2 for a in qi) ** 0.5
                xn = sum(float(b) ** 2 for b in x) ** 0.5
                dot = sum(float(a) * float(b) for a, b in zip(qi, x))
                row.append(-dot / (qn * xn) if qn > 0 and xn > 0 else 0.0)
        out.append(row)
    return out


def is_relevant(ql: np.ndarray, dl: np.ndarray) -> bool:
    if np.ndim(ql) == 0:
        return bool(ql == dl)
    return bool(np.any((np.asarray(ql) != 0) & (np.asarray(dl) != 0)))


def ranked_relevance(
    q, ql, db, dl, distance: str, leave_one_out: bool = False
) -> tuple[list[list[int]], list[list[int]]]:
    """Per query: database ids in ranking order and their 0/1 relevance; with ``leave_one_out``
    query i's own database item i is not ranked (leave-one-out)."""
    orders, rels = [], []
    for i, row in enumerate(distance_rows(q, db, distance)):
        ids = [j for j in range(len(row)) if not (leave_one_out and j == i)]
        order = sorted(ids, key=lambda j: (row[j], j))
        orders.append(order)
        rels.append([int(is_relevant(ql[i], dl[j])) for j in order])
    return orders, rels


def average_precision(rel: list[int], k: int | None, divisor: str) -> float:
    n = len(rel)
    k = n if k is None else min(k, n)
    hits, total = 0, 0.0
    for i in range(k):
        if rel[i]:
            hits += 1
            total += hits / (i + 1)
    denom = hits if divisor == "retrieved" else min(sum(rel), k)
    return total / denom if denom else 0.0


def mean_ap(q, ql, db, dl, distance, k=None, divisor="retrieved", leave_one_out=False) -> float:
    _, rels = ranked_relevance(q, ql, db, dl, distance, leave_one_out)
    return float(np.mean([average_precision(r, k, divisor) for r in rels]))


def precision_at_k(q, ql, db, dl, distance, k, leave_one_out=False) -> float:
    _, rels = ranked_relevance(q, ql, db, dl, distance, leave_one_out)
    kk = min(k, len(rels[0]))
    return float(np.mean([sum(r[:kk]) / kk for r in rels]))


def map_at_r(q, ql, db, dl, distance, leave_one_out=False) -> float:
    """Musgrave et al. 2020: (1/R) sum_{i<=R} P@i rel_i, R = relevant items; 0 when R = 0."""
    _, rels = ranked_relevance(q, ql, db, dl, distance, leave_one_out)
    out = []
    for rel in rels:
        r = sum(rel)
        total = sum(sum(rel[: i + 1]) / (i + 1) for i in range(r) if rel[i])
        out.append(total / r if r else 0.0)
    return float(np.mean(out))


def r_precision(q, ql, db, dl, distance, leave_one_out=False) -> float:
    """Relevant among the top R / R, R = relevant items; 0 when R = 0."""
    _, rels = ranked_relevance(q, ql, db, dl, distance, leave_one_out)
    return float(np.mean([sum(rel[: sum(rel)]) / sum(rel) if sum(rel) else 0.0 for rel in rels]))


def radius_precision_recall(
    q, ql, db, dl, radius, no_retrieval="zero", leave_one_out=False
) -> tuple[float, float]:
    precs, recs = [], []
    for i, row in enumerate(distance_rows(q, db, "hamming")):
        ids = [j for j in range(len(db)) if not (leave_one_out and j == i)]
        inside = [j for j in ids if row[j] <= radius]
        rel_inside = sum(is_relevant(ql[i], dl[j]) for j in inside)
        total_rel = sum(is_relevant(ql[i], dl[j]) for j in ids)
        recs.append(rel_inside / total_rel if total_rel else 0.0)
        if inside:
            precs.append(rel_inside / len(inside))
        elif no_retrieval == "zero":
            precs.append(0.0)
    precision = float(np.mean(precs)) if precs else 0.0
    return precision, float(np.mean(recs))


def rank_pr(q, ql, db, dl, distance, ks, leave_one_out=False) -> tuple[list[float], list[float]]:
    _, rels = ranked_relevance(q, ql, db, dl, distance, leave_one_out)
    precision, recall = [], []
    for k in ks:
        precision.append(float(np.mean([sum(r[:k]) / k for r in rels])))
        recall.append(float(np.mean([sum(r[:k]) / sum(r) if sum(r) else 0.0 for r in rels])))
    return precision, recall


def knn_predict(neighbor_labels: list) -> object:
    votes = Counter(neighbor_labels)
    best = max(votes.values())
    for lab in neighbor_labels:  # nearest first: first tied class wins
        if votes[lab] == best:
            return lab
    raise AssertionError("unreachable")


def knn_accuracy(q, ql, db, dl, distance, k, leave_one_out=False) -> float:
    orders, _ = ranked_relevance(q, ql, db, dl, distance, leave_one_out)
    kk = min(k, len(orders[0]))
    return float(
        np.mean([knn_predict([dl[j] for j in o[:kk]]) == ql[i] for i, o in enumerate(orders)])
    )


@pytest.fixture
def ref() -> SimpleNamespace:
    """The brute-force reference functions above."""
    return SimpleNamespace(
        hamming=hamming,
        ranked_relevance=ranked_relevance,
        average_precision=average_precision,
        mean_ap=mean_ap,
        precision_at_k=precision_at_k,
        map_at_r=map_at_r,
        r_precision=r_precision,
        radius_precision_recall=radius_precision_recall,
        rank_pr=rank_pr,
        knn_predict=knn_predict,
        knn_accuracy=knn_accuracy,
    )


LABEL_VALUES = np.array([-7, 3, 42, 1000])


def tie_heavy_codes(
    bits: int, nq: int, ndb: int, seed: int, pool: int = 6
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Packed codes drawn from a small pool of distinct codes (many exact distance ties), with
    class ids of arbitrary values that partly follow the code (so AP is neither 0 nor 1)."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, size=(pool, bits))
    qi = rng.integers(0, pool, nq)
    di = rng.integers(0, pool, ndb)
    q = pack_bits(centres[qi])
    db = pack_bits(centres[di])
    ql = np.where(rng.random(nq) < 0.6, LABEL_VALUES[qi % 4], rng.choice(LABEL_VALUES, nq))
    dl = np.where(rng.random(ndb) < 0.6, LABEL_VALUES[di % 4], rng.choice(LABEL_VALUES, ndb))
    return q, ql, db, dl


def noisy_codes(
    bits: int, nq: int, ndb: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Class-centroid codes with bit flips: spread-out distances, some ties."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, 2, size=(4, bits)).astype(bool)
    ql = rng.integers(0, 4, nq)
    dl = rng.integers(0, 4, ndb)
    q = pack_bits(centres[ql] ^ (rng.random((nq, bits)) < 0.2))
    db = pack_bits(centres[dl] ^ (rng.random((ndb, bits)) < 0.2))
    return q, LABEL_VALUES[ql], db, LABEL_VALUES[dl]


def grid_embeddings(
    nq: int, ndb: int, dim: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Small-integer float embeddings: many exact distance ties, all computed exactly."""
    rng = np.random.default_rng(seed)
    q = rng.integers(-2, 3, size=(nq, dim)).astype(np.float32)
    db = rng.integers(-2, 3, size=(ndb, dim)).astype(np.float32)
    return q, rng.choice(LABEL_VALUES, nq), db, rng.choice(LABEL_VALUES, ndb)


def gaussian_with_duplicates(
    nq: int, ndb: int, dim: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian embeddings in which a third of the database rows repeat earlier rows exactly."""
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((nq, dim))
    db = rng.standard_normal((ndb, dim))
    dup = rng.integers(0, ndb // 2, ndb // 3)
    db[ndb - ndb // 3 :] = db[dup]
    return q, rng.choice(LABEL_VALUES, nq), db, rng.choice(LABEL_VALUES, ndb)


# (queries per block, database items per tile) of the float kernel: the default, odd sizes that
# put duplicate rows in different tiles and query groups, and one query per block.
FLOAT_BLOCKS = [(32, 512), (3, 7), (1, 16)]


@pytest.fixture(params=FLOAT_BLOCKS, ids=lambda b: f"qblock{b[0]}-tile{b[1]}")
def float_blocks(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple:
    """Runs a float-metric test under each kernel blocking: no result may depend on it."""
    from deephash.metrics import _ranking

    monkeypatch.setattr(_ranking, "FLOAT_QUERY_BLOCK", request.param[0])
    monkeypatch.setattr(_ranking, "FLOAT_DB_BLOCK", request.param[1])
    return request.param


@pytest.fixture
def data() -> SimpleNamespace:
    """The test-data generators above."""
    return SimpleNamespace(
        tie_heavy_codes=tie_heavy_codes,
        noisy_codes=noisy_codes,
        grid_embeddings=grid_embeddings,
        gaussian_with_duplicates=gaussian_with_duplicates,
    )
