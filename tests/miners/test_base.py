import pytest
import torch

from deephash.miners import (
    BatchHardMiner,
    TripletMiner,
    Triplets,
    create_miner,
    create_pair_miner,
    list_miners,
    list_pair_miners,
    miner_options,
)

EXPECTED = {
    "all",
    "hardest",
    "random-hard",
    "semi-hard",
    "batch-hard",
    "distance-weighted",
    "curriculum",
}


def test_registry_lists_every_miner() -> None:
    assert set(list_miners()) == EXPECTED
    assert list_miners("semi*") == ["semi-hard"]
    assert list_pair_miners() == ["all-pairs", "hard-pairs", "multi-similarity"]


def test_unknown_names_and_options_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="available: all"):
        create_miner("semihard")
    with pytest.raises(ValueError, match="does not take option"):
        create_miner("batch-hard", margin=0.1)
    with pytest.raises(ValueError, match="unknown pair miner"):
        create_pair_miner("hard")
    with pytest.raises(ValueError, match="select must be one of"):
        create_miner("semi-hard", select="best")
    with pytest.raises(ValueError, match="margin must be"):
        create_miner("random-hard", margin=-1.0)
    assert miner_options("semi-hard")["margin"] == 0.2


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_contract_every_miner(name: str) -> None:
    """Every miner: int64 Triplets, valid label relations, no grad, works without positives."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 8, generator=gen, requires_grad=True)
    y = torch.arange(8).repeat_interleave(4)
    t = create_miner(name)(x, y)
    assert isinstance(t, Triplets)
    assert all(v.dtype == torch.int64 and v.ndim == 1 for v in t)
    assert len(t.anchor) > 0
    assert not any(v.requires_grad for v in t)
    assert bool((y[t.anchor] == y[t.positive]).all())
    assert bool((t.anchor != t.positive).all())
    assert bool((y[t.anchor] != y[t.negative]).all())
    # all labels distinct: no positive pair, so no triplet (and no crash)
    empty = create_miner(name)(x[:8], torch.arange(8))
    assert all(len(v) == 0 for v in empty)


def test_input_validation() -> None:
    m = BatchHardMiner()
    x = torch.randn(6, 3)
    with pytest.raises(ValueError, match=r"labels must be \(B,\)"):
        m(x, torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class ids"):
        m(x, torch.zeros(6))
    with pytest.raises(ValueError, match="float tensor"):
        m(x[0], torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="NaN"):
        m(torch.full((6, 3), float("nan")), torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match="progress fraction"):
        m.set_progress(1.5)


def test_new_miner_writes_only_mine() -> None:
    class FirstNegative(TripletMiner):
        def mine(self, batch):  # type: ignore[no-untyped-def]
            a, p = batch.positive_pairs()
            n = batch.negative_mask.float().argmax(dim=1)[a]
            return Triplets(a, p, n)

    y = torch.tensor([0, 0, 1, 1])
    t = FirstNegative()(torch.randn(4, 2), y.tolist())  # labels as a list are accepted
    assert t.anchor.tolist() == [0, 1, 2, 3]
    assert t.negative.tolist() == [2, 2, 0, 0]


def _big_batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.randn(1024, 64, generator=gen), torch.arange(64).repeat_interleave(16)


def test_batch_1024_quick() -> None:
    """B = 1,024 (64 classes x 16): batch-hard, hardest, and all with a cap."""
    x, y = _big_batch()
    assert len(create_miner("batch-hard")(x, y).anchor) == 1024
    assert len(create_miner("hardest")(x, y).anchor) == 1024 * 15
    capped = create_miner("all", max_triplets=100_000)(x, y)  # 15.5M qualify
    assert len(capped.anchor) == 100_000


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED - {"all"}))
def test_batch_1024_every_miner(name: str) -> None:
    x, y = _big_batch()
    t = create_miner(name)(x, y)
    assert 0 < len(t.anchor) <= 1024 * 15
