import pytest
import torch

from deephash.losses.base import create_loss
from deephash.losses.dnnh import DNNHLoss
from deephash.losses.dtsh import DTSHLoss
from deephash.losses.quantization import (
    TripletQuantizationLoss,
    bit_balance,
    bit_decorrelation,
    quantization_error,
)

U = [[0.5, -0.25, 0.0], [-1.0, 0.75, 0.5], [0.25, 0.5, -0.5], [-0.5, -0.5, 0.25]]


def _hand_terms() -> tuple[float, float, float]:
    n, bits = len(U), len(U[0])
    q = sum(sum(((1 if v >= 0 else -1) - v) ** 2 for v in row) for row in U) / n
    means = [sum(row[r] for row in U) / n for r in range(bits)]
    bal = sum(m * m for m in means) / bits
    dec = 0.0
    for r in range(bits):
        for s in range(bits):
            g = sum(row[r] * row[s] for row in U) / n
            dec += (g - (1.0 if r == s else 0.0)) ** 2
    return q, bal, dec / bits**2


def test_terms_by_hand() -> None:
    u = torch.tensor(U, dtype=torch.float64)
    q, bal, dec = _hand_terms()
    assert quantization_error(u).item() == pytest.approx(q)
    assert bit_balance(u).item() == pytest.approx(bal)
    assert bit_decorrelation(u).item() == pytest.approx(dec)
    # ideal codes: binary, balanced, orthogonal columns
    h = torch.tensor([[1.0, 1], [1, -1], [-1, 1], [-1, -1]])
    assert quantization_error(h) == 0 and bit_balance(h) == 0 and bit_decorrelation(h) == 0


def test_wrapper_adds_terms_to_any_base() -> None:
    u = torch.tensor(U, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1])
    q, bal, dec = _hand_terms()
    base = DNNHLoss()
    wrapped = TripletQuantizationLoss(base, lam=0.3, mu=2.0, nu=0.7)
    ref = base(u, labels).loss.item() + 0.3 * q + 2.0 * bal + 0.7 * dec
    assert wrapped(u, labels).loss.item() == pytest.approx(ref)
    by_name = create_loss(
        "triplet-quant", base="dtsh", base_options={"alpha": 1.0, "lam": 0.0}, lam=0.5
    )
    ref2 = DTSHLoss(alpha=1.0, lam=0.0)(u, labels).loss.item() + 0.5 * q
    out = by_name(u, labels)
    assert out.loss.item() == pytest.approx(ref2) and out.num_terms == 8


def test_wrapper_errors() -> None:
    with pytest.raises(ValueError, match="unknown loss"):
        TripletQuantizationLoss("nope")
    with pytest.raises(ValueError, match="base_options only apply"):
        TripletQuantizationLoss(DNNHLoss(), base_options={"margin": 1.0})
    with pytest.raises(ValueError, match="mu must be >= 0"):
        TripletQuantizationLoss(DNNHLoss(), mu=-1.0)
    with pytest.raises(ValueError, match="relaxed codes must be"):
        quantization_error(torch.zeros(3))
