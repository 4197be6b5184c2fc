import pytest
import torch

from deephash.losses.base import create_loss
from deephash.losses.dsh import DSHLoss


def _brute(b: list[list[float]], labels: list[int], alpha: float, m: float) -> float:
    total, pairs = 0.0, 0
    for i in range(len(b)):
        for j in range(i + 1, len(b)):
            y = 0 if labels[i] == labels[j] else 1  # DSH: 0 similar, 1 dissimilar
            d = sum((x - z) ** 2 for x, z in zip(b[i], b[j]))
            reg = sum(abs(abs(x) - 1) for x in b[i]) + sum(abs(abs(x) - 1) for x in b[j])
            total += 0.5 * (1 - y) * d + 0.5 * y * max(m - d, 0.0) + alpha * reg
            pairs += 1
    return total / pairs


def test_dsh_matches_brute_force() -> None:
    b = [
        [1.2, -0.3, 0.5, 2.0],
        [0.9, -1.1, 0.0, 1.5],
        [-1.0, 0.8, 0.7, -0.2],
        [-0.5, 1.3, -1.4, -0.9],
        [0.1, 0.2, -0.3, 0.4],
    ]
    labels = [0, 0, 1, 1, 2]
    for alpha, margin in [(0.01, None), (0.5, 3.0), (0.0, 100.0)]:
        m = 2 * 4 if margin is None else margin
        out = DSHLoss(alpha=alpha, margin=margin)(
            torch.tensor(b, dtype=torch.float64), torch.tensor(labels)
        )
        assert out.loss.item() == pytest.approx(_brute(b, labels, alpha, m))
        assert out.num_terms == 10


def test_dsh_zero_for_ideal_codes_and_errors() -> None:
    # binary codes, same class identical, different classes at squared distance >= m = 2 * bits
    b = torch.tensor([[1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]])
    out = create_loss("dsh")(b, torch.tensor([5, 5, 7]))
    assert out.loss.item() == 0.0 and out.active_fraction == 0.0
    assert DSHLoss()(b[:1], torch.tensor([0])).num_terms == 0
    with pytest.raises(ValueError, match="margin"):
        DSHLoss(margin=0)
