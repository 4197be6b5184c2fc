import itertools
from dataclasses import dataclass

import pytest
import torch

from deephash.losses.triplet_hash import all_triplets, resolve_miner, select_triplets


def test_all_triplets_matches_brute_force() -> None:
    labels = torch.tensor([0, 1, 0, 2, 1, 0])
    ref = [
        (a, p, n)
        for a, p, n in itertools.product(range(6), repeat=3)
        if a != p and labels[a] == labels[p] and labels[a] != labels[n]
    ]
    a, p, n = all_triplets(labels)
    assert list(zip(a.tolist(), p.tolist(), n.tolist())) == ref


@dataclass
class _T:
    anchor: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor


def test_select_triplets_accepts_dataclass_or_tuple_miners() -> None:
    emb = torch.randn(4, 3, requires_grad=True)
    labels = torch.tensor([0, 0, 1, 1])
    trip = (torch.tensor([0]), torch.tensor([1]), torch.tensor([2]))

    def tuple_miner(e: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
        assert not e.requires_grad
        return trip

    for miner in (tuple_miner, lambda e, y: _T(*trip)):
        a, p, n = select_triplets(emb, labels, miner)
        assert (a.tolist(), p.tolist(), n.tolist()) == ([0], [1], [2])
        assert a.dtype == torch.int64
    with pytest.raises(ValueError, match="miner must be None"):
        resolve_miner(3)  # type: ignore[arg-type]
