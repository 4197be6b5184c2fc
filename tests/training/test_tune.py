import json
from pathlib import Path

import pytest
import yaml

from deephash.training.config import TrainConfig
from deephash.training.tune import run_tune, set_dotted


def test_set_dotted() -> None:
    d: dict = {"loss_options": {"a": 1}}
    set_dotted(d, "loss_options.margin", 0.3)
    set_dotted(d, "lr", 0.1)
    assert d == {"loss_options": {"a": 1, "margin": 0.3}, "lr": 0.1}


def test_tune_selects_on_validation_only(tmp_path: Path, tiny_config_values: dict) -> None:
    base = TrainConfig.from_dict({**tiny_config_values, "loss": "triplet-margin", "epochs": 1})
    result = run_tune(base, {"loss_options.margin": [0.05, 0.5]}, tmp_path / "tune")
    trials = result.trials
    assert [t["params"]["loss_options.margin"] for t in trials] == [0.05, 0.5]
    # the winner is the trial with the best validation mAP, read back from its own history
    for t in trials:
        hist = [
            json.loads(x)
            for x in (tmp_path / "tune" / t["trial"] / "history.jsonl").read_text().splitlines()
        ]
        assert t["best_val_map"] == max(h["val_map"] for h in hist)
    assert result.best_val_map == max(t["best_val_map"] for t in trials)
    # only the selected trial was evaluated on query vs database
    evaluated = [
        t["trial"] for t in trials if (tmp_path / "tune" / t["trial"] / "metrics.json").exists()
    ]
    assert evaluated == [result.best_run.name]
    assert "map" in result.test_metrics
    assert (tmp_path / "tune" / "tune.md").read_text().count("(selected)") == 1


def test_tune_refuses_a_final_fit_on_validation(tmp_path: Path, tiny_config_values: dict) -> None:
    base = TrainConfig.from_dict({**tiny_config_values, "fit_validation": True})
    with pytest.raises(ValueError, match="tune selects on the validation split"):
        run_tune(base, {"lr": [0.001]}, tmp_path / "tune")


def _unseen_values(values: dict) -> dict:
    """fashion-mnist-unseen on the tiny data: 3 training classes, 2 held out for validation."""
    return {**values, "protocol": "fashion-mnist-unseen", "protocol_options": {}, "p": 3}


def test_tune_on_an_unseen_protocol_selects_on_held_out_classes(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    from deephash.training import recipe

    base = TrainConfig.from_dict({**_unseen_values(tiny_config_values), "epochs": 1})
    result = run_tune(base, {"lr": [0.001, 0.003]}, tmp_path / "tune")
    saved = json.loads((tmp_path / "tune" / "tune.json").read_text())
    assert "held out of training" in saved["selected_on"]
    assert result.test_metrics["protocol"] == "fashion-mnist-unseen"
    data = recipe.load_data(base)
    held_out = set(data.protocol.validation_classes or [])
    assert held_out and not held_out & set(data.train.labels.tolist())


def test_tune_cross_validates_over_class_disjoint_folds(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    from deephash.training.recipe import load_protocol

    # fold 1 holds out 3 of the 5 training classes, leaving 2 to train on: p = 2
    base = TrainConfig.from_dict({**_unseen_values(tiny_config_values), "epochs": 1, "p": 2})
    out = tmp_path / "cv"
    result = run_tune(base, {"lr": [0.003]}, out, cross_validate=True)
    trial = out / "trial-00"
    folds = [trial / "fold-0", trial / "fold-1"]  # fashion-mnist-unseen: 2 folds of classes 0-4
    held = []
    for f, run in enumerate(folds):
        saved = yaml.safe_load((run / "config.yaml").read_text())
        assert saved["protocol_options"] == {"validation_fold": f}
        hist = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
        assert result.trials[0]["fold_val_maps"][f] == max(h["val_map"] for h in hist)
        protocol, _ = load_protocol(TrainConfig.from_dict(saved))
        held.append(set(protocol.validation_classes or []))
    assert held[0] | held[1] == {0, 1, 2, 3, 4} and not held[0] & held[1]
    maps = result.trials[0]["fold_val_maps"]
    assert result.best_val_map == pytest.approx(sum(maps) / 2)
    tests = [json.loads((run / "metrics.json").read_text())["map"] for run in folds]
    assert result.test_metrics["map"] == pytest.approx(sum(tests) / 2)
    assert len(result.test_metrics["folds"]) == 2


def test_tune_refuses_settings_that_leak_test_classes_before_training(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    from deephash.training.recipe import load_data

    unseen = _unseen_values(tiny_config_values)
    base = TrainConfig.from_dict({**unseen, "epochs": 1})
    # validation on a slice of the training classes' images: selects for seen classes
    with pytest.raises(ValueError, match="not held out of training"):
        run_tune(base, {"protocol_options.validation_size": [None, 30]}, tmp_path / "a")
    assert not (tmp_path / "a" / "trial-00").exists()  # refused before the first trial trained
    # a frozen split whose training images include a test class
    d = load_data(base).protocol.to_dict()
    d.update(train_classes=None, test_classes=None, validation_classes=None)
    d["splits"]["train"] = sorted([*d["splits"]["train"], d["splits"]["database"].pop(0)])
    d["sizes"] = {k: len(v) for k, v in d["splits"].items()}
    frozen = tmp_path / "leaky.json"
    frozen.write_text(json.dumps(d))
    leaky = TrainConfig.from_dict({**unseen, "protocol": str(frozen), "epochs": 1})
    with pytest.raises(ValueError, match="appear in the training or validation"):
        run_tune(leaky, {"lr": [0.001]}, tmp_path / "b")
    # cross-validation needs class-disjoint folds
    standard = TrainConfig.from_dict({**tiny_config_values, "epochs": 1})
    with pytest.raises(ValueError, match="needs class-disjoint validation folds"):
        run_tune(standard, {"lr": [0.001]}, tmp_path / "c", cross_validate=True)
