import numpy as np
import pytest

from deephash.codes import pack_bits, sign
from deephash.evaluation.evaluator import retrieval_metrics
from deephash.metrics import map_at_r, precision_at_k, r_precision


@pytest.mark.parametrize("leave_one_out", [False, True])
def test_metrics_json_has_the_musgrave_metrics_for_codes_and_floats(leave_one_out) -> None:
    rng = np.random.default_rng(0)
    db = rng.standard_normal((60, 16)).astype(np.float32)
    dl = rng.integers(0, 4, 60)
    q, ql = (db, dl) if leave_one_out else (db[:20] + 0.1, dl[:20])
    kw = {"leave_one_out": leave_one_out}
    out = retrieval_metrics(q, ql, db, dl, bits=12, map_k=30, precision_k=10, knn_k=3, **kw)
    qc, dc = pack_bits(sign(q[:, :12])), pack_bits(sign(db[:, :12]))
    assert out["map_at_r"] == map_at_r(qc, ql, dc, dl, **kw)
    assert out["r_precision"] == r_precision(qc, ql, dc, dl, **kw)
    assert out["precision_at_1"] == precision_at_k(qc, ql, dc, dl, k=1, **kw)
    f = out["float"]
    assert f["map_at_r"] == map_at_r(q, ql, db, dl, distance="euclidean", **kw)
    assert f["precision_at_1"] == precision_at_k(q, ql, db, dl, k=1, distance="euclidean", **kw)
    assert out["leave_one_out"] is leave_one_out
    assert f["leave_one_out"] is leave_one_out
