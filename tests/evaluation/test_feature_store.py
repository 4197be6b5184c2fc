"""The content-addressed feature store against the module it stores, and the cached feature baseline."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deephash.data.transforms import batch_transform
from deephash.evaluation import feature_store
from deephash.evaluation.feature_store import FeatureStore
from deephash.models import create_backbone

MEAN, STD = (127 / 255,), (128 / 255,)


def _images(n: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _clean(x: np.ndarray) -> torch.Tensor:
    return batch_transform(torch.from_numpy(x), MEAN, STD, augment=False)


def _count_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record how many images each pass of the stored module computes."""
    calls: list[int] = []
    run = feature_store._run_bottom

    def counting(bottom: Any, images: Any, idx: np.ndarray, *args: Any) -> torch.Tensor:
        calls.append(len(idx))
        return run(bottom, images, idx, *args)

    monkeypatch.setattr(feature_store, "_run_bottom", counting)
    return calls


def test_the_store_computes_each_image_once_and_finds_it_again_by_its_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    net = create_backbone("efficientnet-lite0", in_channels=1, num_classes=0).eval()
    bottom, _ = net.split(5)
    calls = _count_runs(monkeypatch)
    key = FeatureStore.key_for(bottom, input_size=64)
    images = _images(10)
    images[7] = images[2]  # a duplicate is computed once
    store = FeatureStore(tmp_path, key)
    cpu = torch.device("cpu")
    got = store.maps(bottom, images, _clean, device=cpu, progress=False)
    with torch.no_grad():
        ref = bottom(_clean(images)).half()
    assert torch.equal(got, ref) and calls == [9]
    # another order, a subset and one new image, from a fresh store object (the file on disk)
    more = np.concatenate([images[[5, 1]], _images(11)[10:]])
    again = FeatureStore(tmp_path, key).maps(bottom, more, _clean, device=cpu, progress=False)
    with torch.no_grad():
        # (other batches: float32 kernels may round the last bits differently)
        assert torch.allclose(again.float(), bottom(_clean(more)), atol=5e-3)
        assert torch.equal(again[:2], got[[5, 1]])
    assert calls == [9, 1]
    # other weights or another input size: another store
    assert FeatureStore.key_for(bottom, input_size=96) != key
    # numbers count by value: numpy or Python, tuple or array
    assert FeatureStore.key_for(bottom, input_size=np.int64(64)) == key
    mean = FeatureStore.key_for(bottom, input_size=64, mean=(0.5,))
    assert FeatureStore.key_for(bottom, input_size=64, mean=np.array([0.5], np.float32)) == mean
    with torch.no_grad():
        bottom._conv_stem.weight.mul_(2)
    assert FeatureStore.key_for(bottom, input_size=64) != key
    # a damaged file is only a cache: it is rebuilt, never trusted
    store.path.write_bytes(b"not a torch file")
    FeatureStore(tmp_path, key).maps(bottom, images[:3], _clean, device=cpu, progress=False)
    assert calls == [9, 1, 3]


def test_the_cached_feature_baseline_extracts_once_and_matches_the_uncached_one(
    tmp_path: Path, tiny_fmnist: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deephash.evaluation.features import extract_baseline

    monkeypatch.setenv("DEEPHASH_CACHE_DIR", str(tmp_path / "cache"))
    calls = _count_runs(monkeypatch)
    common: dict[str, Any] = {
        "dataset": "fashion-mnist",
        "backbone": "small-cnn",
        "data_dir": str(tiny_fmnist),
        "tsne_samples": 0,
        "progress": False,
        "device": "cpu",
        "normalize": True,
        "protocol_options": {"validation_size": 50},
    }
    plain = extract_baseline(out=tmp_path / "plain", **common)
    first = extract_baseline(out=tmp_path / "first", cache=True, **common)
    assert calls and sum(calls) == first["num_queries"] + first["num_database"]
    again = extract_baseline(out=tmp_path / "again", cache=True, **common)
    assert sum(calls) == first["num_queries"] + first["num_database"]  # nothing extracted again
    assert again["map"] == first["map"]
    assert first["map"] == pytest.approx(plain["map"], abs=1e-3)
    a, b = (
        np.load(tmp_path / "plain" / "features.npz"),
        np.load(tmp_path / "again" / "features.npz"),
    )
    np.testing.assert_allclose(a["database"], b["database"], atol=1e-5)
