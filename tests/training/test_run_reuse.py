import json
from pathlib import Path

from deephash.training.run_reuse import read_history


def test_read_history_is_one_record_per_line(tmp_path: Path) -> None:
    assert read_history(tmp_path) == []  # no history.jsonl yet
    records = [{"epoch": 1, "val_map": 0.25}, {"epoch": 2, "loss": 0.5}]
    (tmp_path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + "\n")
    assert read_history(tmp_path) == records
