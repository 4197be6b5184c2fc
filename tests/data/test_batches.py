import numpy as np
import pytest

from deephash.data import Batches


def _batches(sampling: str, labels: np.ndarray, **kw: object) -> Batches:
    opts: dict = {"batch_size": 10, "p": 3, "k": 4, "batches_per_epoch": None, "seed": 0}
    opts.update(kw)
    return Batches(labels, sampling=sampling, **opts)


def test_random_batches_are_a_seeded_permutation_per_epoch() -> None:
    labels = np.arange(45) % 5
    b = _batches("random", labels)
    assert len(b) == 4  # 45 // 10, the last partial batch dropped
    first = np.concatenate([x.images for x in b])
    assert len(set(first.tolist())) == 40 and all(x.triplets is None for x in b)
    np.testing.assert_array_equal(np.concatenate([x.images for x in b]), first)  # same epoch
    b.set_epoch(1)
    assert not np.array_equal(np.concatenate([x.images for x in b]), first)
    again = _batches("random", labels)
    again.set_epoch(1)
    np.testing.assert_array_equal(
        np.concatenate([x.images for x in again]), np.concatenate([x.images for x in b])
    )
    other_rank = _batches("random", labels, rank=1)
    assert not np.array_equal(np.concatenate([x.images for x in other_rank]), first)


def test_pk_batches_hold_p_classes_of_k() -> None:
    labels = np.repeat(np.arange(6), 8)
    b = _batches("pk", labels, batches_per_epoch=5)
    assert len(b) == 5
    for batch in b:
        classes, counts = np.unique(labels[batch.images], return_counts=True)
        assert len(classes) == 3 and set(counts.tolist()) == {4}


def test_offline_triplets_and_pairs_index_into_the_batch() -> None:
    labels = np.repeat(np.arange(4), 10)
    for batch in _batches("offline-triplets", labels):
        assert batch.triplets is not None and batch.triplets.shape == (3, 10)
        a, p, n = (labels[batch.images[t]] for t in batch.triplets)
        assert np.all(a == p) and np.all(a != n)
    for batch in _batches("offline-pairs", labels):
        assert batch.pairs is not None
        a1, p, a2, n = (labels[batch.images[t]] for t in batch.pairs)
        assert np.all(a1 == p) and np.all(a2 != n) and len(a1) + len(a2) == 10


def test_unknown_sampling_is_rejected() -> None:
    with pytest.raises(ValueError, match="sampling must be one of"):
        _batches("shuffle", np.zeros(10, dtype=int))
