from pathlib import Path

import pytest
import yaml

from deephash.cli.main import main


def test_tune_refuses_seen_class_validation_on_an_unseen_protocol_in_one_line(
    tmp_path: Path, tiny_config_values: dict, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    values = {**tiny_config_values, "protocol": "fashion-mnist-unseen", "protocol_options": {}}
    cfg.write_text(yaml.safe_dump({**values, "p": 3, "epochs": 1}))
    args = ["tune", "--config", str(cfg), "--param", "lr=0.001", "--out", str(tmp_path / "t")]
    code = main([*args, "--set", "protocol_options.validation_size=30"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "not held out of training" in err and "validation_folds" in err
    assert not (tmp_path / "t" / "trial-00").exists()
