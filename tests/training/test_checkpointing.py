import math
from pathlib import Path

import pytest

from deephash.training.checkpointing import RunProgress, check_run_folder


def test_a_new_run_refuses_a_folder_that_holds_one(tmp_path: Path) -> None:
    check_run_folder(tmp_path / "new", resume=False)  # nothing there yet: fine
    (tmp_path / "last.pt").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="pass --resume"):
        check_run_folder(tmp_path, resume=False)
    check_run_folder(tmp_path, resume=True)


def test_resume_needs_last_pt(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"cannot resume: .*last\.pt does not exist"):
        check_run_folder(tmp_path, resume=True)


def test_progress_counts_epochs_and_keeps_the_best_validation() -> None:
    progress = RunProgress(0, -math.inf, 1.5, [])
    flags = [
        progress.add(record)
        for record in (
            {"epoch": 1, "val_map": 0.4},
            {"epoch": 2},  # an epoch without validation never improves
            {"epoch": 3, "val_map": 0.3},
            {"epoch": 4, "val_map": 0.5},
        )
    ]
    assert flags == [True, False, False, True]
    assert progress.epoch == 4 and progress.best_val == 0.5 and len(progress.history) == 4
