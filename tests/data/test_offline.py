import numpy as np
import pytest
import torch

from deephash.data.offline import RandomPairDataset, RandomTripletDataset, localize
from deephash.losses import create_loss

LABELS = np.array([3, 1, 3, 2, 1, 3, 7, 2, 3, 9])  # class 9 is a singleton


def test_triplets_are_valid_and_cover_the_choices() -> None:
    ds = RandomTripletDataset(LABELS, num_triplets=4000, seed=0)
    rows = ds.rows
    assert rows.shape == (4000, 3) and rows.dtype == np.int64 and len(ds) == 4000
    a, p, n = rows.T
    assert np.all(LABELS[a] == LABELS[p]) and np.all(a != p) and np.all(LABELS[a] != LABELS[n])
    # anchors: every sample of a class with >= 2 members, never the singleton (or class 7: 1 member)
    assert set(a.tolist()) == {i for i, c in enumerate(LABELS) if (LABELS == c).sum() >= 2}
    # positives uniform over the other members: anchor 0 (class 3) has partners 2, 5, 8
    p0 = p[a == 0]
    counts = [int((p0 == k).sum()) for k in (2, 5, 8)]
    assert sum(counts) == len(p0) and min(counts) > len(p0) / 3 * 0.6
    # negatives of anchor 0: uniform over the 6 samples of other classes
    n0 = n[a == 0]
    assert set(n0.tolist()) == {1, 3, 4, 6, 7, 9}


def test_fixed_per_seed_and_epoch() -> None:
    ds = RandomTripletDataset(LABELS, 50, seed=5)
    e0 = ds.rows.copy()
    assert np.array_equal(RandomTripletDataset(LABELS, 50, seed=5).rows, e0)
    ds.set_epoch(1)
    e1 = ds.rows.copy()
    assert not np.array_equal(e0, e1)
    ds.set_epoch(0)
    assert np.array_equal(ds.rows, e0)
    assert torch.equal(ds[3], torch.from_numpy(e0[3]))
    assert not np.array_equal(RandomTripletDataset(LABELS, 50, seed=6).rows, e0)


def test_pairs_fraction_and_validity() -> None:
    ds = RandomPairDataset(torch.tensor(LABELS), num_pairs=1001, seed=1, positive_fraction=0.3)
    i, j, same = ds.rows.T
    assert int(same.sum()) == round(1001 * 0.3) == ds.num_positive
    assert np.all((LABELS[i] == LABELS[j]) == (same == 1))
    assert np.all(i[same == 1] != j[same == 1])
    assert 0 < (same[:500] == 1).mean() < 0.6  # shuffled, not all positives first
    only_neg = RandomPairDataset(np.arange(5), 10, positive_fraction=0.0)  # all singletons is fine
    assert int(only_neg.rows[:, 2].sum()) == 0


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="single class"):
        RandomTripletDataset(np.zeros(4, dtype=int), 3)
    with pytest.raises(ValueError, match="single sample"):
        RandomTripletDataset(np.arange(4), 3)
    with pytest.raises(ValueError, match="num_triplets"):
        RandomTripletDataset(LABELS, 0)
    with pytest.raises(ValueError, match="integer"):
        RandomTripletDataset(np.array([0.5, 1.5]), 2)
    with pytest.raises(ValueError, match="positive_fraction"):
        RandomPairDataset(LABELS, 4, positive_fraction=1.5)
    with pytest.raises(ValueError, match="epoch"):
        RandomTripletDataset(LABELS, 3).set_epoch(-1)


def test_localize_feeds_the_same_losses() -> None:
    """Offline triplets through compute_triplets equal the loss on separately embedded rows."""
    gen = torch.Generator().manual_seed(0)
    features = torch.randn(len(LABELS), 4, generator=gen)  # stands in for the model's embeddings
    rows = torch.from_numpy(RandomTripletDataset(LABELS, 16, seed=2).rows)
    unique, local = localize(rows)
    assert torch.equal(unique[local], rows)
    loss = create_loss("triplet-margin", margin=0.5)
    out = loss.compute_triplets(features[unique], *local.T)
    e = torch.nn.functional.normalize(features, dim=1)
    a, p, n = rows.T
    ref = ((e[a] - e[p]).pow(2).sum(1) - (e[a] - e[n]).pow(2).sum(1) + 0.5).clamp_min(0).mean()
    assert torch.allclose(out.loss, ref, atol=1e-6)
    pairs = torch.from_numpy(RandomPairDataset(LABELS, 12, seed=3).rows)
    u2, l2 = localize(pairs[:, :2])
    pos = pairs[:, 2] == 1
    c = create_loss("contrastive").compute_pairs(
        features[u2], l2[pos, 0], l2[pos, 1], l2[~pos, 0], l2[~pos, 1]
    )
    assert c.num_terms == 12
