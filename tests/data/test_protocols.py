import json
from pathlib import Path

import numpy as np
import pytest

from deephash.data.protocols import Protocol, create_protocol, list_protocols


def cifar_like() -> tuple[np.ndarray, np.ndarray]:
    labels = np.concatenate([np.repeat(np.arange(10), 5000), np.repeat(np.arange(10), 1000)])
    rng = np.random.default_rng(0)
    labels[:50000] = rng.permutation(labels[:50000])
    labels[50000:] = rng.permutation(labels[50000:])
    return labels, np.arange(60000) >= 50000


def per_class(labels: np.ndarray, idx: np.ndarray) -> list[int]:
    return np.bincount(labels[idx], minlength=10).tolist()


def assert_disjoint(*arrays: np.ndarray) -> None:
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not set(a.tolist()) & set(b.tolist())


def test_registry() -> None:
    assert {
        "mnist",
        "fashion-mnist",
        "kmnist",
        "cifar10-s1",
        "cifar10-s2",
        "cifar100",
        "cub200",
        "dogs",
        "folder",
    } <= set(list_protocols())
    with pytest.raises(ValueError, match="known protocols"):
        create_protocol("imagenet", labels=np.zeros(3, int))


def test_cifar10_s1_sizes_and_counts() -> None:
    labels, is_test = cifar_like()
    p = create_protocol("cifar10-s1", 3, labels=labels, is_test=is_test)
    assert p.sizes == {"train": 5000, "validation": 1000, "query": 1000, "database": 59000}
    assert per_class(labels, p.query) == [100] * 10
    assert per_class(labels, p.train) == [500] * 10
    assert per_class(labels, p.validation) == [100] * 10
    assert_disjoint(p.query, p.train, p.validation)
    assert set(p.train.tolist()) <= set(p.database.tolist())
    assert sorted(p.query.tolist() + p.database.tolist()) == list(range(60000))
    q = create_protocol(
        "cifar10-s1", 3, labels=labels, is_test=is_test, database_includes_train=False
    )
    assert q.sizes["database"] == 54000 and not set(q.train.tolist()) & set(q.database.tolist())


def test_official_shape_fashion_like() -> None:
    labels, is_test = cifar_like()
    p = create_protocol("cifar10-s2", 0, labels=labels, is_test=is_test)
    assert p.query.tolist() == list(range(50000, 60000))
    assert p.database.tolist() == list(range(50000))
    assert p.sizes["validation"] == 5000 and per_class(labels, p.validation) == [500] * 10
    assert sorted(p.train.tolist() + p.validation.tolist()) == list(range(50000))
    assert_disjoint(p.train, p.validation, p.query)
    np.testing.assert_array_equal(p.val_database, p.train)


def test_stratified_size_is_exact_for_unbalanced_classes() -> None:
    labels = np.array([0] * 7 + [1] * 2 + [2] * 1 + [0, 1, 2])
    is_test = np.arange(13) >= 10
    p = create_protocol("mnist", 0, labels=labels, is_test=is_test, validation_size=5)
    # Hamilton allocation of 5 over class sizes (7, 2, 1): quotas 3.5, 1.0, 0.5 -> 4, 1, 0
    assert p.sizes["validation"] == 5
    assert np.bincount(labels[p.validation], minlength=3).tolist() == [4, 1, 0]


def test_seed_determinism() -> None:
    labels, is_test = cifar_like()
    a = create_protocol("cifar10-s1", 7, labels=labels, is_test=is_test)
    b = create_protocol("cifar10-s1", 7, labels=labels, is_test=is_test)
    c = create_protocol("cifar10-s1", 8, labels=labels, is_test=is_test)
    for s in ("train", "validation", "query", "database"):
        np.testing.assert_array_equal(getattr(a, s), getattr(b, s))
    assert not np.array_equal(a.query, c.query)


def test_save_load_round_trip(tmp_path: Path) -> None:
    labels, is_test = cifar_like()
    p = create_protocol(
        "cifar10-s2", 1, labels=labels, is_test=is_test, class_disjoint=True, train_classes=6
    )
    path = p.save(tmp_path / "sub" / "p.json")
    q = Protocol.load(path)
    assert q.to_dict() == p.to_dict()
    q.check_labels(labels)
    d = json.loads(path.read_text())
    assert d["dataset"] == "cifar10" and d["seed"] == 1 and d["sizes"] == p.sizes


def test_load_rejects_bad_files(tmp_path: Path) -> None:
    labels, is_test = cifar_like()
    d = create_protocol("cifar10-s1", 0, labels=labels, is_test=is_test).to_dict()
    bad = tmp_path / "bad.json"

    def expect(mutate: dict, match: str) -> None:
        bad.write_text(json.dumps({**d, **mutate}))
        with pytest.raises(ValueError, match=match):
            Protocol.load(bad)

    expect({"format": "x"}, "not a deephash protocol")
    expect({"version": 99}, "unsupported protocol version")
    expect({"sizes": {**d["sizes"], "train": 3}}, "sizes says 3")
    splits = dict(d["splits"])
    splits["train"] = [*splits["train"][:-1], splits["query"][0]]
    expect({"splits": splits}, "query and train share")
    splits = dict(d["splits"])
    splits["train"] = [*splits["train"][:-1], 10**9]
    expect({"splits": splits}, "outside")
    bad.write_text("{nope")
    with pytest.raises(ValueError, match="not valid JSON"):
        Protocol.load(bad)
    p = Protocol.from_dict(d)
    with pytest.raises(ValueError, match="different copy"):
        p.check_labels(np.roll(labels, 1))


def test_class_disjoint() -> None:
    labels, is_test = cifar_like()
    p = create_protocol(
        "cifar10-s2", 5, labels=labels, is_test=is_test, class_disjoint=True, train_classes=7
    )
    assert p.train_classes is not None and p.test_classes is not None
    assert len(p.train_classes) == 7 and len(p.test_classes) == 3
    train_side = set(labels[np.concatenate([p.train, p.validation])].tolist())
    test_side = set(labels[np.concatenate([p.query, p.database])].tolist())
    assert train_side == set(p.train_classes) and test_side == set(p.test_classes)
    assert p.sizes["query"] == 3000 and p.sizes["database"] == 15000
    p.check_labels(labels)
    # Listed classes, sampled protocol.
    s = create_protocol(
        "cifar10-s1",
        0,
        labels=labels,
        is_test=is_test,
        class_disjoint=True,
        train_classes=[0, 1, 2, 3, 4],
    )
    assert set(labels[s.train].tolist()) == {0, 1, 2, 3, 4}
    assert (
        set(labels[s.query].tolist()) == {5, 6, 7, 8, 9}
        and per_class(labels, s.query)[5:] == [100] * 5
    )
    assert_disjoint(s.query, s.database, s.train, s.validation)
    with pytest.raises(ValueError, match="train_classes"):
        create_protocol(
            "cifar10-s2", 0, labels=labels, is_test=is_test, class_disjoint=True, train_classes=10
        )


def test_folder_protocol_and_option_errors() -> None:
    labels = np.repeat(np.arange(4), 20)
    p = create_protocol("folder", 2, labels=labels, root="/tmp/x", query_per_class=5)
    assert per_class(labels, p.query)[:4] == [5] * 4
    assert sorted(np.concatenate([p.query, p.train, p.validation]).tolist()) == list(range(80))
    assert p.sizes["validation"] == 6  # 10% of the 60 non-query images
    with pytest.raises(ValueError, match="unknown options"):
        create_protocol("folder", labels=labels, root="/tmp/x", query_percent=3)
    with pytest.raises(ValueError, match="only 20 candidate"):
        create_protocol("folder", labels=labels, root="/tmp/x", query_per_class=21)
    with pytest.raises(ValueError, match="official train/test split"):
        create_protocol("mnist", labels=labels)


def test_default_protocol_maps_dataset_names_and_passes_the_rest() -> None:
    from deephash.data import default_protocol

    assert default_protocol("cifar10") == "cifar10-s1"
    assert default_protocol("cifar-10") == "cifar10-s1"
    assert default_protocol("fmnist") == "fashion-mnist"
    assert default_protocol("cifar10-s2") == "cifar10-s2"
    assert default_protocol("frozen/split.json") == "frozen/split.json"
    assert default_protocol("no-such") == "no-such"  # left for the loader's clear error
