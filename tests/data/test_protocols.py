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


def fashion_like() -> tuple[np.ndarray, np.ndarray]:
    """10 classes, 60 train + 10 test images each, shuffled within each official split."""
    rng = np.random.default_rng(1)
    labels = np.concatenate(
        [
            rng.permutation(np.repeat(np.arange(10), 60)),
            rng.permutation(np.repeat(np.arange(10), 10)),
        ]
    )
    return labels, np.arange(700) >= 600


def label_set(labels: np.ndarray, idx: np.ndarray) -> set[int]:
    return set(labels[idx].tolist())


UNSEEN = {
    "fashion-mnist-unseen": 10,
    "cifar10-unseen": 10,
    "cifar100-unseen": 100,
    "cub200-unseen": 200,
    "dogs-unseen": 120,
}


@pytest.mark.parametrize("name", sorted(UNSEEN))
def test_unseen_protocols_are_class_disjoint_as_documented(name: str) -> None:
    n_classes = UNSEEN[name]
    rng = np.random.default_rng(2)
    order = rng.permutation(6 * n_classes)  # 6 images per class, 2 of them official test
    labels = np.repeat(np.arange(n_classes), 6)[order]
    is_test = np.tile(np.arange(6) >= 4, n_classes)[order]
    p = create_protocol(name, 0, labels=labels, is_test=is_test)
    first_half = set(range(n_classes // 2))
    second_half = set(range(n_classes // 2, n_classes))
    assert set(p.train_classes or []) == first_half and set(p.test_classes or []) == second_half
    # query = official test images of the test classes, database = their official train images
    test_cls = np.isin(labels, sorted(second_half))
    assert p.query.tolist() == np.flatnonzero(test_cls & is_test).tolist()
    assert p.database.tolist() == np.flatnonzero(test_cls & ~is_test).tolist()
    # validation: a whole fold of training classes, none of them trained on
    held_out = set(p.validation_classes or [])
    assert label_set(labels, p.validation) == held_out and held_out < first_half
    assert label_set(labels, p.train) == first_half - held_out
    folds = {10: 2, 100: 4, 200: 4, 120: 4}[n_classes]
    assert len(held_out) == (n_classes // 2) // folds
    # the images trained on (and validated on): official train images only, or all of them
    trained = np.concatenate([p.train, p.validation])
    everything = name in ("cub200-unseen", "dogs-unseen")
    want = np.isin(labels, sorted(first_half)) & (True if everything else ~is_test)
    assert sorted(trained.tolist()) == np.flatnonzero(want).tolist()
    # validation retrieves among the held-out images themselves (leave-one-out)
    assert p.class_disjoint_validation and not p.leave_one_out
    np.testing.assert_array_equal(p.val_database, p.validation)
    p.check_labels(labels)


def test_unseen_leave_one_out_queries_every_test_class_image() -> None:
    labels, is_test = fashion_like()
    p = create_protocol("fashion-mnist-unseen", 3, labels=labels, is_test=is_test,
                        retrieval="leave-one-out")  # fmt: skip
    assert p.leave_one_out
    everything_unseen = np.flatnonzero(labels >= 5).tolist()  # both official splits
    assert p.query.tolist() == everything_unseen and p.database.tolist() == everything_unseen
    split = create_protocol("fashion-mnist-unseen", 3, labels=labels, is_test=is_test)
    np.testing.assert_array_equal(p.train, split.train)  # training is the same in both shapes
    np.testing.assert_array_equal(p.validation, split.validation)
    q = Protocol.from_dict(json.loads(json.dumps(p.to_dict())))
    assert q.leave_one_out and q.validation_classes == p.validation_classes
    q.check_labels(labels)


def test_validation_folds_partition_the_training_classes_reproducibly() -> None:
    labels = np.repeat(np.arange(20), 5)
    is_test = np.tile(np.arange(5) >= 4, 20)
    opts = {"class_disjoint": True, "train_classes": list(range(10)), "validation_folds": 4}
    held = [
        create_protocol("mnist", 7, labels=labels, is_test=is_test, validation_fold=f, **opts)
        for f in range(4)
    ]
    folds = [set(p.validation_classes or []) for p in held]
    assert [len(f) for f in folds] == [2, 2, 3, 3]  # smaller folds first
    assert set().union(*folds) == set(range(10))
    assert sum(len(f) for f in folds) == 10  # pairwise disjoint
    for p, f in zip(held, folds):
        assert label_set(labels, p.validation) == f
        assert label_set(labels, p.train) == set(range(10)) - f
    again = create_protocol("mnist", 7, labels=labels, is_test=is_test, validation_fold=2, **opts)
    np.testing.assert_array_equal(again.validation, held[2].validation)
    others = {
        tuple(
            create_protocol("mnist", s, labels=labels, is_test=is_test, **opts).validation_classes
        )
        for s in range(6)
    }
    assert len(others) > 1  # the seed draws the folds


def test_unseen_option_errors() -> None:
    labels, is_test = fashion_like()
    with pytest.raises(ValueError, match="only apply to an unseen-class protocol"):
        create_protocol("fashion-mnist", labels=labels, is_test=is_test, retrieval="leave-one-out")
    with pytest.raises(ValueError, match="only apply to an unseen-class protocol"):
        create_protocol("fashion-mnist", labels=labels, is_test=is_test, validation_folds=2)
    with pytest.raises(ValueError, match="retrieval must be one of"):
        create_protocol("fashion-mnist-unseen", labels=labels, is_test=is_test, retrieval="loo")
    with pytest.raises(ValueError, match="either validation_folds"):
        create_protocol("fashion-mnist-unseen", labels=labels, is_test=is_test,
                        validation_folds=2, validation_size=50)  # fmt: skip
    with pytest.raises(ValueError, match="at least 2 held-out classes"):
        create_protocol("fashion-mnist-unseen", labels=labels, is_test=is_test, validation_folds=3)
    with pytest.raises(ValueError, match=r"validation_fold must be in 0\.\.1"):
        create_protocol("fashion-mnist-unseen", labels=labels, is_test=is_test, validation_fold=2)
    # a slice of the training classes' images instead of folds: seen-class validation
    seen = create_protocol("fashion-mnist-unseen", labels=labels, is_test=is_test,
                           validation_size=50)  # fmt: skip
    assert seen.validation_classes is None and seen.sizes["validation"] == 50
    np.testing.assert_array_equal(seen.val_database, seen.train)


def test_saved_protocol_with_a_held_out_class_in_train_is_refused() -> None:
    labels, is_test = fashion_like()
    d = create_protocol("fashion-mnist-unseen", 0, labels=labels, is_test=is_test).to_dict()
    moved = d["splits"]["validation"][0]
    d["splits"]["validation"] = d["splits"]["validation"][1:]
    d["splits"]["train"] = sorted([*d["splits"]["train"], moved])
    d["sizes"] = {k: len(v) for k, v in d["splits"].items()}
    with pytest.raises(ValueError, match="class-disjoint validation is broken"):
        Protocol.from_dict(d).check_labels(labels)
    bad = create_protocol("fashion-mnist-unseen", 0, labels=labels, is_test=is_test).to_dict()
    bad["validation_classes"] = [5, 6]  # test classes
    with pytest.raises(ValueError, match="subset of train_classes"):
        Protocol.from_dict(bad)


def test_model_selection_rule() -> None:
    labels, is_test = fashion_like()
    # standard protocol: test classes are the training classes, nothing to refuse
    standard = create_protocol("fashion-mnist", labels=labels, is_test=is_test, validation_size=50)
    standard.check_model_selection(labels)
    # unseen protocol with class-disjoint validation folds: accepted
    unseen = create_protocol("fashion-mnist-unseen", labels=labels, is_test=is_test)
    unseen.check_model_selection(labels)
    # unseen protocol validated on a slice of the training classes' images: refused
    seen_val = create_protocol(
        "fashion-mnist-unseen", labels=labels, is_test=is_test, validation_size=50
    )
    with pytest.raises(ValueError, match="not held out of training"):
        seen_val.check_model_selection(labels)
    # a frozen split without class metadata whose training images include test classes: refused
    d = unseen.to_dict()
    d.update(train_classes=None, test_classes=None, validation_classes=None)
    leak = int(d["splits"]["database"][0])
    d["splits"]["database"] = d["splits"]["database"][1:]
    d["splits"]["train"] = sorted([*d["splits"]["train"], leak])
    d["sizes"] = {k: len(v) for k, v in d["splits"].items()}
    with pytest.raises(
        ValueError, match=rf"test classes \[{labels[leak]}\] appear in the training"
    ):
        Protocol.from_dict(d).check_model_selection(labels)
    # ... and one whose validation images are test-class images
    d = unseen.to_dict()
    d.update(train_classes=None, test_classes=None, validation_classes=None)
    d["splits"]["validation"] = sorted([*d["splits"]["validation"], leak])
    d["splits"]["database"] = [i for i in d["splits"]["database"] if i != leak]
    d["sizes"] = {k: len(v) for k, v in d["splits"].items()}
    with pytest.raises(ValueError, match="appear in the training or validation"):
        Protocol.from_dict(d).check_model_selection(labels)
    # declared test classes that the images contradict are refused on load already
    d = unseen.to_dict()
    d["splits"]["train"] = sorted([*d["splits"]["train"], leak])
    d["splits"]["database"] = [i for i in d["splits"]["database"] if i != leak]
    d["sizes"] = {k: len(v) for k, v in d["splits"].items()}
    with pytest.raises(ValueError, match="outside its class set"):
        Protocol.from_dict(d).check_model_selection(labels)


def test_protocols_module_gathers_the_split_files() -> None:
    from deephash.data import protocol, protocol_builder, protocol_catalogue, protocols

    assert protocols.Protocol is protocol.Protocol
    assert protocols.create_protocol is protocol_builder.create_protocol
    assert protocols.protocol_spec is protocol_catalogue.protocol_spec
    assert protocols.list_protocols() == protocol_catalogue.PROTOCOLS.names()
