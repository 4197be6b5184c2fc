"""Fixtures shared across the test tree: a tiny, learnable Fashion-MNIST in the genuine IDX format."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def _write_idx(path: Path, arr: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    path.write_bytes(gzip.compress(header + arr.astype(">u1").tobytes()))


def make_tiny_fmnist(root: Path, n_train: int = 400, n_test: int = 100, seed: int = 0) -> Path:
    """Write ``root/fashion-mnist/*-ubyte.gz``: 10 classes, each a bright 8×8 block at its own
    position plus noise, so a small CNN separates them within a few dozen steps. Returns ``root``."""
    rng = np.random.default_rng(seed)
    folder = root / "fashion-mnist"
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = np.arange(n) % 10
        rng.shuffle(y)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.int64)
        for i, c in enumerate(y):
            r, col = 2 + 8 * (c // 4), 2 + 6 * (c % 4)
            x[i, r : r + 8, col : col + 8] += 180
        _write_idx(folder / f"{split}-images-idx3-ubyte.gz", np.clip(x, 0, 255).astype(np.uint8))
        _write_idx(folder / f"{split}-labels-idx1-ubyte.gz", y.astype(np.uint8))
    return root


@pytest.fixture(scope="session")
def tiny_fmnist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir holding a tiny Fashion-MNIST (400 train, 100 test images)."""
    return make_tiny_fmnist(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="session")
def tiny_config_values(tiny_fmnist: Path) -> dict[str, object]:
    """Config values for a fast training run on the tiny dataset."""
    return {
        "dataset": "fashion-mnist",
        "data_dir": str(tiny_fmnist),
        "protocol_options": {"validation_size": 50},
        "backbone": "small-cnn",
        "embedding_dim": 16,
        "p": 5,
        "k": 4,
        "batch_size": 20,
        "epochs": 2,
        "batches_per_epoch": 4,
        "val_queries": 50,
        "val_database": 200,
        "map_k": 50,
        "precision_k": 10,
        "knn_k": 5,
        "tsne_samples": 0,
        "progress": False,
        "num_threads": 1,
        "lr": 0.003,
    }


@pytest.fixture(scope="session")
def tiny_hash_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_config_values: dict[str, object]
) -> Path:
    """A 16-bit hashing run (DTSH, one short epoch) trained on the tiny Fashion-MNIST."""
    from deephash.training.config import TrainConfig
    from deephash.training.trainer import train

    out = tmp_path_factory.mktemp("hash_run") / "run"
    cfg = TrainConfig.from_dict({**tiny_config_values, "loss": "dtsh", "bits": 16, "epochs": 1})
    train(cfg, out)
    return out


@pytest.fixture(scope="session")
def tiny_instance_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_config_values: dict[str, object]
) -> Path:
    """A 16-bit hashing run with 64 instance bits (bit-BCE plus the instance term, one short
    epoch) trained on the tiny Fashion-MNIST."""
    from deephash.training.config import TrainConfig
    from deephash.training.trainer import train

    out = tmp_path_factory.mktemp("instance_run") / "run"
    values = {
        **tiny_config_values,
        "loss": "bit-bce",
        "sampling": "random",
        "bits": 16,
        "instance_bits": 64,
        "instance_weight": 1.0,
        "epochs": 1,
    }
    train(TrainConfig.from_dict(values), out)
    return out


@pytest.fixture(scope="session")
def tiny_png_folder(tmp_path_factory: pytest.TempPathFactory, tiny_fmnist: Path) -> Path:
    """``root/c<label>/<i>.png``: the 100 tiny Fashion-MNIST test images as PNG files."""
    from PIL import Image

    from deephash.data.idx import read_idx

    folder = tiny_fmnist / "fashion-mnist"
    images = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    root = tmp_path_factory.mktemp("pngs")
    for i, (image, label) in enumerate(zip(images, labels)):
        (root / f"c{label}").mkdir(exist_ok=True)
        Image.fromarray(image).save(root / f"c{label}" / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One Milvus standalone server for the whole session (the ``milvus-server`` extra), on
    127.0.0.1 with its files in a temporary folder; tests may stop and start it (same port, same
    data; ``kill`` for a crash) but must leave it running."""
    pytest.importorskip("milvus", reason="the milvus-server extra is not installed")
    from deephash.index.milvus_server import LocalMilvusServer

    # a 10 s etcd session lease (Milvus's default: 30 s): a restarted server serves again sooner
    server = LocalMilvusServer(tmp_path_factory.mktemp("milvus-server"), session_ttl=10)
    server.start()
    try:
        yield server
    finally:
        server.kill()  # a temporary server: nothing to keep


# Variants whose twin (the same test on the other Milvus, or the other collection kind) stays in
# `make test`: they run with the slow tests, to keep `make test` well under 10 minutes.
_SLOW_TWINS = {
    "tests/collection/test_milvus_server.py::test_read_your_writes_without_waiting_for_the_engine[lite]",
    "tests/index/test_milvus.py::test_removals_and_additions_behave_like_flat[server]",
    "tests/index/test_milvus.py::test_saturated_requests_are_split_exactly[server]",
    "tests/index/test_milvus.py::test_metadata_round_trip[server]",
    # the server's own behaviour (seals, restarts, read-your-writes, the service on it) stays in
    # make test; these check the index contract, which the Lite twins check the same way
    "tests/index/test_milvus.py::test_search_and_range_search_equal_flat[server]",
    "tests/index/test_milvus.py::test_without_exact_ties_distances_are_exact_and_ids_true[server]",
    "tests/index/test_milvus.py::test_reopen_and_load_index_see_the_same_rows[server]",
    "tests/index/test_milvus.py::test_clear_errors[server]",
    "tests/index/test_milvus.py::test_insert_delete_and_stored_for_a_writer_that_keeps_the_ids[server]",
    # the 32- and 64-bit twins stay
    "tests/index/test_mih.py::test_probing_and_scan_fallback_both_exact[128-always_probe]",
    # qualities 90 and 50 stay
    "tests/cli/test_photo_collection.py::test_a_resaved_copy_finds_its_source_first[75]",
    "tests/serve/test_server_process.py::test_kill_9_mid_stream_loses_no_acknowledged_item[None]",
    # resume exactness stays in make test through the instance-bits twin (views' state too)
    "tests/training/test_trainer.py::test_resume_gives_the_same_result_as_an_uninterrupted_run",
    # make test keeps instance_batch through the own-network test (views of 8 of 20 images)
    "tests/training/test_trainer.py::test_an_instance_batch_of_the_whole_batch_is_the_default_exactly",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the listed twins slow (before ``-m "not slow"`` deselects)."""
    for item in items:
        if item.nodeid in _SLOW_TWINS:
            item.add_marker(pytest.mark.slow)
