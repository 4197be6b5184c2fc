from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deephash.data.image_folder import (
    decode_image,
    decode_images,
    list_image_folder,
    read_image_folder,
)


def save(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)


def test_decode_png_exact_when_no_resize(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    save(tmp_path / "a.png", arr)
    np.testing.assert_array_equal(decode_image(tmp_path / "a.png", 16), arr)


def test_center_crop_of_wide_image(tmp_path: Path) -> None:
    # 8 x 24 image whose columns hold their own index: short side 8 is kept, so the center crop
    # is columns 8..15, unchanged.
    arr = np.repeat(np.repeat(np.arange(24, dtype=np.uint8)[None, :, None], 8, 0), 3, 2) * 10
    save(tmp_path / "w.png", arr)
    np.testing.assert_array_equal(decode_image(tmp_path / "w.png", 8), arr[:, 8:16])


def test_resize_short_side_then_crop(tmp_path: Path) -> None:
    # A constant-colour 40 x 80 image stays constant after resize to short side 20 and crop.
    save(tmp_path / "c.png", np.full((40, 80, 3), (10, 120, 250), np.uint8))
    out = decode_image(tmp_path / "c.png", 16, resize_size=20)
    assert out.shape == (16, 16, 3)
    assert np.abs(out.astype(int) - [10, 120, 250]).max() <= 1


def test_grey_and_jpeg_inputs(tmp_path: Path) -> None:
    save(tmp_path / "g.png", np.full((30, 30), 77, np.uint8))
    assert decode_image(tmp_path / "g.png", 8).tolist() == np.full((8, 8, 3), 77).tolist()
    Image.fromarray(np.full((100, 60, 3), 128, np.uint8)).save(tmp_path / "j.jpg", quality=95)
    out = decode_image(tmp_path / "j.jpg", 64)
    assert out.shape == (64, 64, 3) and np.abs(out.astype(int) - 128).max() <= 3


def test_corrupt_image(tmp_path: Path) -> None:
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(ValueError, match="cannot decode image"):
        decode_image(tmp_path / "bad.jpg", 8)


def test_folder_round_trip_and_cache(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    root = tmp_path / "imgs"
    expected: dict[str, list[np.ndarray]] = {"zebra": [], "ant": []}
    for cls in expected:
        for i in range(3):
            arr = rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)
            save(root / cls / f"{i}.png", arr)
            expected[cls].append(arr)
    (root / "ant" / "notes.txt").write_text("ignored")
    (root / "empty").mkdir()
    paths, labels, names = list_image_folder(root)
    assert names == ["ant", "zebra"] and labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert [p.name for p in paths] == ["0.png", "1.png", "2.png"] * 2
    cache = tmp_path / "cache"
    pooled = read_image_folder(root, 12, cache_dir=cache)
    np.testing.assert_array_equal(pooled.data.images, np.stack(expected["ant"] + expected["zebra"]))
    assert not pooled.is_test.any()
    assert len(list(cache.glob("*.npy"))) == 1
    # The cache is used: same result without decoding (files unchanged).
    again = decode_images(paths, 12, cache_dir=cache, desc="imgs")
    np.testing.assert_array_equal(again, pooled.data.images)


def test_empty_folder_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no class folders"):
        list_image_folder(tmp_path)
    with pytest.raises(FileNotFoundError):
        list_image_folder(tmp_path / "missing")
