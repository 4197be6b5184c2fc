"""CSQ: central similarity quantization with hash centres (Yuan et al., CVPR 2020)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deephash.losses._proxies import check_class_batch, check_sizes
from deephash.losses.base import LossOutput, MetricLoss, register_loss

__all__ = ["CSQLoss", "hadamard", "hash_centers"]

# Random centres: draws tried before keeping the best one (the authors' code tries 20).
_CENTER_DRAWS = 100


def hadamard(n: int) -> np.ndarray:
    """Sylvester's Hadamard matrix, int64 (n, n) of ±1 with ``H Hᵀ = n I``; n a power of 2."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"a Sylvester Hadamard matrix needs a power of 2, got {n}")
    h = np.ones((1, 1), dtype=np.int64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def _min_distance(centers: np.ndarray) -> tuple[int, float]:
    """(min, mean) Hamming distance over the pairs of ±1 rows."""
    c = centers.shape[0]
    dist = (centers.shape[1] - centers @ centers.T) // 2
    upper = dist[np.triu_indices(c, k=1)]
    return int(upper.min()), float(upper.mean())


def hash_centers(num_classes: int, bits: int, *, seed: int = 0) -> np.ndarray:
    """One hash centre per class, float32 (num_classes, bits) of ±1, as CSQ builds them (Yuan et
    al. 2020, and the authors' code).

    When ``bits`` is a power of 2, the first ``min(num_classes, 2 * bits)`` centres are the rows of
    the Hadamard matrix ``H`` and then of ``-H``: any two of them differ in ``bits / 2`` bits (a row
    and its negation in all ``bits``). The remaining centres (all of them for other ``bits``) are
    random with exactly ``bits // 2`` bits set to +1 (the authors' Bernoulli draw); the draw is
    repeated until the minimum pairwise distance exceeds ``bits / 4`` and the mean reaches
    ``bits / 2`` (the authors' criterion), keeping the draw with the largest minimum distance if
    none qualifies within 100 tries. Deterministic for a given ``seed``.
    """
    check_sizes(bits, num_classes)
    fixed = np.zeros((0, bits), dtype=np.int64)
    if bits & (bits - 1) == 0:
        h = hadamard(bits)
        fixed = np.concatenate([h, -h])[:num_classes]
    extra = num_classes - fixed.shape[0]
    if extra == 0:
        return fixed.astype(np.float32)
    rng = np.random.default_rng(seed)
    best, best_key = None, None
    for _ in range(_CENTER_DRAWS):
        draw = -np.ones((extra, bits), dtype=np.int64)
        for row in draw:
            row[rng.choice(bits, bits // 2, replace=False)] = 1
        centers = np.concatenate([fixed, draw])
        lo, mean = _min_distance(centers)
        if lo > bits / 4 and mean >= bits / 2:
            return centers.astype(np.float32)
        if best_key is None or (lo, mean) > best_key:
            best, best_key = centers, (lo, mean)
    assert best is not None
    return best.astype(np.float32)


@register_loss("csq")
class CSQLoss(MetricLoss):
    """Central similarity quantization, Yuan, Wang, Zhang, Tay, Jie, Liu & Feng, "Central
    Similarity Quantization for Efficient Image and Video Retrieval", CVPR 2020: every class has a
    fixed hash centre ``c`` (:func:`hash_centers`, far apart in Hamming space) and each relaxed
    code ``h`` in (-1, 1) is pulled to its class's centre bit by bit:

        L = mean_{i,k} BCE((h_ik + 1) / 2, (c_{y_i,k} + 1) / 2) + λ · mean_{i,k} (|h_ik| - 1)²

    the central similarity term (as the authors' and DeepHash-pytorch's code compute it, averaged
    over samples and bits) plus the quantization term of DeepHash-pytorch (the paper uses
    log cosh(|h| - 1) instead). Every code then sits near one of C well-separated
    corners, and similar codes share a centre: a classifier in Hamming space that needs no pairs
    or triplets. Expects codes in [-1, 1] (the ``tanh`` hash head; anything else is an error);
    BCE's logarithm is clamped at -100 as ``torch`` does.

    embedding_dim: bits; num_classes: C (labels in [0, C)); lam: λ (1e-4, DeepHash-pytorch's
    value); seed: the centres' random draw (only used when they are not all Hadamard rows). The
    centres are a buffer, saved with the loss.
    forward(codes float (B, bits), labels int (B,)) -> LossOutput (num_terms = B,
    active_fraction = share of samples whose sign code is nearer (Hamming) to another class's
    centre than to its own, ties counting as wrong).
    """

    centers: torch.Tensor

    def __init__(
        self, *, embedding_dim: int, num_classes: int, lam: float = 1e-4, seed: int = 0
    ) -> None:
        super().__init__()
        if lam < 0:
            raise ValueError(f"lam must be >= 0, got {lam}")
        self.embedding_dim = int(embedding_dim)
        self.num_classes = int(num_classes)
        self.lam = float(lam)
        self.seed = int(seed)
        centers = hash_centers(self.num_classes, self.embedding_dim, seed=self.seed)
        self.register_buffer("centers", torch.from_numpy(centers))

    def compute(self, embeddings: torch.Tensor, labels: torch.Tensor) -> LossOutput:
        check_class_batch(embeddings, labels, self.embedding_dim, self.num_classes)
        if labels.numel() == 0:
            return LossOutput(embeddings.sum() * 0.0, 0, 0.0)
        h = embeddings
        if bool((h.detach().abs() > 1).any()):
            raise ValueError(
                "csq needs relaxed codes in [-1, 1]; use the tanh hash head (head: tanh), got "
                f"values up to {float(h.detach().abs().max()):.3g}"
            )
        c = self.centers.to(h.dtype)[labels]
        center = F.binary_cross_entropy((h + 1) / 2, (c + 1) / 2)
        quant = ((h.abs() - 1) ** 2).mean()
        with torch.no_grad():
            agree = torch.where(h >= 0, 1.0, -1.0).to(h.dtype) @ self.centers.to(h.dtype).T
            own = agree.gather(1, labels[:, None])
            others = agree.scatter(1, labels[:, None], float("-inf"))
            wrong = float((others.max(dim=1, keepdim=True).values >= own).float().mean())
        return LossOutput(center + self.lam * quant, int(labels.shape[0]), wrong)
