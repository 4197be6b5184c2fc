"""Seeded draws a protocol is made of: stratified subsets, training classes, validation folds."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["choose_train_classes", "stratified", "validation_fold"]


def stratified(
    cands: np.ndarray,
    labels: np.ndarray,
    amount: tuple[str, float] | None,
    rng: np.random.Generator,
    what: str,
) -> np.ndarray:
    """A class-stratified random subset of ``cands`` (sorted int64)."""
    if amount is None:
        return np.empty(0, np.int64)
    kind, value = amount
    cl = labels[cands]
    classes, counts = np.unique(cl, return_counts=True)
    if kind == "per_class":
        k = int(value)
        if k < 0:
            raise ValueError(f"{what}_per_class must be >= 0, got {value}")
        short = classes[counts < k]
        if short.size:
            raise ValueError(
                f"{what}_per_class={k}, but class {short[0]} has only {counts[classes == short[0]][0]} candidate images"
            )
        take = np.full(classes.size, k)
    else:
        if kind == "fraction":
            if not 0 <= float(value) < 1:
                raise ValueError(f"{what}_fraction must be in [0, 1), got {value}")
            total = round(float(value) * cands.size)
        else:
            total = int(value)
        if not 0 <= total <= cands.size:
            raise ValueError(f"{what}_size must be in [0, {cands.size}] here, got {value}")
        # Largest-remainder (Hamilton) allocation, proportional to class sizes; ties by class id.
        quota = total * counts / cands.size
        take = np.floor(quota).astype(np.int64)
        order = np.argsort(-(quota - take), kind="stable")
        take[order[: total - int(take.sum())]] += 1
    picked = [
        rng.choice(cands[cl == c], size=int(n), replace=False) for c, n in zip(classes, take) if n
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64) if picked else np.empty(0, np.int64)


def choose_train_classes(
    opts: dict[str, Any], classes: np.ndarray, rng: np.random.Generator
) -> list[int]:
    """A class-disjoint protocol's training classes, sorted: ``opts["train_classes"]`` drawn
    with ``rng`` when a count (default: 75% of ``classes``), checked when a list."""
    tc = opts.get("train_classes")
    if tc is None:
        tc = round(0.75 * classes.size)
    if isinstance(tc, int):
        if not 1 <= tc < classes.size:
            raise ValueError(
                f"train_classes must be in [1, {classes.size - 1}] to leave test classes, got {tc}"
            )
        return sorted(int(c) for c in rng.choice(classes, size=tc, replace=False))
    chosen = sorted({int(c) for c in tc})
    bad = sorted(set(chosen) - set(classes.tolist()))
    if bad or not 1 <= len(chosen) < classes.size:
        raise ValueError(
            f"train_classes must be a proper non-empty subset of the classes {classes.min()}..{classes.max()}; got {tc}"
        )
    return chosen


def validation_fold(
    train_classes: list[int], folds: Any, fold: Any, rng: np.random.Generator
) -> list[int]:
    """The training classes of fold ``fold`` of ``folds`` (seeded, class-disjoint, sizes as equal
    as possible with the smaller folds first), sorted."""
    n = len(train_classes)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ValueError(f"validation_folds must be an integer >= 2, got {folds!r}")
    if isinstance(fold, bool) or not isinstance(fold, int) or not 0 <= fold < folds:
        raise ValueError(f"validation_fold must be in 0..{folds - 1}, got {fold!r}")
    sizes = [n // folds + (1 if i >= folds - n % folds else 0) for i in range(folds)]
    start = sum(sizes[:fold])
    if sizes[fold] < 2 or n - sizes[fold] < 2:
        raise ValueError(
            f"validation fold {fold} of {folds} would hold {sizes[fold]} of the {n} training "
            "classes; class-disjoint validation needs at least 2 held-out classes (retrieval "
            "within one class is trivial) and at least 2 left to train on: change "
            "validation_folds or train_classes"
        )
    order = rng.permutation(np.asarray(train_classes, dtype=np.int64))
    return sorted(int(c) for c in order[start : start + sizes[fold]])
