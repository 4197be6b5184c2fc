from pathlib import Path

import numpy as np

from deephash.metrics import mean_average_precision
from deephash.training.baselines import run_baseline


def _unseen(tiny_fmnist: Path, **extra: object) -> dict[str, object]:
    """Baseline values for small-cnn features on fashion-mnist-unseen, on the CPU, plus ``extra``."""
    return {
        "dataset": "fashion-mnist",
        "data_dir": str(tiny_fmnist),
        "protocol": "fashion-mnist-unseen",
        "backbone": "small-cnn",
        "device": "cpu",
        **extra,
    }


def test_feature_and_itq_baselines_on_a_leave_one_out_protocol(
    tmp_path: Path, tiny_fmnist: Path
) -> None:
    common = _unseen(tiny_fmnist, protocol_options={"retrieval": "leave-one-out"})
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


def test_normalized_features_are_unit_rows_and_itq_fits_them(
    tmp_path: Path, tiny_fmnist: Path
) -> None:
    from deephash.codes import pack_bits, sign
    from deephash.hashing import ITQ

    common = _unseen(tiny_fmnist, normalize=True)
    feat = run_baseline({"method": "features", **common}, tmp_path / "feat")
    raw = run_baseline({"method": "features", **common, "normalize": False}, tmp_path / "raw")
    f, r = np.load(tmp_path / "feat" / "features.npz"), np.load(tmp_path / "raw" / "features.npz")
    assert feat["normalized"] is True and raw["normalized"] is False
    np.testing.assert_allclose(np.linalg.norm(f["database"], axis=1), 1.0, rtol=1e-5)
    want = r["database"] / np.linalg.norm(r["database"], axis=1, keepdims=True)
    np.testing.assert_allclose(f["database"], want, rtol=1e-5, atol=1e-7)
    itq = run_baseline({"method": "itq", "bits": 16, **common}, tmp_path / "itq")
    model = ITQ(16, seed=0).fit(f["database"])
    ref = mean_average_precision(
        pack_bits(sign(model.project(f["query"]))),
        f["query_labels"],
        pack_bits(sign(model.project(f["database"]))),
        f["database_labels"],
    )
    assert itq["map"] == ref and itq["normalized"] is True
