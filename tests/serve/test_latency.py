import numpy as np

from deephash.serve.latency import LatencyRecorder


def test_percentiles_over_the_window() -> None:
    rec = LatencyRecorder(window=100)
    assert rec.percentiles() == {"count": 0, "p50": None, "p95": None, "p99": None}
    values = np.random.default_rng(0).exponential(5.0, 250)
    for v in values:
        rec.record(float(v))
    p = rec.percentiles()
    ref = np.percentile(values[-100:], [50, 95, 99])  # only the last 100 count
    assert p["count"] == 250
    assert [p["p50"], p["p95"], p["p99"]] == [round(float(r), 3) for r in ref]
