"""Fixtures for the miner tests; puts this folder on sys.path for ``_miner_brute``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def small_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """24 points in 5-D, labels 4 classes x 6 (shuffled): every rule has work to do."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(24, 5, generator=gen)
    y = torch.arange(4).repeat_interleave(6)[torch.randperm(24, generator=gen)]
    return x, y
