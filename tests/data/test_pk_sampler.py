from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from deephash.data.pk_sampler import PKSampler


def test_every_batch_is_p_classes_by_k() -> None:
    labels = np.repeat(np.arange(8), 10)
    sampler = PKSampler(labels, p=4, k=3, seed=1)
    assert len(sampler) == 80 // 12
    seen = 0
    for batch in sampler:
        seen += 1
        assert len(batch) == 12 and len(set(batch)) == 12  # enough images: no repeats
        counts = Counter(labels[batch].tolist())
        assert len(counts) == 4 and set(counts.values()) == {3}
        # the K images of a class are consecutive
        assert [labels[batch[i]] for i in range(0, 12, 3)] == list(counts)
    assert seen == len(sampler)  # the checks above ran on every batch


def test_small_classes_sampled_with_replacement() -> None:
    labels = np.array([0, 1, 1, 1, 1, 2, 2, 2, 2])  # class 0 has one image
    sampler = PKSampler(labels, p=3, k=4, seed=0, batches_per_epoch=5)
    batches = list(sampler)
    assert len(batches) == 5
    for batch in batches:
        picked = labels[batch]
        assert Counter(picked.tolist()) == {0: 4, 1: 4, 2: 4}
        assert [i for i in batch if labels[i] == 0] == [0, 0, 0, 0]
        assert len({i for i in batch if labels[i] == 1}) == 4


def test_determinism_and_epochs() -> None:
    labels = np.repeat(np.arange(5), 7)
    a, b = PKSampler(labels, 2, 2, seed=3), PKSampler(labels, 2, 2, seed=3)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(PKSampler(labels, 2, 2, seed=4)) != first


def test_errors() -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        PKSampler(np.zeros(10, int), 1, 2)
    with pytest.raises(ValueError, match=r"p \(classes per batch\) must be in \[2, 3\]"):
        PKSampler(np.arange(3), 4, 2)
    with pytest.raises(ValueError, match="k"):
        PKSampler(np.arange(3), 2, 0)
    with pytest.raises(ValueError, match="integer"):
        PKSampler(np.array([0.5, 1.5]), 2, 1)


def test_works_as_dataloader_batch_sampler() -> None:
    labels = np.repeat(np.arange(4), 5)
    ds = TensorDataset(torch.arange(20), torch.from_numpy(labels))
    loader = DataLoader(ds, batch_sampler=PKSampler(labels, 2, 5, seed=0))
    batches = list(loader)
    assert len(batches) == 2
    for idx, lab in batches:
        assert torch.equal(lab, torch.from_numpy(labels[idx.numpy()]))
        assert sorted(Counter(lab.tolist()).values()) == [5, 5]
