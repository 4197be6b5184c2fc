from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deephash.data.dogs import index_stanford_dogs, read_stanford_dogs

BREEDS = ["n02085620-Chihuahua", "n02085782-Japanese_spaniel"]


def make_images(root: Path) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for b in BREEDS:
        for i in range(3):
            rel = f"{b}/{b.split('-')[0]}_{i}.jpg"
            arr = np.full(
                (20, 20, 3), rng.integers(0, 256, 3), np.uint8
            )  # flat colour survives JPEG
            (root / "Images" / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(root / "Images" / rel, quality=100)
            out[rel] = arr
    return out


def test_dogs_mat_lists(tmp_path: Path) -> None:
    savemat = pytest.importorskip("scipy.io").savemat
    images = make_images(tmp_path)
    rels = sorted(images)
    train, test = [rels[0], rels[3], rels[1]], [rels[2], rels[4]]

    def save(name: str, files: list[str]) -> None:
        cell = np.empty((len(files), 1), dtype=object)
        for i, f in enumerate(files):
            cell[i, 0] = f
        labels = np.array([[BREEDS.index(f.split("/")[0]) + 1] for f in files], dtype=np.uint8)
        savemat(tmp_path / name, {"file_list": cell, "labels": labels})

    save("train_list.mat", train)
    save("test_list.mat", test)
    pooled = read_stanford_dogs(tmp_path, 16)
    assert pooled.data.class_names == BREEDS
    assert pooled.data.labels.tolist() == [0, 1, 0, 0, 1]
    assert pooled.is_test.tolist() == [False, False, False, True, True]
    for got, rel in zip(pooled.data.images, train + test):
        assert np.abs(got.astype(int) - images[rel][0, 0]).max() <= 3


def test_dogs_text_lists(tmp_path: Path) -> None:
    images = make_images(tmp_path)
    rels = sorted(images)
    (tmp_path / "train_list.txt").write_text("\n".join(rels[:2] + rels[3:5]) + "\n")
    (tmp_path / "test_list.txt").write_text(f"{rels[2]}\n{rels[5]}\n")
    paths, labels, is_test, names = index_stanford_dogs(tmp_path)
    assert names == BREEDS and labels.tolist() == [0, 0, 1, 1, 0, 1]
    assert is_test.tolist() == [False] * 4 + [True] * 2
    assert all(p.is_file() for p in paths)


def test_dogs_bad_lists(tmp_path: Path) -> None:
    make_images(tmp_path)
    (tmp_path / "train_list.mat").write_bytes(b"MATLAB garbage")
    (tmp_path / "test_list.txt").write_text("x/y.jpg\n")
    with pytest.raises(ValueError, match="cannot read MATLAB list"):
        index_stanford_dogs(tmp_path)
    (tmp_path / "train_list.mat").unlink()
    with pytest.raises(FileNotFoundError, match="train_list"):
        index_stanford_dogs(tmp_path)
    (tmp_path / "train_list.txt").write_text("a/b.jpg 1 extra\n")
    with pytest.raises(ValueError, match="expected"):
        index_stanford_dogs(tmp_path)
