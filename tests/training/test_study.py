import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from deephash.training.config import TrainConfig
from deephash.training.study import run_compare, run_tune, set_dotted


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


def test_compare_writes_table_and_plot_and_reuses_runs(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text(yaml.safe_dump({**tiny_config_values, "loss": "batch-hard", "epochs": 1}))
    b.write_text(
        yaml.safe_dump(
            {**tiny_config_values, "loss": "cross-entropy", "sampling": "random", "epochs": 1}
        )
    )
    out = tmp_path / "cmp"
    result = run_compare([a, b], out, seeds=[0, 1], target_map=0.0)
    assert [r["name"] for r in result.rows] == ["a", "b"]
    for r in result.rows:
        maps = [
            json.loads((out / r["name"] / f"seed{s}" / "metrics.json").read_text())["map"]
            for s in (0, 1)
        ]
        assert abs(r["map_mean"] - sum(maps) / 2) < 1e-12
        assert r["reached_target"] == "2/2"
    table = (out / "compare.md").read_text()
    assert "| a |" in table and "±" in table
    assert "distinct codes" not in table  # float recipes have no code usage
    assert (out / "val_map_vs_time.png").is_file()
    mtime = (out / "a" / "seed0" / "metrics.json").stat().st_mtime
    run_compare([a, b], out, seeds=[0, 1])
    assert (out / "a" / "seed0" / "metrics.json").stat().st_mtime == mtime  # reused, not retrained


def test_study_file_with_recipes(tmp_path: Path, tiny_config_values: dict) -> None:
    (tmp_path / "r1.yaml").write_text(yaml.safe_dump({**tiny_config_values, "epochs": 1}))
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "seeds": [3],
                "recipes": [
                    "r1.yaml",
                    {"name": "inline", **tiny_config_values, "epochs": 1, "loss": "batch-all"},
                ],
            }
        )
    )
    result = run_compare([study], tmp_path / "out")
    assert [r["name"] for r in result.rows] == ["r1", "inline"]
    assert (tmp_path / "out" / "inline" / "seed3" / "metrics.json").is_file()


def test_compare_with_feature_and_classical_hashing_baselines(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    from deephash.codes import pack_bits, sign
    from deephash.hashing import ITQ
    from deephash.metrics import mean_average_precision

    data = {k: tiny_config_values[k] for k in ("dataset", "data_dir", "protocol_options")}
    recipes = [
        {"name": "ce", **tiny_config_values, "loss": "cross-entropy", "sampling": "random"},
        {"name": "feat", "method": "features", "weights": "@ce", **data},
    ] + [
        {"name": f"{m}-{b}", "method": m, "bits": b, "weights": "@ce", **data}
        for m in ("lsh", "itq")
        for b in (8, 16)
    ]
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"seeds": [0], "recipes": recipes}))
    out = tmp_path / "out"
    result = run_compare([study], out)
    assert [r["name"] for r in result.rows] == ["ce", "feat", "lsh-8", "lsh-16", "itq-8", "itq-16"]
    assert (out / "map_vs_bits.png").is_file()
    # the ITQ row is reproducible from the features it was fitted on
    f = np.load(out / "feat" / "seed0" / "features.npz")
    itq = ITQ(16, seed=0).fit(f["database"])
    ref = mean_average_precision(
        pack_bits(sign(itq.project(f["query"]))),
        f["query_labels"],
        pack_bits(sign(itq.project(f["database"]))),
        f["database_labels"],
    )
    row = next(r for r in result.rows if r["name"] == "itq-16")
    assert row["map_mean"] == ref
    # the code-usage column: distinct database codes, counted from the ITQ codes themselves
    db_codes = pack_bits(sign(itq.project(f["database"])))
    distinct, counts = np.unique(db_codes, axis=0, return_counts=True)
    assert row["distinct_codes"] == len(distinct)
    lines = (out / "compare.md").read_text().splitlines()
    itq_line = next(line for line in lines if line.startswith("| itq-16 |"))
    share = 100 * counts.max() / len(db_codes)
    assert f"| {len(distinct):,} / {len(db_codes):,} ({share:.1f}%) |" in itq_line
    assert next(line for line in lines if line.startswith("| feat |")).endswith("| - |")


def test_compare_refuses_to_mix_a_different_recipe_into_a_finished_run(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    a = tmp_path / "a.yaml"
    a.write_text(yaml.safe_dump({**tiny_config_values, "loss": "batch-hard", "epochs": 1}))
    out = tmp_path / "cmp"
    run_compare([a], out, seeds=[0])
    before = (out / "a" / "seed0" / "last.pt").read_bytes()
    with pytest.raises(ValueError, match=r"different recipe.*epochs: 1 -> 2"):
        run_compare([a], out, seeds=[0], overrides={"epochs": 2})
    assert (out / "a" / "seed0" / "last.pt").read_bytes() == before  # untouched


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


def test_compare_runs_every_recipe_under_each_protocol(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    unseen = _unseen_values({})
    study = tmp_path / "study.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "seeds": [0],
                "protocols": {"standard": {}, "unseen": unseen},
                "recipes": [
                    {"name": "bh", **tiny_config_values, "epochs": 1, "loss": "batch-hard"},
                    {"name": "ce", **tiny_config_values, "epochs": 1, "loss": "cross-entropy"},
                ],
            }
        )
    )
    result = run_compare([study], tmp_path / "out")
    assert [(r["recipe"], r["protocol"]) for r in result.rows] == [
        ("bh", "standard"),
        ("ce", "standard"),
        ("bh", "unseen"),
        ("ce", "unseen"),
    ]
    for r in result.rows:
        metrics = json.loads(
            (tmp_path / "out" / r["protocol"] / r["recipe"] / "seed0" / "metrics.json").read_text()
        )
        want = "fashion-mnist-unseen" if r["protocol"] == "unseen" else "fashion-mnist"
        assert metrics["protocol"] == want
        assert r["map_mean"] == metrics["map"] and r["map_at_r_mean"] == metrics["map_at_r"]
    table = (tmp_path / "out" / "compare.md").read_text()
    assert "| recipe | mAP@all standard | MAP@R standard | mAP@all unseen | MAP@R unseen |" in table
    bh = [r for r in result.rows if r["recipe"] == "bh"]
    assert f"| bh | {bh[0]['map_mean']:.4f} ± 0.0000 |" in table
    assert (tmp_path / "out" / "map_by_protocol.png").stat().st_size > 0
    with pytest.raises(ValueError, match="'protocols' must map names"):
        study.write_text(yaml.safe_dump({"protocols": [], "recipes": []}))
        run_compare([study], tmp_path / "bad")


def test_compare_only_runs_the_named_recipes(tmp_path: Path, tiny_config_values: dict) -> None:
    data = {k: tiny_config_values[k] for k in ("dataset", "data_dir", "protocol_options")}
    recipes = [
        {"name": "feat", "method": "features", **data},
        {"name": "pixels", "method": "features", "backbone": "pixels", **data},
    ]
    study = tmp_path / "study.yaml"
    study.write_text(yaml.safe_dump({"seeds": [0], "recipes": recipes}))
    result = run_compare([study], tmp_path / "out", only=["pixels"])
    assert [r["name"] for r in result.rows] == ["pixels"]
    assert not (tmp_path / "out" / "feat").exists()
    with pytest.raises(ValueError, match="names no recipe"):
        run_compare([study], tmp_path / "out", only=["nope"])
