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


def test_itq_on_a_run_that_retrieves_with_its_backbone_reuses_its_embeddings(
    tmp_path: Path, tiny_fmnist: Path, tiny_config_values: dict
) -> None:
    from deephash.training.config import TrainConfig
    from deephash.training.trainer import train

    cfg = {
        **tiny_config_values,
        "protocol": "fashion-mnist-unseen",
        "retrieve_from": "backbone",
        "p": 3,
    }
    cfg.pop("protocol_options")
    train(TrainConfig.from_dict(cfg), tmp_path / "run")
    common = _unseen(tiny_fmnist, weights=str(tmp_path / "run"), normalize=True)
    feat = run_baseline({"method": "features", **common}, tmp_path / "feat")
    assert feat["features_from"] == str(tmp_path / "run" / "embeddings.npz")
    # the same numbers as extracting the run's backbone features again
    from deephash.evaluation.features import extract_baseline

    again = extract_baseline(
        dataset="fashion-mnist",
        protocol="fashion-mnist-unseen",
        backbone="small-cnn",
        weights=str(tmp_path / "run"),
        out=tmp_path / "again",
        data_dir=str(tiny_fmnist),
        normalize=True,
        tsne_samples=0,
        progress=False,
        device="cpu",
    )
    assert abs(again["map"] - feat["map"]) < 1e-3
    e, a = np.load(tmp_path / "feat" / "features.npz"), np.load(tmp_path / "again" / "features.npz")
    np.testing.assert_allclose(e["database"], a["database"], atol=1e-4)
    # unnormalised features cannot come from normalised embeddings
    raw = run_baseline({"method": "features", **common, "normalize": False}, tmp_path / "raw")
    assert "features_from" not in raw
