from pathlib import Path

import numpy as np

from deephash.metrics import mean_average_precision
from deephash.training.baselines import run_baseline


def test_feature_and_itq_baselines_on_a_leave_one_out_protocol(
    tmp_path: Path, tiny_fmnist: Path
) -> None:
    common = {
        "dataset": "fashion-mnist",
        "data_dir": str(tiny_fmnist),
        "protocol": "fashion-mnist-unseen",
        "protocol_options": {"retrieval": "leave-one-out"},
        "backbone": "small-cnn",
        "device": "cpu",
    }
    feat = run_baseline({"method": "features", **common}, tmp_path / "feat")
    f = np.load(tmp_path / "feat" / "features.npz")
    np.testing.assert_array_equal(f["query"], f["database"])  # every test-class image, once
    assert feat["leave_one_out"] is True and feat["num_queries"] == feat["num_database"] == 250
    x, y = f["query"], f["query_labels"]
    assert feat["map"] == mean_average_precision(
        x, y, x, y, distance="euclidean", leave_one_out=True
    )

    itq = run_baseline({"method": "itq", "bits": 16, **common}, tmp_path / "itq")
    c = np.load(tmp_path / "itq" / "codes.npz")
    want = mean_average_precision(c["query"], y, c["database"], y, leave_one_out=True)
    assert itq["leave_one_out"] is True and itq["map"] == want  # the flag reached the metrics
