import itertools

import pytest
import torch

from deephash.losses.base import create_loss
from deephash.losses.dnnh import DNNHLoss


def test_dnnh_matches_brute_force() -> None:
    u = [[0.9, -0.2, 0.4], [0.5, -0.8, 0.1], [-0.7, 0.6, 0.2], [-0.1, 0.95, -0.6], [1.0, 1.0, -1.0]]
    labels = [0, 0, 1, 1, 2]
    f = [[(v + 1) / 2 for v in row] for row in u]  # the paper's [0, 1] outputs

    def sq(x: list[float], y: list[float]) -> float:
        return sum((a - b) ** 2 for a, b in zip(x, y))

    for margin in (0.0, 1.0, 2.0):
        terms = [
            max(0.0, margin - (sq(f[i], f[k]) - sq(f[i], f[j])))
            for i, j, k in itertools.product(range(5), repeat=3)
            if i != j and labels[i] == labels[j] and labels[i] != labels[k]
        ]
        out = DNNHLoss(margin=margin)(torch.tensor(u, dtype=torch.float64), torch.tensor(labels))
        assert out.loss.item() == pytest.approx(sum(terms) / len(terms))
        assert out.num_terms == len(terms)
        assert out.active_fraction == pytest.approx(sum(t > 0 for t in terms) / len(terms))


def test_dnnh_perfect_codes_have_zero_loss_with_paper_margin() -> None:
    # identical codes within a class, 2 differing bits across: d_neg - d_pos = 2 >= margin 1
    u = torch.tensor([[1.0, 1, 1], [1.0, 1, 1], [-1.0, -1, 1]])
    out = create_loss("dnnh")(u, torch.tensor([0, 0, 1]))
    assert out.loss.item() == 0.0 and out.active_fraction == 0.0
    with pytest.raises(ValueError, match="margin"):
        DNNHLoss(margin=-1)
