"""Iterative quantization (Gong & Lazebnik, CVPR 2011; PAMI 2013 Sec. 2).

1. Centre the data (zero mean, so that sign thresholds at the mean and bits are balanced) and
   project on the top ``bits`` principal directions: ``V = (X − μ) W``, W (d, bits).
2. Find an orthogonal rotation R minimizing the quantization loss ``Q(B, R) = ||B − V R||²_F``
   (Eq. 2) by alternating, for ``n_iter`` iterations (50 in the paper), from a random orthogonal R:
   ``B = sign(V R)``, then the orthogonal Procrustes solution ``R = S Ŝᵀ`` from the SVD
   ``Vᵀ B = S Ω Ŝᵀ`` (Sec. 2.3). Each step cannot increase Q.

Codes: ``sign((X − μ) W R)``.
"""

from __future__ import annotations

import numpy as np

from deephash.codes import pack_bits
from deephash.hashing._validation import check_bits, check_features

__all__ = ["ITQ"]


def _sign(x: np.ndarray) -> np.ndarray:
    return np.where(x >= 0, 1.0, -1.0)


class ITQ:
    """PCA + iterative quantization, sklearn style.

    Learned state after :meth:`fit`: ``mean_`` float64 (d,), ``components_`` float64 (d, bits)
    (PCA directions, by decreasing variance), ``rotation_`` float64 (bits, bits) orthogonal, and
    ``loss_history_`` float64 (n_iter,): ``||B − V R||²_F`` after each iteration's R update.
    """

    def __init__(self, bits: int, *, n_iter: int = 50, seed: int = 0) -> None:
        self.bits = check_bits(bits)
        if n_iter < 0:
            raise ValueError(f"n_iter must be >= 0, got {n_iter}")
        self.n_iter = n_iter
        self.seed = seed

    def fit(self, X: np.ndarray) -> ITQ:
        """X: float (n, d) with ``bits <= d`` and ``bits <= n``."""
        x = check_features(X)
        n, d = x.shape
        if self.bits > d:
            raise ValueError(
                f"ITQ needs bits <= feature dimension: {self.bits} bits > d={d}; "
                "use fewer bits or LSH, which has no such limit"
            )
        if self.bits > n:
            raise ValueError(f"ITQ needs at least bits={self.bits} training samples, got {n}")
        self.mean_ = x.mean(axis=0)
        xc = x - self.mean_
        cov = xc.T @ xc / n
        _, eigvec = np.linalg.eigh(cov)  # eigenvalues ascending
        self.components_ = eigvec[:, ::-1][:, : self.bits].copy()
        v = xc @ self.components_
        rng = np.random.default_rng(self.seed)
        r, _ = np.linalg.qr(rng.standard_normal((self.bits, self.bits)))
        history = np.empty(self.n_iter)
        # ||B − V R||² = ||B||² + ||V||² − 2 tr(Bᵀ V R) since R is orthogonal, and ||B||² = n·bits:
        # the loss comes from the (bits, bits) matrix Vᵀ B without another pass over the data.
        const = n * self.bits + float(np.sum(v * v))
        for it in range(self.n_iter):
            b = _sign(v @ r)
            vtb = v.T @ b
            s, _, sh_t = np.linalg.svd(vtb)
            r = s @ sh_t
            history[it] = const - 2.0 * float(np.sum(vtb * r))
        self.rotation_ = r
        self.loss_history_ = history
        return self

    def project(self, X: np.ndarray) -> np.ndarray:
        """Rotated PCA projections float64 (n, bits); their signs are the code bits."""
        if not hasattr(self, "rotation_"):
            raise ValueError("this ITQ is not fitted yet; call fit(X) before encode/project")
        x = check_features(X)
        if x.shape[1] != self.mean_.shape[0]:
            raise ValueError(
                f"X has {x.shape[1]} features, ITQ was fitted on {self.mean_.shape[0]}"
            )
        out: np.ndarray = (x - self.mean_) @ self.components_ @ self.rotation_
        return out

    def encode(self, X: np.ndarray) -> np.ndarray:
        """X: float (n, d). Returns packed codes uint8 (n, ceil(bits / 8)) in the faiss layout."""
        return pack_bits(self.project(X) >= 0)

    def fit_encode(self, X: np.ndarray) -> np.ndarray:
        """``fit(X).encode(X)``."""
        return self.fit(X).encode(X)
