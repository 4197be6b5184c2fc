"""Brute-force references shared by the miner tests: plain-Python loops over index triples."""

from __future__ import annotations

import math

import torch


def py_dist(
    x: torch.Tensor, metric: str = "euclidean", normalize: bool = True
) -> list[list[float]]:
    """Distance matrix by a Python double loop (math.dist / dot products), as nested lists."""
    rows = [list(map(float, r)) for r in x.tolist()]
    if normalize or metric == "cosine":
        rows = [[v / math.sqrt(sum(t * t for t in r)) for v in r] for r in rows]
    out = []
    for u in rows:
        line = []
        for v in rows:
            if metric == "cosine":
                line.append(1.0 - sum(a * b for a, b in zip(u, v)))
            else:
                d = math.dist(u, v)
                line.append(d * d if metric == "squared_euclidean" else d)
        out.append(line)
    return out


def valid_triplets(labels: list[int]) -> list[tuple[int, int, int]]:
    """Every (a, p, n) with y_a == y_p, a != p, y_n != y_a, lexicographic."""
    b = len(labels)
    return [
        (a, p, n)
        for a in range(b)
        for p in range(b)
        if p != a and labels[p] == labels[a]
        for n in range(b)
        if labels[n] != labels[a]
    ]


def as_set(t: tuple[torch.Tensor, ...]) -> set[tuple[int, ...]]:
    return set(zip(*(x.tolist() for x in t)))
