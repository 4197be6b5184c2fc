"""configs/study-seeds-cifar10.yaml end to end on a tiny CIFAR-10 in the genuine python-pickle
batch format, with random weights instead of ImageNet's (neither is available offline)."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import yaml

from deephash.training.baselines import BASELINE_KEYS, BASELINE_METHODS
from deephash.training.compare import load_study, run_compare
from deephash.training.config import load_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
STUDY = CONFIGS / "study-seeds-cifar10.yaml"


def write_tiny_cifar10(root: Path, per_batch: int = 12, n_test: int = 20) -> Path:
    """root/cifar-10-batches-py: data_batch_1..5 and test_batch, uint8 (n, 3072) channel-major
    rows, labels cycling over the 10 classes, each class a colour plus noise."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, (10, 3))
    for name, n in [*((f"data_batch_{i}", per_batch) for i in range(1, 6)), ("test_batch", n_test)]:
        labels = (np.arange(n) + rng.integers(0, 10)) % 10
        hwc = np.clip(
            colours[labels][:, None, None, :] + rng.integers(-40, 40, (n, 32, 32, 3)), 0, 255
        )
        data = hwc.astype(np.uint8).transpose(0, 3, 1, 2).reshape(n, -1)
        with (folder / name).open("wb") as f:
            pickle.dump({b"data": data, b"labels": labels.tolist(), b"batch_label": b"x"}, f)
    return root


def tiny_overrides(data_dir: Path) -> dict:
    return {
        "data_dir": str(data_dir),
        "weights": None,  # random initialisation: no ImageNet checkpoint offline
        "protocol_options": {"validation_size": 10},
        "device": "cpu",
        "epochs": 1,
        "batches_per_epoch": 2,
        "p": 2,
        "k": 2,
        "val_queries": 5,
        "val_database": 20,
        "map_k": 20,
        "precision_k": 5,
        "knn_k": 3,
        "tsne_samples": 0,
        "progress": False,
        "num_threads": 1,
    }


def test_every_recipe_of_the_folder_is_in_the_study_and_parses() -> None:
    recipes, options = load_study([STUDY])
    names = [name for name, _ in recipes]
    in_folder = sorted(p.stem for p in (CONFIGS / "seeds-cifar10").glob("*.yaml"))
    assert sorted(names) == in_folder and len(names) == 13
    for name, values in recipes:
        assert values["dataset"] == "cifar10" and values["protocol"] == "cifar10-s2"
        assert values["weights"] == "imagenet"
        if values.get("method") is not None:
            assert values["method"] in BASELINE_METHODS and set(values) <= BASELINE_KEYS
            continue
        cfg = load_config(None, **values)
        assert cfg.backbone == "resnet18"
        if name.startswith("triplet"):
            assert cfg.loss == "triplet-margin" and cfg.loss_options["margin"] in (1.0, 2.0)
        else:
            assert cfg.loss == "dtsh" and cfg.epochs == 15 and cfg.loss_options["lam"] == 0.0
    assert {v["backbone"] for _, v in recipes if v.get("method")} == {
        "vgg16",
        "vgg19",
        "resnet18",
        "resnet50",
        "resnet101",
    }
    selections = {v["loss_options"]["miner"] for n, v in recipes if n.startswith("triplet")}
    assert selections == {"semi-hard", "hardest", "random-hard"}
    ref = options["reference"]
    assert ref["quoted"] == {"knn": [0.5726, 0.8506], "map": [0.4795, 0.8680]}
    assert set(ref["rows"]) == set(names)
    # no per-row number is invented: the issue gives none
    assert all(v == {"map": None, "knn": None} for v in ref["rows"].values())


def test_seeds_study_runs_end_to_end_on_a_tiny_cifar10(tmp_path: Path) -> None:
    data_dir = write_tiny_cifar10(tmp_path / "data")
    _, options = load_study([STUDY])
    subset = tmp_path / "subset.yaml"
    chosen = ["features-resnet18", "triplet-m1-semi-hard", "dtsh-alpha-ramp"]
    subset.write_text(
        yaml.safe_dump(
            {
                "seeds": [0],
                "reference": options["reference"],
                "recipes": [str(CONFIGS / "seeds-cifar10" / f"{n}.yaml") for n in chosen],
            }
        )
    )
    out = tmp_path / "out"
    result = run_compare([subset], out, overrides=tiny_overrides(data_dir))
    assert [r["name"] for r in result.rows] == chosen
    for name in chosen:
        m = json.loads((out / name / "seed0" / "metrics.json").read_text())
        assert m["num_queries"] == 20 and m["num_database"] == 60 and 0.0 <= m["map"] <= 1.0
    feat = json.loads((out / "features-resnet18" / "seed0" / "metrics.json").read_text())
    assert feat["weights"] == "random" and feat["feature_dim"] == 512
    dtsh = yaml.safe_load((out / "dtsh-alpha-ramp" / "seed0" / "config.yaml").read_text())
    assert dtsh["weights"] is None and dtsh["bits"] == 64
    history = json.loads((out / "dtsh-alpha-ramp" / "seed0" / "history.jsonl").read_text())
    assert history["alpha"] == 1.0  # epoch 1 of the doubling staircase
    table = (out / "compare.md").read_text()
    assert "| report mAP | report kNN |" in table
    assert table.count("| not given | not given |") == 3
    assert "mAP 0.4795 … 0.8680" in table and "kNN 0.5726 … 0.8506" in table
    saved = json.loads((out / "compare.json").read_text())
    assert all(r["report_map"] is None and r["report_knn"] is None for r in saved["rows"])
    assert saved["reference"]["quoted"]["map"] == [0.4795, 0.868]


def test_compare_prints_given_reference_numbers(tmp_path: Path, tiny_fmnist: Path) -> None:
    recipe = tmp_path / "feat.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "method": "features",
                "dataset": "fashion-mnist",
                "data_dir": str(tiny_fmnist),
                "protocol_options": {"validation_size": 50},
            }
        )
    )
    ref = tmp_path / "ref.yaml"
    ref.write_text(yaml.safe_dump({"source": "a paper", "rows": {"feat": {"map": 0.25}}}))
    result = run_compare([recipe], tmp_path / "out", reference=ref)
    assert result.rows[0]["report_map"] == 0.25 and result.rows[0]["report_knn"] is None
    assert "| 0.2500 | not given |" in result.table and "Report: a paper." in result.table


@pytest.mark.slow
def test_the_whole_seeds_study_runs_on_a_tiny_cifar10(tmp_path: Path) -> None:
    data_dir = write_tiny_cifar10(tmp_path / "data")
    result = run_compare([STUDY], tmp_path / "out", overrides=tiny_overrides(data_dir))
    assert len(result.rows) == 13 and all(0.0 <= r["map_mean"] <= 1.0 for r in result.rows)
