"""Two-step triplet hashing (Zhuang, Lin, Shen & Reid, "Fast training of triplet-based deep binary
embedding networks", CVPR 2016).

Step 1 — binary code inference (:class:`TripletCodeInference`). Target codes Z ∈ {−1, 1}^{n×bits}
for the training set are inferred from triplet constraints ``(i, j, k)`` (``i, j`` same class, ``k``
not) by minimizing ``Σ_t ℓ(d_ij − d_ik)``, ``d`` the Hamming distance and ``ℓ`` a hinge
``max(0, x + margin)`` (or its square). As in the paper (Sec. 3.1), the codes are optimized one bit
at a time with the other bits fixed. With bit ``r`` free, ``d_ij − d_ik = c_t + ½ (z_i z_k − z_i
z_j)`` where ``c_t`` comes from the other bits, so the loss of triplet ``t`` takes four values and is
exactly ``w0 + w1 z_i z_j − w1 z_i z_k + w3 z_j z_k`` with

    w1 = ¼ (ℓ(c − 1) − ℓ(c + 1)),   w3 = ¼ (2 ℓ(c) − ℓ(c − 1) − ℓ(c + 1)):

the high-order (triplet) problem reduces to a binary quadratic problem ``min_z zᵀ A z`` over the
bit's column — the paper's reduction. The paper solves it with block GraphCut, blocks being
sets of samples whose sub-problem is submodular (a class is such a block: its internal terms, the
anchor–positive ones, have ``w1 <= 0`` for non-decreasing ``ℓ``).
**Simplification (ours):** instead of an exact min-cut per block we run the same block structure
with two cheap moves that can only lower the objective — single-sample moves ``z_p ← −sign(h_p)``
(``h_p`` the local field, iterated conditional modes) and whole-class flips (flip a class block when
that lowers the cross-class terms) — repeated until no move helps, over all bits for ``n_rounds``
rounds. Triplets are sampled once, ``triplets_per_sample`` per anchor (the paper samples triplets
too), so memory and time grow linearly in ``n · triplets_per_sample · bits``: 60,000 samples × 48 bits
× 10 triplets per sample take about 25 s of CPU time, 3 rounds (numba kernel, single-threaded;
the slow test in ``tests/hashing/test_two_step.py`` checks it stays under 5 minutes).

Step 2 — hash function fitting as multi-label classification (the paper's Sec. 3.2): the network
outputs one logit per bit (``HashHead(kind="linear")``) and is trained with a per-bit binary
cross-entropy towards Z: loss ``bit-bce`` (:class:`deephash.losses.bit_bce.BitBCELoss`, a loss
like the others); :class:`deephash.losses.bit_bce.TwoStepTargets` holds Z and looks targets up by
dataset sample index. A trainer calls it as

    targets = TwoStepTargets(inference.codes_)          # built once, after step 1
    loss_fn = create_loss("bit-bce", targets=targets)
    out = loss_fn(logits, sample_indices)               # (B, bits), int64 (B,) dataset indices

or, without ``targets``, ``loss_fn(logits, target_codes)`` with target codes (B, bits) in {−1, +1}.
The paper interleaves the steps (re-inferring Z from the network's codes); pass the network's codes
as ``init_codes`` to :meth:`TripletCodeInference.fit` to do that.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from deephash._numba import njit

__all__ = [
    "TripletCodeInference",
    "sample_triplets",
    "spread_codes",
    "triplet_satisfaction",
]

TripletLossKind = Literal["hinge", "squared-hinge"]


def _check_labels(labels: np.ndarray) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] == 0:
        raise ValueError(f"labels must be a non-empty 1-D array (n,), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {y.dtype}")
    return y.astype(np.int64)


def sample_triplets(labels: np.ndarray, per_sample: int, *, seed: int = 0) -> np.ndarray:
    """Sample ``per_sample`` triplets per anchor, uniformly over valid positives and negatives.

    labels: int (n,). Returns int64 (m, 3) rows ``(anchor, positive, negative)`` with
    ``positive != anchor``, ``labels[positive] == labels[anchor] != labels[negative]``; anchors
    alone in their class get none, so ``m <= n * per_sample``.
    """
    y = _check_labels(labels)
    if per_sample <= 0:
        raise ValueError(f"per_sample must be positive, got {per_sample}")
    order = np.argsort(y, kind="stable")
    classes, start, count = np.unique(y[order], return_index=True, return_counts=True)
    if classes.shape[0] < 2:
        raise ValueError("triplets need at least two classes; all labels are equal")
    cls = np.searchsorted(classes, y)
    rank = np.empty_like(order)
    rank[order] = np.arange(y.shape[0])  # position of each sample in the class-sorted order
    anchors = np.flatnonzero(count[cls] >= 2)
    if anchors.size == 0:
        raise ValueError("triplets need a class with at least two samples")
    a = np.repeat(anchors, per_sample)
    ca = cls[a]
    rng = np.random.default_rng(seed)
    # positive: a random other member of the anchor's class (skip the anchor's own slot)
    off = (rng.random(a.size) * (count[ca] - 1)).astype(np.int64)
    own = rank[a] - start[ca]
    off += off >= own
    p = order[start[ca] + off]
    # negative: a random slot outside the anchor's class block of the sorted order
    r = (rng.random(a.size) * (y.shape[0] - count[ca])).astype(np.int64)
    r += np.where(r >= start[ca], count[ca], 0)
    n = order[r]
    return np.stack([a, p, n], axis=1)


def triplet_satisfaction(codes: np.ndarray, triplets: np.ndarray) -> float:
    """Share of triplets with ``d_H(anchor, positive) < d_H(anchor, negative)``.

    codes: (n, bits), an entry > 0 is a one-bit; triplets: int (m, 3). Returns a float in [0, 1].
    """
    z = np.asarray(codes) > 0
    t = np.asarray(triplets)
    d_pos = (z[t[:, 0]] != z[t[:, 1]]).sum(axis=1)
    d_neg = (z[t[:, 0]] != z[t[:, 2]]).sum(axis=1)
    return float(np.mean(d_pos < d_neg))


def _loss(x: np.ndarray, margin: float, kind: str) -> np.ndarray:
    h = np.maximum(x + margin, 0.0)
    return h * h if kind == "squared-hinge" else h


@njit
def _incidence(
    trip: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - jit
    """CSR lists, per sample, of the triplets it belongs to: for each entry the triplet id, the
    sample's role (0 anchor, 1 positive, 2 negative) and the two other members, ordered so that
    the second one is always in another class (and the first too for a negative)."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    for t in range(trip.shape[0]):
        for role in range(3):
            indptr[trip[t, role] + 1] += 1
    for i in range(n):
        indptr[i + 1] += indptr[i]
    fill = indptr[:-1].copy()
    m3 = 3 * trip.shape[0]
    tid = np.empty(m3, dtype=np.int32)
    role_of = np.empty(m3, dtype=np.int8)
    other1 = np.empty(m3, dtype=np.int32)
    other2 = np.empty(m3, dtype=np.int32)
    for t in range(trip.shape[0]):
        i, j, k = trip[t, 0], trip[t, 1], trip[t, 2]
        for role, s, o1, o2 in ((0, i, j, k), (1, j, i, k), (2, k, i, j)):
            e = fill[s]
            tid[e], role_of[e], other1[e], other2[e] = t, role, o1, o2
            fill[s] += 1
    return indptr, tid, role_of, other1, other2


@njit
def _coefficients(
    w1: np.ndarray, w3: np.ndarray, tid: np.ndarray, role: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - jit
    """Per entry, the weights of ``z[other1]`` and ``z[other2]`` in the sample's local field.

    Triplet energy ``w1 z_i z_j − w1 z_i z_k + w3 z_j z_k``: anchor (j, k) -> (w1, −w1);
    positive (i, k) -> (w1, w3); negative (i, j) -> (−w1, w3)."""
    ca = np.empty(tid.shape[0])
    cb = np.empty(tid.shape[0])
    for e in range(tid.shape[0]):
        t = tid[e]
        if role[e] == 0:
            ca[e], cb[e] = w1[t], -w1[t]
        elif role[e] == 1:
            ca[e], cb[e] = w1[t], w3[t]
        else:
            ca[e], cb[e] = -w1[t], w3[t]
    return ca, cb


@njit
def _solve_bit(
    z: np.ndarray,
    ca: np.ndarray,
    cb: np.ndarray,
    role: np.ndarray,
    other1: np.ndarray,
    other2: np.ndarray,
    indptr: np.ndarray,
    class_ptr: np.ndarray,
    class_members: np.ndarray,
    max_sweeps: int,
) -> int:  # pragma: no cover - jit
    """Lower the bit's energy ``Σ_p z_p h_p / 2`` in place by single-sample and whole-class
    moves; returns the number of moves."""
    n = z.shape[0]
    moves = 0
    for _ in range(max_sweeps):
        changed = 0
        for p in range(n):
            h = 0.0
            for e in range(indptr[p], indptr[p + 1]):
                h += ca[e] * z[other1[e]] + cb[e] * z[other2[e]]
            if z[p] * h > 1e-12:  # flipping p lowers the energy by 2 |h_p|
                z[p] = -z[p]
                changed += 1
        for c in range(class_ptr.shape[0] - 1):
            # a joint flip of class c changes only its cross-class terms: ΔE = −2 gain
            gain = 0.0
            for q in range(class_ptr[c], class_ptr[c + 1]):
                p = class_members[q]
                h = 0.0
                for e in range(indptr[p], indptr[p + 1]):
                    h += cb[e] * z[other2[e]]
                    if role[e] == 2:
                        h += ca[e] * z[other1[e]]
                gain += z[p] * h
            if gain > 1e-12:
                for q in range(class_ptr[c], class_ptr[c + 1]):
                    z[class_members[q]] = -z[class_members[q]]
                changed += 1
        moves += changed
        if changed == 0:
            break
    return moves


def spread_codes(count: int, bits: int, *, seed: int = 0, candidates: int = 4096) -> np.ndarray:
    """``count`` codes of ``bits`` in {−1, +1} chosen to lie far apart: int8 (count, bits).

    Greedy max–min selection: the first code is random; each next one is, among ``candidates``
    random codes, the one whose smallest Hamming distance to the codes chosen so far is largest
    (ties: the first). Seeded, so the same arguments give the same codes.
    """
    if count <= 0 or bits <= 0:
        raise ValueError(f"count and bits must be positive, got {count}, {bits}")
    rng = np.random.default_rng(seed)
    pool = np.where(rng.random((candidates, bits)) < 0.5, 1, -1).astype(np.int8)
    chosen = [pool[0]]
    nearest = (pool != pool[0]).sum(axis=1)
    for _ in range(count - 1):
        best = int(np.argmax(nearest))
        chosen.append(pool[best])
        nearest = np.minimum(nearest, (pool != pool[best]).sum(axis=1))
    return np.stack(chosen)


class TripletCodeInference:
    """Step 1 of the two-step method: infer binary target codes from triplet constraints.

    Settings: ``bits``; ``triplets_per_sample`` (sampled once per anchor); ``margin`` in Hamming
    units (default ``bits / 4``); ``loss`` ``"hinge"`` or ``"squared-hinge"``; ``n_rounds`` passes
    over all bits; ``max_sweeps`` per bit sub-problem; ``seed``; ``init`` the starting codes:
    ``"random"`` (independent random bits per sample) or ``"class"`` (ours: one code per class,
    chosen greedily to keep the classes' codes far apart in Hamming distance, every sample starting
    from its class's code). With short codes (12 bits) a random start ends in many codes per class
    spread over the code space, which ranks a class's members apart; the class start satisfies
    every triplet whose classes' codes are at least the margin apart from the first round.

    Learned state after :meth:`fit`: ``codes_`` int8 (n, bits) in {−1, +1}, ``triplets_`` int64
    (m, 3), ``loss_history_`` float64 (n_rounds + 1,): mean triplet loss at the start and after
    each round (non-increasing).
    """

    def __init__(
        self,
        bits: int,
        *,
        triplets_per_sample: int = 10,
        margin: float | None = None,
        loss: TripletLossKind = "hinge",
        n_rounds: int = 3,
        max_sweeps: int = 10,
        seed: int = 0,
        init: Literal["random", "class"] = "random",
    ) -> None:
        if init not in ("random", "class"):
            raise ValueError(f"init must be 'random' or 'class', got {init!r}")
        if isinstance(bits, bool) or not isinstance(bits, int) or bits <= 0:
            raise ValueError(f"bits must be a positive int, got {bits!r}")
        if loss not in ("hinge", "squared-hinge"):
            raise ValueError(f"loss must be 'hinge' or 'squared-hinge', got {loss!r}")
        if triplets_per_sample <= 0 or n_rounds < 0 or max_sweeps <= 0:
            raise ValueError(
                "triplets_per_sample and max_sweeps must be positive and n_rounds >= 0, got "
                f"{triplets_per_sample}, {max_sweeps}, {n_rounds}"
            )
        if margin is not None and margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.bits = bits
        self.triplets_per_sample = triplets_per_sample
        self.margin = margin
        self.loss = loss
        self.n_rounds = n_rounds
        self.max_sweeps = max_sweeps
        self.seed = seed
        self.init = init

    def _mean_loss(self, d_pos: np.ndarray, d_neg: np.ndarray, margin: float) -> float:
        return float(_loss((d_pos - d_neg).astype(np.float64), margin, self.loss).mean())

    def fit(
        self,
        labels: np.ndarray,
        *,
        triplets: np.ndarray | None = None,
        init_codes: np.ndarray | None = None,
    ) -> TripletCodeInference:
        """Infer codes for ``n`` training samples.

        labels: int (n,). triplets: optional int (m, 3) ``(anchor, positive, negative)`` rows to use
        instead of sampling. init_codes: optional (n, bits) start (entry > 0 is +1), e.g. the
        network's codes when interleaving; default random (seeded).
        """
        y = _check_labels(labels)
        n = y.shape[0]
        margin = self.bits / 4 if self.margin is None else float(self.margin)
        if triplets is None:
            trip = sample_triplets(y, self.triplets_per_sample, seed=self.seed)
        else:
            trip = np.ascontiguousarray(triplets, dtype=np.int64)
            if trip.ndim != 2 or trip.shape[1] != 3 or trip.shape[0] == 0:
                raise ValueError(f"triplets must be a non-empty int array (m, 3), got {trip.shape}")
            if trip.min() < 0 or trip.max() >= n:
                raise ValueError(
                    f"triplet indices must be in [0, {n}), got [{trip.min()}, {trip.max()}]"
                )
            bad = (trip[:, 0] == trip[:, 1]) | (y[trip[:, 0]] != y[trip[:, 1]])
            bad |= y[trip[:, 0]] == y[trip[:, 2]]
            if bad.any():
                raise ValueError(
                    f"{int(bad.sum())} triplets are not (anchor, same-class, other-class)"
                )
        rng = np.random.default_rng(self.seed + 1)
        if init_codes is None and self.init == "class":
            classes, inverse = np.unique(y, return_inverse=True)
            z = spread_codes(classes.size, self.bits, seed=self.seed)[inverse]
        elif init_codes is None:
            z = np.where(rng.random((n, self.bits)) < 0.5, 1, -1).astype(np.int8)
        else:
            init = np.asarray(init_codes)
            if init.shape != (n, self.bits):
                raise ValueError(f"init_codes must be ({n}, {self.bits}), got {init.shape}")
            z = np.where(init > 0, 1, -1).astype(np.int8)

        a, p, k = trip[:, 0], trip[:, 1], trip[:, 2]
        d_pos = (z[a] != z[p]).sum(axis=1).astype(np.int32)
        d_neg = (z[a] != z[k]).sum(axis=1).astype(np.int32)
        indptr, tid, role, other1, other2 = _incidence(trip, n)
        cls_order = np.argsort(y, kind="stable")
        _, cls_start = np.unique(y[cls_order], return_index=True)
        class_ptr = np.append(cls_start, n).astype(np.int64)
        history = [self._mean_loss(d_pos, d_neg, margin)]
        for _ in range(self.n_rounds):
            for r in range(self.bits):
                col = np.ascontiguousarray(z[:, r])
                # distances without bit r; then the triplet's loss as a quadratic in bit r
                c_pos = d_pos - (col[a] != col[p])
                c_neg = d_neg - (col[a] != col[k])
                c = (c_pos - c_neg).astype(np.float64)
                lm, l0, lp = (_loss(c + s, margin, self.loss) for s in (-1.0, 0.0, 1.0))
                w1 = 0.25 * (lm - lp)
                w3 = 0.25 * (2.0 * l0 - lm - lp)
                ca, cb = _coefficients(w1, w3, tid, role)
                _solve_bit(
                    col, ca, cb, role, other1, other2, indptr, class_ptr, cls_order, self.max_sweeps
                )
                z[:, r] = col
                d_pos = (c_pos + (col[a] != col[p])).astype(np.int32)
                d_neg = (c_neg + (col[a] != col[k])).astype(np.int32)
            history.append(self._mean_loss(d_pos, d_neg, margin))
        self.codes_ = z
        self.triplets_ = trip
        self.loss_history_ = np.asarray(history)
        return self
