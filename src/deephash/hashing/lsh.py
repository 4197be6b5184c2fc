"""Locality-sensitive hashing with random hyperplanes (Charikar 2002, sign random projections).

Each bit is ``sign(wᵣᵀ (x − mean))`` with ``wᵣ ~ N(0, I)``. The hyperplanes pass through the
training mean rather than the origin: features such as ReLU activations are all positive, and
hyperplanes through the origin would then give very unbalanced bits. With centring, every bit
splits the data roughly in half for symmetric distributions.
"""

from __future__ import annotations

import numpy as np

from deephash.codes import pack_bits
from deephash.hashing._validation import check_bits, check_features

__all__ = ["LSH"]


class LSH:
    """Random-hyperplane LSH, sklearn style.

    Learned state after :meth:`fit`: ``mean_`` float64 (d,), ``planes_`` float64 (d, bits).
    """

    def __init__(self, bits: int, *, seed: int = 0) -> None:
        self.bits = check_bits(bits)
        self.seed = seed

    def fit(self, X: np.ndarray) -> LSH:
        """X: float (n, d). Draws ``bits`` Gaussian hyperplanes through the mean of X."""
        x = check_features(X)
        self.mean_ = x.mean(axis=0)
        rng = np.random.default_rng(self.seed)
        self.planes_ = rng.standard_normal((x.shape[1], self.bits))
        return self

    def project(self, X: np.ndarray) -> np.ndarray:
        """Real-valued projections float64 (n, bits); their signs are the code bits."""
        if not hasattr(self, "planes_"):
            raise ValueError("this LSH is not fitted yet; call fit(X) before encode/project")
        x = check_features(X)
        if x.shape[1] != self.planes_.shape[0]:
            raise ValueError(
                f"X has {x.shape[1]} features, LSH was fitted on {self.planes_.shape[0]}"
            )
        out: np.ndarray = (x - self.mean_) @ self.planes_
        return out

    def encode(self, X: np.ndarray) -> np.ndarray:
        """X: float (n, d). Returns packed codes uint8 (n, ceil(bits / 8)) in the faiss layout."""
        return pack_bits(self.project(X) >= 0)

    def fit_encode(self, X: np.ndarray) -> np.ndarray:
        """``fit(X).encode(X)``."""
        return self.fit(X).encode(X)
