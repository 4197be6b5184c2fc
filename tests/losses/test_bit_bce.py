import numpy as np
import pytest
import torch

from deephash.losses.base import create_loss
from deephash.losses.bit_bce import BitBCELoss, TwoStepTargets


def test_targets_and_bit_bce_loss() -> None:
    codes = np.array([[1, -1, 1], [-1, -1, 1], [1, 1, -1]], dtype=np.int8)
    targets = TwoStepTargets(codes)
    assert targets.bits == 3 and len(targets) == 3
    idx = torch.tensor([2, 0])
    torch.testing.assert_close(targets.lookup(idx), torch.tensor([[1.0, 1, -1], [1, -1, 1]]))
    logits = torch.tensor([[0.5, -2.0, 1.0], [3.0, 0.1, -0.4]], dtype=torch.float64)
    t01 = (targets.lookup(idx) > 0).double()
    sig = torch.sigmoid(logits)
    ref = -(t01 * torch.log(sig) + (1 - t01) * torch.log(1 - sig)).mean()
    loss = create_loss("bit-bce", targets=targets)
    assert isinstance(loss, BitBCELoss)
    assert loss(logits, idx).loss.item() == pytest.approx(ref.item())
    assert BitBCELoss()(logits, targets.lookup(idx)).loss.item() == pytest.approx(ref.item())
    with pytest.raises(ValueError, match="holds no targets"):
        BitBCELoss()(logits, idx)
    with pytest.raises(ValueError, match=r"in \[0, 3\)"):
        targets.lookup(torch.tensor([3]))
    with pytest.raises(ValueError, match="must match logits"):
        loss(logits, torch.ones(2, 4))
