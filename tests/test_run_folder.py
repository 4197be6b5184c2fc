from pathlib import Path

from deephash.run_folder import RunFolder


def test_names_the_layout(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    expected = {
        "config": "config.yaml",
        "last": "last.pt",
        "best": "best.pt",
        "history": "history.jsonl",
        "metrics": "metrics.json",
        "features": "features.npz",
        "embeddings": "embeddings.npz",
        "codes": "codes.npz",
    }
    for attr, name in expected.items():
        assert getattr(run, attr) == tmp_path / name
    assert not any(tmp_path.iterdir()), "naming the files creates nothing"


def test_checkpoint_prefers_best(tmp_path: Path) -> None:
    run = RunFolder(str(tmp_path))
    assert run.checkpoint() == tmp_path / "last.pt"
    (tmp_path / "last.pt").write_bytes(b"x")
    assert run.checkpoint() == tmp_path / "last.pt"
    (tmp_path / "best.pt").write_bytes(b"y")
    assert run.checkpoint() == tmp_path / "best.pt"


def test_is_run(tmp_path: Path) -> None:
    run = RunFolder(tmp_path)
    assert not run.is_run()
    (tmp_path / "config.yaml").write_text("loss: triplet\n")
    assert run.is_run()
