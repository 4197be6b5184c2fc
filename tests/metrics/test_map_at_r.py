import numpy as np
import pytest

from deephash.codes import pack_bits
from deephash.metrics import map_at_r, precision_at_k, r_precision, retrieval_report

BITS = [8, 12, 48, 64, 100]


def test_hand_computed_example_codes_and_floats(float_blocks) -> None:
    # distances to the query 0b0000: 0, 1, 1, 2, 4 -> ranking [0, 1, 2, 3, 4] (ties by order)
    q = np.array([[0], [0]], dtype=np.uint8)
    db = np.array([[0b0000], [0b0001], [0b0010], [0b0011], [0b1111]], dtype=np.uint8)
    dl = np.array([1, 0, 1, 0, 1])
    # query 0 (label 1): R = 3, relevant at positions 1, 3, 5 -> MAP@R = (1/3)(1/1 + 2/3),
    #   R-precision = 2/3; query 1 (label 0): R = 2, relevant at 2, 4 -> MAP@R = (1/2)(1/2),
    #   R-precision = 1/2
    want_map = ((1 + 2 / 3) / 3 + (1 / 2) / 2) / 2
    want_rp = (2 / 3 + 1 / 2) / 2
    # the same ranking from 1-d float embeddings: squared distances 0, 1, 1, 4, 25
    fq = np.zeros((2, 1), dtype=np.float32)
    fdb = np.array([[0.0], [1.0], [-1.0], [2.0], [5.0]], dtype=np.float32)
    for args, distance in (((q, [1, 0], db, dl), "hamming"), ((fq, [1, 0], fdb, dl), "euclidean")):
        assert map_at_r(*args, distance=distance) == pytest.approx(want_map, abs=1e-15)
        assert r_precision(*args, distance=distance) == pytest.approx(want_rp, abs=1e-15)
        rep = retrieval_report(*args, distance=distance)
        assert rep.precision_at_1 == 0.5  # query 0's nearest is relevant, query 1's is not
        assert rep.map_at_r == map_at_r(*args, distance=distance)
    # Ties go by database order: swapping items 1 and 2 puts query 0's relevant items at 1, 2, 5
    order = [0, 2, 1, 3, 4]
    assert map_at_r(q[:1], [1], db[order], dl[order]) == pytest.approx(2 / 3, abs=1e-15)
    assert map_at_r(fq[:1], [1], fdb[order], dl[order], distance="euclidean") == pytest.approx(
        2 / 3, abs=1e-15
    )


def test_hand_computed_leave_one_out(float_blocks) -> None:
    # Every point queries the others. x = 0, 1, 5, 6, 7 with labels 0, 0, 1, 1, 0:
    # x=0: others 1 (+), 5, 6, 7 (+)      R = 2, relevant at 1, 4 -> AP@R 1/2, R-prec 1/2, P@1 1
    # x=1: others 0 (+), 5, 6, 7 (+)      same                     -> 1/2, 1/2, 1
    # x=5: others 6 (+), 7, 1, 0          R = 1, relevant at 1     -> 1, 1, 1
    # x=6: 5 (+) and 7 tie at 1, 5 comes first in the database     -> 1, 1, 1
    # x=7: others 6, 5, 1 (+), 0 (+)      R = 2, relevant at 3, 4  -> 0, 0, 0
    x = np.array([[0.0], [1.0], [5.0], [6.0], [7.0]], dtype=np.float32)
    y = np.array([0, 0, 1, 1, 0])
    kw = {"distance": "euclidean", "leave_one_out": True}
    assert map_at_r(x, y, x, y, **kw) == pytest.approx(0.6, abs=1e-15)
    assert r_precision(x, y, x, y, **kw) == pytest.approx(0.6, abs=1e-15)
    assert precision_at_k(x, y, x, y, k=1, **kw) == pytest.approx(0.8, abs=1e-15)
    assert retrieval_report(x, y, x, y, **kw).precision_at_1 == pytest.approx(0.8, abs=1e-15)
    # without leave-one-out each point finds itself first
    assert precision_at_k(x, y, x, y, k=1, distance="euclidean") == 1.0


@pytest.mark.parametrize("bits", BITS)
def test_hamming_matches_brute_force_with_ties(bits, ref, data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(bits, 12, 90, seed=bits)
    got_m, got_r = map_at_r(q, ql, db, dl), r_precision(q, ql, db, dl)
    assert got_m == pytest.approx(ref.map_at_r(q, ql, db, dl, "hamming"), abs=1e-12)
    assert got_r == pytest.approx(ref.r_precision(q, ql, db, dl, "hamming"), abs=1e-12)
    assert 0 < got_m < got_r < 1  # the data is neither trivial nor hopeless
    # leave-one-out on the database itself
    for fn, want in ((map_at_r, ref.map_at_r), (r_precision, ref.r_precision)):
        got = fn(db, dl, db, dl, leave_one_out=True)
        assert got == pytest.approx(want(db, dl, db, dl, "hamming", True), abs=1e-12)


@pytest.mark.parametrize("bits", [12, 100])
def test_hamming_spread_distances_and_chunking(bits, ref, data, monkeypatch) -> None:
    from deephash.metrics import _ranking

    _, _, db, dl = data.noisy_codes(bits, 1, 70, seed=4)
    want = ref.map_at_r(db, dl, db, dl, "hamming", True)
    assert map_at_r(db, dl, db, dl, leave_one_out=True) == pytest.approx(want, abs=1e-12)
    # the chunk offset of leave-one-out: query i of a later chunk still skips database item i
    monkeypatch.setattr(_ranking, "HAMMING_QUERY_CHUNK", 9)
    assert map_at_r(db, dl, db, dl, leave_one_out=True) == pytest.approx(want, abs=1e-12)
    assert r_precision(db, dl, db, dl, leave_one_out=True) == pytest.approx(
        ref.r_precision(db, dl, db, dl, "hamming", True), abs=1e-12
    )


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("leave_one_out", [False, True])
def test_float_matches_brute_force_with_ties(
    distance, leave_one_out, ref, data, float_blocks
) -> None:
    make = data.grid_embeddings if distance == "euclidean" else data.gaussian_with_duplicates
    q, ql, db, dl = make(10, 80, 3, seed=1)
    if leave_one_out:
        q, ql = db, dl
    for fn, want in ((map_at_r, ref.map_at_r), (r_precision, ref.r_precision)):
        got = fn(q, ql, db, dl, distance=distance, leave_one_out=leave_one_out)
        assert got == pytest.approx(want(q, ql, db, dl, distance, leave_one_out), abs=1e-12)


def test_multilabel_matches_brute_force(ref, data, float_blocks) -> None:
    rng = np.random.default_rng(5)
    q, _, db, _ = data.tie_heavy_codes(24, 10, 70, seed=5)
    ql = rng.random((10, 8)) < 0.3
    dl = rng.random((70, 8)) < 0.3
    assert map_at_r(q, ql, db, dl) == pytest.approx(
        ref.map_at_r(q, ql, db, dl, "hamming"), abs=1e-12
    )
    fq, _, fdb, _ = data.grid_embeddings(10, 70, 3, seed=5)
    assert r_precision(fq, ql, fdb, dl, distance="euclidean") == pytest.approx(
        ref.r_precision(fq, ql, fdb, dl, "euclidean"), abs=1e-12
    )


def test_queries_without_relevant_items_count_as_zero(float_blocks) -> None:
    db = pack_bits(np.array([[1, -1, 1, -1, 1, -1, 1, -1]] * 4))
    # query 0: label 5, all 4 relevant -> 1; query 1: label 9, R = 0 -> 0
    assert map_at_r(db[:2], [5, 9], db, [5, 5, 5, 5]) == pytest.approx(0.5)
    assert r_precision(db[:2], [5, 9], db, [5, 5, 5, 5]) == pytest.approx(0.5)
    x = np.eye(3)
    # leave-one-out: a class with a single member has R = 0 for its query
    assert map_at_r(x, [0, 0, 1], x, [0, 0, 1], distance="cosine", leave_one_out=True) == (
        pytest.approx(2 / 3)
    )


def _min_relative_gap(q, ql, db, dl, distance: str, leave_one_out: bool) -> float:
    """Smallest relative gap, in float64, between consecutive ranked items of different relevance:
    the only near-ties whose order changes these metrics."""
    a, b = q.astype(np.float64), db.astype(np.float64)
    if distance == "cosine":
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
    d = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    if leave_one_out:
        d[np.arange(len(a)), np.arange(len(a))] = np.inf
    order = np.argsort(d, axis=1, kind="stable")
    s = np.take_along_axis(d, order, axis=1)
    rel = dl[order] == ql[:, None]
    if leave_one_out:
        s, rel = s[:, :-1], rel[:, :-1]
    gaps = np.diff(s, axis=1) / np.maximum(s[:, 1:], 1e-12)
    return float(gaps[rel[:, 1:] != rel[:, :-1]].min())


@pytest.mark.parametrize("distance", ["euclidean", "cosine"])
@pytest.mark.parametrize("leave_one_out", [False, True])
def test_equals_pytorch_metric_learning(distance, leave_one_out, float_blocks) -> None:
    """pytorch-metric-learning's AccuracyCalculator on the same float data without distance ties
    (it ranks with faiss, which breaks ties its own way); leave-one-out is its
    ``ref_includes_query=True``. No class is missing from the database (PML drops such queries)."""
    acc = pytest.importorskip("pytorch_metric_learning.utils.accuracy_calculator")
    rng = np.random.default_rng(14)
    centres = rng.standard_normal((6, 8)) * 1.5
    dl = np.arange(120) % 6
    db = (centres[dl] + rng.standard_normal((120, 8))).astype(np.float32)
    ql = rng.integers(0, 6, 40)
    q = (centres[ql] + rng.standard_normal((40, 8))).astype(np.float32)
    if leave_one_out:
        q, ql = db, dl
    # far above float32 rounding of either side's distances: both rank the data alike
    assert _min_relative_gap(q, ql, db, dl, distance, leave_one_out) > 1e-5
    pq, pdb = q, db
    if distance == "cosine":  # PML's faiss k-NN ranks by L2: normalised rows rank as cosine
        pq = q / np.linalg.norm(q, axis=1, keepdims=True)
        pdb = db / np.linalg.norm(db, axis=1, keepdims=True)
    calc = acc.AccuracyCalculator(
        include=("mean_average_precision_at_r", "r_precision", "precision_at_1"),
        k="max_bin_count",
    )
    want = calc.get_accuracy(pq, ql, pdb, dl, ref_includes_query=leave_one_out)
    rep = retrieval_report(q, ql, db, dl, distance=distance, leave_one_out=leave_one_out)
    assert rep.map_at_r == pytest.approx(want["mean_average_precision_at_r"], abs=1e-12)
    assert rep.r_precision == pytest.approx(want["r_precision"], abs=1e-12)
    assert rep.precision_at_1 == pytest.approx(want["precision_at_1"], abs=1e-12)
    assert 0.2 < rep.map_at_r < 0.9  # informative data, not a trivial agreement


def test_argument_checks(data) -> None:
    q, ql, db, dl = data.tie_heavy_codes(16, 3, 5, seed=0)
    # leave_one_out's checks: tests/metrics/test_leave_one_out.py
    with pytest.raises(ValueError, match="distance"):
        map_at_r(q, ql, db, dl, distance="manhattan")
