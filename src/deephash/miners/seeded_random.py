"""Reproducible randomness for the random miners, on any device."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["SeededRandom"]


class SeededRandom:
    """Reproducible randomness on any device: one torch generator per device, one numpy rng.

    seed: int, or None for a fresh nondeterministic seed.
    """

    def __init__(self, seed: int | None) -> None:
        if seed is not None and (not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be a non-negative int or None, got {seed!r}")
        self.seed = seed
        self._torch: dict[str, torch.Generator] = {}
        self._numpy = np.random.default_rng(seed)

    def generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._torch:
            gen = torch.Generator(device=device)
            if self.seed is None:
                gen.seed()
            else:
                gen.manual_seed(self.seed)
            self._torch[key] = gen
        return self._torch[key]

    def uniform(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """float32 uniform in [0, 1) of the given shape."""
        return torch.rand(shape, generator=self.generator(device), device=device)

    def exponential(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        """float32 Exp(1) samples, strictly positive (for Gumbel-max sampling)."""
        u = self.uniform(shape, device)
        return (-torch.log1p(-u)).clamp_min(1e-30)

    @property
    def numpy(self) -> np.random.Generator:
        return self._numpy
