"""leave_one_out: every metric equals the brute-force metric against the database without the
query's own item (np.delete), on tie-heavy codes and on embeddings with exact duplicates, so the
left-out item is found by index, never by "the first item at distance 0"."""

import numpy as np
import pytest

from deephash.metrics import (
    knn_accuracy,
    map_at_r,
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
    r_precision,
    retrieval_report,
)


def per_query(fn, q, ql, nq):
    """Mean over the first nq items of fn(query row, its label, database without it)."""
    values = []
    for i in range(nq):
        values.append(fn(q[i : i + 1], ql[i : i + 1], np.delete(q, i, 0), np.delete(ql, i)))
    return float(np.mean(values))


def self_tied_codes(data, n, seed):
    """Codes from a pool of 6 (every item has duplicates before and after it)."""
    q, ql, _, _ = data.tie_heavy_codes(32, n, 1, seed=seed)
    return q, ql


@pytest.mark.parametrize("nq", [40, 17])
def test_codes_every_metric_equals_brute_force_without_the_query(ref, data, nq) -> None:
    db, dl = self_tied_codes(data, 40, seed=4)
    q, ql = db[:nq], dl[:nq]
    rep = retrieval_report(
        q, ql, db, dl, map_k=7, precision_k=5, knn_k=3, radius=2, leave_one_out=True
    )
    n = len(db)

    def one(fn):
        return per_query(fn, db, dl, nq)

    assert rep.map_all == pytest.approx(
        one(lambda a, b, c, d: ref.mean_ap(a, b, c, d, "hamming")), abs=1e-12
    )
    assert rep.map_at_k == pytest.approx(
        one(lambda a, b, c, d: ref.mean_ap(a, b, c, d, "hamming", 7)), abs=1e-12
    )
    assert rep.precision_at_k == pytest.approx(
        one(lambda a, b, c, d: ref.precision_at_k(a, b, c, d, "hamming", 5)), abs=1e-12
    )
    assert rep.knn_accuracy == pytest.approx(
        one(lambda a, b, c, d: ref.knn_accuracy(a, b, c, d, "hamming", 3)), abs=1e-12
    )
    assert rep.precision_hamming == pytest.approx(
        one(lambda a, b, c, d: ref.radius_precision_recall(a, b, c, d, 2)[0]), abs=1e-12
    )
    # MAP@R and R-precision: R counts the relevant items other than the query itself
    assert rep.map_at_r == pytest.approx(
        one(lambda a, b, c, d: ref.map_at_r(a, b, c, d, "hamming")), abs=1e-12
    )
    assert rep.r_precision == pytest.approx(
        one(lambda a, b, c, d: ref.r_precision(a, b, c, d, "hamming")), abs=1e-12
    )
    assert rep.precision_at_1 == pytest.approx(
        one(lambda a, b, c, d: ref.precision_at_k(a, b, c, d, "hamming", 1)), abs=1e-12
    )
    assert rep.num_queries == nq and rep.num_database == n and rep.to_dict()["leave_one_out"]
    # the separate functions agree with the report
    assert rep.map_all == mean_average_precision(q, ql, db, dl, leave_one_out=True)
    assert rep.precision_at_k == precision_at_k(q, ql, db, dl, k=5, leave_one_out=True)
    assert rep.knn_accuracy == knn_accuracy(q, ql, db, dl, k=3, leave_one_out=True)
    assert rep.precision_hamming == precision_within_radius(q, ql, db, dl, leave_one_out=True)
    assert rep.map_at_r == map_at_r(q, ql, db, dl, leave_one_out=True)
    assert rep.r_precision == r_precision(q, ql, db, dl, leave_one_out=True)
    # min(R, k) divisor, and depths at the edge: k = n - 1 (the whole ranking) and k > n - 1
    for k in (n - 1, n + 5):
        want = one(lambda a, b, c, d, k=k: ref.mean_ap(a, b, c, d, "hamming", k, "min_r_k"))
        got = mean_average_precision(q, ql, db, dl, k=k, ap_divisor="min_r_k", leave_one_out=True)
        assert got == pytest.approx(want, abs=1e-12)
    # leaving the query out is not the same as ranking it (the test can fail)
    assert rep.map_all != mean_average_precision(q, ql, db, dl)


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
def test_embeddings_with_duplicates_equal_brute_force(ref, data, float_blocks, distance) -> None:
    _, _, db, dl = data.gaussian_with_duplicates(1, 45, 5, seed=6)
    db = db.astype(np.float32)
    rep = retrieval_report(
        db, dl, db, dl, distance=distance, map_k=6, precision_k=4, knn_k=3, leave_one_out=True
    )

    def one(fn):
        return per_query(fn, db, dl, len(db))

    assert rep.map_all == pytest.approx(
        one(lambda a, b, c, d: ref.mean_ap(a, b, c, d, distance)), abs=1e-12
    )
    assert rep.map_at_k == pytest.approx(
        one(lambda a, b, c, d: ref.mean_ap(a, b, c, d, distance, 6)), abs=1e-12
    )
    assert rep.precision_at_k == pytest.approx(
        one(lambda a, b, c, d: ref.precision_at_k(a, b, c, d, distance, 4)), abs=1e-12
    )
    assert rep.knn_accuracy == pytest.approx(
        one(lambda a, b, c, d: ref.knn_accuracy(a, b, c, d, distance, 3)), abs=1e-12
    )
    assert rep.map_at_r == pytest.approx(
        one(lambda a, b, c, d: ref.map_at_r(a, b, c, d, distance)), abs=1e-12
    )
    assert rep.r_precision == pytest.approx(
        one(lambda a, b, c, d: ref.r_precision(a, b, c, d, distance)), abs=1e-12
    )
    assert rep.precision_at_1 == pytest.approx(
        one(lambda a, b, c, d: ref.precision_at_k(a, b, c, d, distance, 1)), abs=1e-12
    )


def test_grid_embeddings_prefix_queries(ref, data, float_blocks) -> None:
    _, _, db, dl = data.grid_embeddings(1, 30, 2, seed=7)  # 2-d small integers: many ties
    got = mean_average_precision(db[:11], dl[:11], db, dl, distance="euclidean", leave_one_out=True)
    want = per_query(lambda a, b, c, d: ref.mean_ap(a, b, c, d, "euclidean"), db, dl, 11)
    assert got == pytest.approx(want, abs=1e-12)


def test_leave_one_out_argument_checks(data) -> None:
    db, dl = self_tied_codes(data, 10, seed=8)
    with pytest.raises(ValueError, match="query i must be database item i"):
        mean_average_precision(db[1:4], dl[1:4], db, dl, leave_one_out=True)
    other = dl.copy()
    other[0] = other[0] + 1
    with pytest.raises(ValueError, match="same label"):
        mean_average_precision(db, other, db, dl, leave_one_out=True)
    with pytest.raises(ValueError, match="only 10 database items"):
        mean_average_precision(np.concatenate([db, db]), np.concatenate([dl, dl]), db, dl,
                               leave_one_out=True)  # fmt: skip
    with pytest.raises(ValueError, match="at least 2 items"):
        r_precision(db[:1], dl[:1], db[:1], dl[:1], leave_one_out=True)
    with pytest.raises(ValueError, match="leave_one_out must be True or False"):
        map_at_r(db, dl, db, dl, leave_one_out=1)  # type: ignore[arg-type]
