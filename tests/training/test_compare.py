import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from deephash.training.compare import run_compare


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


def test_compare_runs_every_recipe_under_each_protocol(
    tmp_path: Path, tiny_config_values: dict
) -> None:
    unseen = {"protocol": "fashion-mnist-unseen", "protocol_options": {}, "p": 3}
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
