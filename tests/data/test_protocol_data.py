import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from deephash.data.protocol_data import load_protocol_data
from deephash.data.protocols import create_protocol

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("DEEPHASH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path


@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").is_file(), reason="dataset-fashion-mnist absent"
)
def test_fashion_mnist_from_debian_package(no_env: Path) -> None:
    start = time.perf_counter()
    data = load_protocol_data("fashion-mnist", seed=0)
    elapsed = time.perf_counter() - start
    p = data.protocol
    assert p.sizes == {"train": 55000, "validation": 5000, "query": 10000, "database": 60000}
    assert np.bincount(data.pool.labels[p.validation]).tolist() == [500] * 10
    assert data.num_classes == 10 and data.in_channels == 1 and data.image_size == 28
    # Normalization stats are those of the train split (independently: plain numpy).
    n, s1, s2 = 0, 0.0, 0.0
    for chunk in np.array_split(p.train, 11):
        x = data.pool.images[chunk].astype(np.float64) / 255
        n, s1, s2 = n + x.size, s1 + x.sum(), s2 + (x * x).sum()
    assert data.mean[0] == pytest.approx(s1 / n, abs=1e-9)
    assert data.std[0] == pytest.approx(np.sqrt(s2 / n - (s1 / n) ** 2), abs=1e-7)
    assert np.shares_memory(data.query.images, data.pool.images)  # test split is a view
    img, label = data.query[0]
    assert img.shape == (1, 28, 28) and label == int(data.pool.labels[p.query[0]])
    batch = data.batch_transform(True)(torch.from_numpy(data.train.images[:8]))
    assert batch.shape == (8, 1, 28, 28)
    np.testing.assert_array_equal(data.val_database.labels, data.pool.labels[p.train])
    assert elapsed < 10  # a couple of seconds on an idle machine


def make_folder(root: Path, per_class: int = 6) -> None:
    rng = np.random.default_rng(0)
    for c in ("cat", "dog", "eel"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
                root / c / f"{i}.png"
            )


def test_folder_end_to_end_and_saved_protocol(no_env: Path) -> None:
    root = no_env / "photos"
    make_folder(root)
    data = load_protocol_data("folder", root=str(root), image_size=16, seed=1, query_per_class=2)
    assert data.pool.images.shape == (18, 16, 16, 3) and data.image_size == 16
    assert data.protocol.sizes["query"] == 6 and data.mean == pytest.approx((0.485, 0.456, 0.406))
    path = data.protocol.save(no_env / "p.json")
    again = load_protocol_data(str(path), image_size=16)
    np.testing.assert_array_equal(again.train.labels, data.train.labels)
    np.testing.assert_array_equal(again.query.images, data.query.images)
    with pytest.raises(ValueError, match="cannot change a saved protocol"):
        load_protocol_data(path, image_size=16, query_per_class=1)
    # A protocol made for other labels is refused.
    other = create_protocol("folder", 0, labels=np.repeat(np.arange(3), 5), root=str(root))
    other.save(no_env / "other.json")
    with pytest.raises(ValueError, match="pool of 15 images"):
        load_protocol_data(no_env / "other.json", image_size=16)


def test_missing_dataset_is_clear(no_env: Path) -> None:
    with pytest.raises(FileNotFoundError, match="deephash data download kmnist"):
        load_protocol_data("kmnist", data_dir=no_env / "empty")
    with pytest.raises(ValueError, match="needs its root folder"):
        load_protocol_data("folder")


def test_a_given_normalization_replaces_the_dataset_statistics(tiny_fmnist: Path) -> None:
    """A pretrained backbone's (mean, std) reach every channel and the batches, by hand."""
    own = load_protocol_data("fashion-mnist", data_dir=tiny_fmnist, validation_size=50)
    given = load_protocol_data(
        "fashion-mnist", data_dir=tiny_fmnist, validation_size=50, normalization=(0.5, 0.25)
    )
    assert given.mean == (0.5,) and given.std == (0.25,) and own.mean != given.mean
    images = given.query.images[:4]
    want = (torch.from_numpy(images).float()[:, None] / 255 - 0.5) / 0.25
    assert torch.allclose(given.preprocessor(augment=False)(images), want, atol=1e-6)
