import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import deephash.cli.data as cli_data


def run(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="deephash")
    cli_data.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("cifar10-s1", "fashion-mnist", "cub200", "dogs", "folder"):
        assert name in out


def test_protocol_for_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for c in ("a", "b"):
        (tmp_path / "img" / c).mkdir(parents=True)
        for i in range(10):
            Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(tmp_path / "img" / c / f"{i}.png")
    out = tmp_path / "p.json"
    assert (
        run(
            [
                "data",
                "protocol",
                "folder",
                "--seed",
                "3",
                "--data-dir",
                str(tmp_path / "img"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    d = json.loads(out.read_text())
    assert d["seed"] == 3 and d["dataset"] == "folder" and d["sizes"]["query"] == 2
    assert "query 2" in capsys.readouterr().out


def test_download_unknown_dataset(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be downloaded"):
        run(["data", "download", "folder", "--data-dir", str(tmp_path)])


def test_protocol_unseen_leave_one_out(tmp_path: Path, tiny_fmnist: Path) -> None:
    out = tmp_path / "p.json"
    args = ["data", "protocol", "fashion-mnist-unseen", "--data-dir", str(tiny_fmnist)]
    assert (
        run([*args, "--retrieval", "leave-one-out", "--validation-fold", "1", "--out", str(out)])
        == 0
    )
    d = json.loads(out.read_text())
    assert d["options"]["retrieval"] == "leave-one-out" and d["options"]["validation_fold"] == 1
    assert d["splits"]["query"] == d["splits"]["database"] and d["sizes"]["query"] == 250
    assert len(d["validation_classes"]) == 3  # fold 1 of 2 over classes 0-4
