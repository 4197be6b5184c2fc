from dataclasses import replace
from pathlib import Path

import pytest

from deephash.data import locations
from deephash.data.locations import (
    DatasetNotFoundError,
    download_dir,
    find_dataset,
    missing_files,
    search_paths,
    user_cache_dir,
)

STEMS = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]


def fill(folder: Path, gz: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for s in STEMS:
        (folder / (s + (".gz" if gz else ""))).write_bytes(b"x")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("DEEPHASH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


def test_search_order(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = clean_env
    monkeypatch.setenv("DEEPHASH_DATA", str(tmp / "env"))
    paths = search_paths("kmnist", tmp / "explicit")
    assert paths[0] == tmp / "explicit" / "kmnist"
    assert (
        paths.index(tmp / "explicit")
        < paths.index(tmp / "env" / "kmnist")
        < paths.index(tmp / "xdg" / "deephash" / "kmnist")
    )
    assert paths[-1] == Path("/usr/share/datasets/kmnist")
    assert user_cache_dir() == tmp / "xdg" / "deephash"


def test_explicit_dir_wins_over_env(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(clean_env / "env" / "mnist")
    fill(clean_env / "mine", gz=False)  # raw files, in the folder itself
    monkeypatch.setenv("DEEPHASH_DATA", str(clean_env / "env"))
    assert find_dataset("mnist", clean_env / "mine") == clean_env / "mine"
    assert find_dataset("mnist") == clean_env / "env" / "mnist"
    fill(clean_env / "xdg" / "deephash" / "mnist")
    monkeypatch.delenv("DEEPHASH_DATA")
    assert find_dataset("mnist") == clean_env / "xdg" / "deephash" / "mnist"


def test_not_found_message_names_every_place(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    partial = clean_env / "d" / "mnist"
    fill(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DatasetNotFoundError) as info:
        find_dataset("mnist", clean_env / "d")
    msg = str(info.value)
    for p in search_paths("mnist", clean_env / "d"):
        assert str(p) in msg
    assert "t10k-labels-idx1-ubyte" in msg and "deephash data download mnist" in msg
    assert "ossci-datasets" in msg or "yann.lecun" in msg
    # Hide the real system copy so the fashion-mnist hint shows.
    src = locations.SOURCES["fashion-mnist"]
    monkeypatch.setitem(
        locations.SOURCES, "fashion-mnist", replace(src, system_paths=(str(clean_env / "none"),))
    )
    with pytest.raises(DatasetNotFoundError, match="apt install dataset-fashion-mnist"):
        find_dataset("fashion-mnist", clean_env / "d")


def test_missing_files_and_download_dir(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(missing_files("cifar10", clean_env)) == 6
    assert download_dir("cifar10") == clean_env / "xdg" / "deephash" / "cifar10"
    monkeypatch.setenv("DEEPHASH_DATA", str(clean_env / "env"))
    assert download_dir("cifar10") == clean_env / "env" / "cifar10"
    assert download_dir("cifar10", clean_env / "x") == clean_env / "x" / "cifar10"
    with pytest.raises(ValueError, match="unknown dataset 'nope'"):
        search_paths("nope")
