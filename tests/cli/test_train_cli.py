import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from deephash.cli.main import main
from deephash.cli.train import parse_sets


def test_parse_sets() -> None:
    assert parse_sets(["epochs=3", "loss_options.alpha=4.5", "miner=null"]) == {
        "epochs": 3,
        "loss_options": {"alpha": 4.5},
        "miner": None,
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_sets(["epochs"])


@pytest.fixture()
def hash_run(tmp_path: Path, tiny_config_values: dict) -> Path:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**tiny_config_values, "loss": "dtsh", "bits": 16, "epochs": 1}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "run"), "--seed", "1"]) == 0
    return tmp_path / "run"


def test_train_evaluate_encode_round_trip(
    hash_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = yaml.safe_load((hash_run / "config.yaml").read_text())
    assert saved["seed"] == 1 and saved["bits"] == 16
    before = json.loads((hash_run / "metrics.json").read_text())
    assert main(["evaluate", str(hash_run), "--no-plots"]) == 0
    after = json.loads((hash_run / "metrics.json").read_text())
    assert after["map"] == pytest.approx(before["map"])
    assert after["train_seconds"] == before["train_seconds"]
    out = tmp_path / "q.npz"
    assert main(["encode", str(hash_run), "--split", "query", "--out", str(out)]) == 0
    z = np.load(out)
    assert z["codes"].dtype == np.uint8 and z["codes"].shape == (100, 2)
    db = tmp_path / "db.npz"
    assert main(["encode", str(hash_run), "--split", "database", "--out", str(db)]) == 0
    d = np.load(db)
    # anyone can recompute the headline metric from the encoded files
    from deephash.metrics import mean_average_precision

    assert mean_average_precision(
        z["codes"], z["labels"], d["codes"], d["labels"]
    ) == pytest.approx(before["map"])


def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--dataset", "fashion-mnist"]) == 1
    assert "--out RUN_DIR is required" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path)]) == 1
    assert "not a deephash run folder" in capsys.readouterr().err
    assert main(["train", "--out", str(tmp_path / "x"), "--bits", "4"]) == 1
    assert "bits must be in 8..256" in capsys.readouterr().err


def test_resume_flag(tmp_path: Path, tiny_config_values: dict) -> None:
    from deephash.training.config import TrainConfig
    from deephash.training.trainer import train

    cfg = TrainConfig.from_dict({**tiny_config_values, "epochs": 2})
    train(cfg, tmp_path / "r", stop_after_epoch=1)
    assert main(["train", "--resume", str(tmp_path / "r")]) == 0
    hist = (tmp_path / "r" / "history.jsonl").read_text().splitlines()
    assert len(hist) == 2 and (tmp_path / "r" / "metrics.json").exists()


def test_report_table(hash_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    m = json.loads((hash_run / "metrics.json").read_text())
    assert main(["report", str(hash_run)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("| run | bits | mAP@all")
    assert f"| {m['map']:.4f} |" in out[2] and "| 16 |" in out[2]
    # MAP@R, R-precision and P@1 (Musgrave et al. 2020) follow P@k
    head = [c.strip() for c in out[0].split("|")]
    row = [c.strip() for c in out[2].split("|")]
    for key, title in (
        ("map_at_r", "MAP@R"),
        ("r_precision", "R-prec."),
        ("precision_at_1", "P@1"),
    ):
        assert row[head.index(title)] == f"{m[key]:.4f}"
        assert m["float"][key] >= 0
    # code usage of the database codes, against the distinct sign patterns of the saved embeddings
    db = np.load(hash_run / "embeddings.npz")["database"]
    patterns, counts = np.unique(db > 0, axis=0, return_counts=True)
    usage = m["code_usage"]
    assert usage["distinct_codes"] == len(patterns) and usage["num_codes"] == len(db)
    assert usage["largest_bucket"] == counts.max()
    cell = f"{len(patterns):,} / {len(db):,} ({100 * counts.max() / len(db):.1f}%)"
    assert row[head.index("distinct codes (largest bucket)")] == cell


@pytest.mark.parametrize(
    "args",
    [
        ["--loss", "multi-similarity", "--miner", "multi-similarity"],
        ["--loss", "proxy-anchor", "--set", "loss_lr_scale=100"],
        ["--loss", "arcface", "--set", "loss_options.scale=16"],
        ["--loss", "csq", "--bits", "16"],
    ],
    ids=["multi-similarity", "proxy-anchor", "arcface", "csq"],
)
def test_new_losses_train_end_to_end(
    args: list[str], tmp_path: Path, tiny_config_values: dict
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**tiny_config_values, "epochs": 1}))
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), *args]) == 0
    m = json.loads((out / "metrics.json").read_text())
    hist = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert np.isfinite(hist[-1]["loss"]) and hist[-1]["loss"] > 0
    assert 0 < m["map"] <= 1 and 0 <= m["map_at_r"] <= 1
    assert ("precision_hamming2" in m) is ("--bits" in args)
