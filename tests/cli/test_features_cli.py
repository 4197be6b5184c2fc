import json
from pathlib import Path

import numpy as np
import pytest

from deephash.cli.main import main
from deephash.metrics import knn_accuracy, mean_average_precision


def test_features_baseline_writes_metrics_features_and_tsne(
    tiny_fmnist: Path, tmp_path: Path
) -> None:
    out = tmp_path / "feat"
    code = main(
        [
            "features",
            "--dataset",
            "fashion-mnist",
            "--data-dir",
            str(tiny_fmnist),
            "--backbone",
            "small-cnn",
            "--out",
            str(out),
            "--tsne-samples",
            "60",
            "--no-progress",
            "--device",
            "cpu",
            "--protocol-option",
            "validation_size=50",
        ]
    )
    assert code == 0
    m = json.loads((out / "metrics.json").read_text())
    for key in [
        "map",
        "knn_accuracy",
        "precision_at_k",
        "num_queries",
        "num_database",
        "protocol",
        "backbone",
    ]:
        assert key in m
    assert m["weights"] == "random" and m["num_queries"] == 100 and m["num_database"] == 400
    f = np.load(out / "features.npz")
    assert f["query"].shape == (100, m["feature_dim"])
    # the saved arrays reproduce the reported metrics independently
    assert m["map"] == pytest.approx(
        mean_average_precision(
            f["query"], f["query_labels"], f["database"], f["database_labels"], distance="euclidean"
        )
    )
    assert m["knn_accuracy"] == pytest.approx(
        knn_accuracy(
            f["query"],
            f["query_labels"],
            f["database"],
            f["database_labels"],
            k=10,
            distance="euclidean",
        )
    )
    assert (out / "tsne.png").stat().st_size > 1000


def test_features_from_a_run_folder(
    tiny_fmnist: Path, tmp_path: Path, tiny_config_values: dict
) -> None:
    import torch

    from deephash.data import load_protocol_data
    from deephash.training.config import TrainConfig
    from deephash.training.runs import load_run
    from deephash.training.trainer import train

    values = {**tiny_config_values, "loss": "cross-entropy", "sampling": "random", "epochs": 2}
    train(TrainConfig.from_dict(values), tmp_path / "run")
    out = tmp_path / "feat"
    args = [
        "features",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        str(tiny_fmnist),
        "--weights",
        str(tmp_path / "run"),
        "--out",
        str(out),
        "--tsne-samples",
        "0",
        "--no-progress",
        "--protocol-option",
        "validation_size=50",
    ]
    assert main(args) == 0
    assert json.loads((out / "metrics.json").read_text())["weights"] == str(tmp_path / "run")
    # the features are exactly those of the run's own trained backbone
    run = load_run(tmp_path / "run", device="cpu")
    images = load_protocol_data(
        "fashion-mnist", data_dir=tiny_fmnist, validation_size=50
    ).query.images
    with torch.no_grad():
        ref = run.net.features(run.preprocess(images)).numpy()
    np.testing.assert_allclose(np.load(out / "features.npz")["query"], ref, rtol=1e-4, atol=1e-5)
    # --normalize: the same features, L2-normalised (cosine retrieval)
    unit = tmp_path / "unit"
    assert (
        main(
            [
                *args[: args.index("--out")],
                "--out",
                str(unit),
                *args[args.index("--out") + 2 :],
                "--normalize",
            ]
        )
        == 0
    )
    want = ref / np.linalg.norm(ref, axis=1, keepdims=True)
    np.testing.assert_allclose(np.load(unit / "features.npz")["query"], want, rtol=1e-4, atol=1e-5)
    assert json.loads((unit / "metrics.json").read_text())["normalized"] is True


def test_missing_dataset_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DEEPHASH_DATA", str(tmp_path))
    assert (
        main(
            [
                "features",
                "--dataset",
                "cifar10",
                "--data-dir",
                str(tmp_path),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "--download" in err


def test_imagenet_efficientnet_features_with_options_and_the_feature_store(
    tiny_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from deephash.data import load_protocol_data
    from deephash.models import create_backbone
    from deephash.models.efficientnet_lite import INPUT_MEAN, INPUT_STD

    monkeypatch.setenv("DEEPHASH_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "feat"
    args = [
        "features",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        str(tiny_fmnist),
        "--backbone",
        "efficientnet-lite0",
        "--weights",
        "imagenet",
        "--backbone-option",
        "num_classes=0",
        "--backbone-option",
        "input_size=32",
        "--cache",
        "--tsne-samples",
        "0",
        "--no-progress",
        "--device",
        "cpu",
        "--protocol-option",
        "validation_size=50",
    ]
    assert main([*args, "--out", str(out)]) == 0
    assert len(list((tmp_path / "cache" / "features").glob("*.pt"))) == 1
    f = np.load(out / "features.npz")
    # the ImageNet network at 32 px on images scaled as its weights expect, computed by hand
    data = load_protocol_data("fashion-mnist", data_dir=tiny_fmnist, validation_size=50)
    x = torch.from_numpy(data.query.images[:8]).float()[:, None] / 255
    net = create_backbone(
        "efficientnet-lite0", weights="imagenet", in_channels=1, num_classes=0, input_size=32
    ).eval()
    with torch.no_grad():
        want = net((x - INPUT_MEAN) / INPUT_STD).numpy()
    np.testing.assert_allclose(f["query"][:8], want, rtol=1e-4, atol=1e-4)
    # a second run over the same images reads the store: the same features
    assert main([*args, "--out", str(tmp_path / "again")]) == 0
    g = np.load(tmp_path / "again" / "features.npz")
    np.testing.assert_array_equal(f["database"], g["database"])
