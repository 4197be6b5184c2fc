from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deephash.data.cub import index_cub200, read_cub200


def make_cub(root: Path, split: list[int], classes: list[int]) -> list[np.ndarray]:
    base = root / "CUB_200_2011"
    rng = np.random.default_rng(0)
    arrays, lines = [], []
    for i, c in enumerate(classes, 1):
        rel = f"{c:03d}.Bird_{c}/img_{i}.png"
        arr = rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)
        (base / "images" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(base / "images" / rel)
        arrays.append(arr)
        lines.append(f"{i} {rel}")
    (base / "images.txt").write_text("\n".join(lines) + "\n")
    (base / "image_class_labels.txt").write_text(
        "".join(f"{i} {c}\n" for i, c in enumerate(classes, 1))
    )
    (base / "train_test_split.txt").write_text(
        "".join(f"{i} {s}\n" for i, s in enumerate(split, 1))
    )
    return arrays


def test_cub_round_trip(tmp_path: Path) -> None:
    split, classes = [1, 0, 1, 0, 1], [1, 1, 2, 2, 3]
    arrays = make_cub(tmp_path, split, classes)
    pooled = read_cub200(tmp_path, 10)
    order = [0, 2, 4, 1, 3]  # official train images first, then test, each in id order
    np.testing.assert_array_equal(pooled.data.images, np.stack([arrays[i] for i in order]))
    assert pooled.data.labels.tolist() == [classes[i] - 1 for i in order]
    assert pooled.is_test.tolist() == [False, False, False, True, True]
    assert pooled.data.class_names == ["001.Bird_1", "002.Bird_2", "003.Bird_3"]


def test_cub_inconsistent_lists(tmp_path: Path) -> None:
    make_cub(tmp_path, [1, 0], [1, 2])
    (tmp_path / "CUB_200_2011" / "train_test_split.txt").write_text("1 1\n")
    with pytest.raises(ValueError, match="same image ids"):
        index_cub200(tmp_path)
    (tmp_path / "CUB_200_2011" / "train_test_split.txt").write_text("1 1\n2 7\n")
    with pytest.raises(ValueError, match="0 \\(test\\) or 1"):
        index_cub200(tmp_path)
    (tmp_path / "CUB_200_2011" / "images.txt").write_text("one two\n")
    with pytest.raises(ValueError, match="expected '<id> <value>'"):
        index_cub200(tmp_path)
