"""Seeded draws of a protocol (src/deephash/data/protocol_sampling.py), checked by hand."""

import numpy as np
import pytest

from deephash.data.protocol_sampling import choose_train_classes, stratified, validation_fold


def test_stratified_allocates_by_largest_remainder() -> None:
    labels = np.array([0] * 6 + [1] * 3 + [2] * 1)  # 10 images, classes of 6, 3 and 1
    cands = np.arange(10)
    # 5 images: quotas 3.0, 1.5, 0.5 -> floors 3, 1, 0; one left goes to the larger remainder,
    # a tie between classes 1 and 2 broken by the smaller class id
    got = stratified(cands, labels, ("size", 5), np.random.default_rng(0), "query")
    assert np.bincount(labels[got], minlength=3).tolist() == [3, 2, 0]
    assert got.dtype == np.int64 and np.all(np.diff(got) > 0)
    got = stratified(cands, labels, ("per_class", 1), np.random.default_rng(0), "query")
    assert np.bincount(labels[got], minlength=3).tolist() == [1, 1, 1]
    got = stratified(cands, labels, ("fraction", 0.2), np.random.default_rng(0), "query")
    assert got.size == 2 and np.bincount(labels[got], minlength=3).tolist() == [1, 1, 0]
    assert stratified(cands, labels, None, np.random.default_rng(0), "query").size == 0
    with pytest.raises(ValueError, match="query_per_class=2, but class 2 has only 1"):
        stratified(cands, labels, ("per_class", 2), np.random.default_rng(0), "query")


def test_validation_folds_are_consecutive_with_the_smaller_first() -> None:
    classes = list(range(10))
    folds = [validation_fold(classes, 4, i, np.random.default_rng(3)) for i in range(4)]
    assert [len(f) for f in folds] == [2, 2, 3, 3]  # 10 classes in 4 folds
    assert sorted(c for f in folds for c in f) == classes  # a partition
    order = np.random.default_rng(3).permutation(np.arange(10)).tolist()
    assert folds[0] == sorted(order[:2]) and folds[3] == sorted(order[7:])
    assert len(validation_fold(classes, 6, 2, np.random.default_rng(0))) == 2  # [1, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="would hold 1 of the 10 training classes"):
        validation_fold(classes, 6, 0, np.random.default_rng(0))


def test_train_classes_are_a_seeded_count_or_the_given_list() -> None:
    classes = np.arange(8)
    drawn = choose_train_classes({"train_classes": 3}, classes, np.random.default_rng(5))
    expected = sorted(np.random.default_rng(5).choice(classes, size=3, replace=False).tolist())
    assert drawn == expected
    default = choose_train_classes({"train_classes": None}, classes, np.random.default_rng(5))
    assert len(default) == 6  # 75% of 8
    assert choose_train_classes({"train_classes": [4, 1, 4]}, classes, np.random.default_rng()) == [
        1,
        4,
    ]
    with pytest.raises(ValueError, match="proper non-empty subset"):
        choose_train_classes({"train_classes": list(range(8))}, classes, np.random.default_rng())
