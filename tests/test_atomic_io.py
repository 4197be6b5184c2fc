from pathlib import Path

import pytest
import torch

from deephash.atomic_io import atomic_write_text, load_checkpoint, save_checkpoint


def test_round_trip_and_atomic_replace(tmp_path: Path) -> None:
    p = tmp_path / "c.pt"
    save_checkpoint(p, {"model": {"w": torch.ones(2)}, "epoch": 1})
    save_checkpoint(p, {"model": {"w": torch.zeros(2)}, "epoch": 2})
    state = load_checkpoint(p)
    assert state["epoch"] == 2 and torch.equal(state["model"]["w"], torch.zeros(2))
    assert sorted(x.name for x in tmp_path.iterdir()) == ["c.pt"]  # no temp files left


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    p = tmp_path / "h.txt"
    atomic_write_text(p, "old")

    class Boom:
        def __reduce__(self) -> tuple:
            raise RuntimeError("cannot pickle")

    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path / "h.txt", {"model": Boom()})
    assert p.read_text() == "old"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["h.txt"]


def test_truncated_or_foreign_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    p = tmp_path / "c.pt"
    save_checkpoint(p, {"model": {"w": torch.ones(100)}})
    p.write_bytes(p.read_bytes()[:50])
    with pytest.raises(ValueError, match="truncated"):
        load_checkpoint(p)
    q = tmp_path / "other.pt"
    torch.save({"weights": 1}, q)
    with pytest.raises(ValueError, match="not a deephash checkpoint"):
        load_checkpoint(q)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
