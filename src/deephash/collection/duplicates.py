"""Near-duplicate groups of a collection: items that are copies of one another.

Each item searches the collection with its own stored code (and descriptor): its nearest other
item (``neighbours`` of them) is a near duplicate when its code is within Hamming ``radius`` and,
in a collection that stores descriptors, its re-rank score (cosine similarity of the descriptors)
is at least ``min_score``.
Without descriptors only the radius decides (a hashing model maps a whole class onto one code, so
expect whole classes at radius 0 there). Pairs are joined transitively into groups (union-find).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deephash.collection.collection import Collection

__all__ = [
    "DEFAULT_DUPLICATE_RADIUS",
    "DEFAULT_MIN_SCORE",
    "DEFAULT_NEIGHBOURS",
    "DuplicateGroups",
    "find_duplicates",
    "group_pairs",
]

DEFAULT_DUPLICATE_RADIUS = 8
# chosen on planted copies of validation images (benchmarks/bench_duplicates.py --split validation):
# the best pair F1 (0.599) of the scores and neighbour counts tried
DEFAULT_MIN_SCORE = 0.99
DEFAULT_NEIGHBOURS = 1


@dataclass(frozen=True)
class DuplicateGroups:
    """groups: each a sorted list of ids (at least 2), ordered by their smallest id; pairs: the
    near-duplicate pairs (i < j) found before joining."""

    groups: list[list[int]]
    pairs: list[tuple[int, int]]


def _root(parent: dict[int, int], i: int) -> int:
    while parent.setdefault(i, i) != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def find_duplicates(
    collection: Collection,
    *,
    radius: int = DEFAULT_DUPLICATE_RADIUS,
    min_score: float | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    batch: int = 500,
) -> DuplicateGroups:
    """Near-duplicate groups of ``collection`` (see the module).

    radius: largest Hamming distance between the codes of two duplicates. min_score: smallest
    re-rank score (default :data:`DEFAULT_MIN_SCORE`; only for a collection with descriptors).
    neighbours: how many nearest other items of each item may pair with it (1: each item links to
    its nearest other item only, which keeps a class of look-alikes from chaining into one group;
    exact duplicates still join, as each links to one of them).
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if neighbours < 1:
        raise ValueError(f"neighbours must be positive, got {neighbours}")
    if min_score is not None and not collection.reranks:
        raise ValueError(
            f"collection {collection.directory} stores no descriptors, so --min-score cannot "
            "apply; near duplicates are then items within --radius"
        )
    threshold = DEFAULT_MIN_SCORE if min_score is None else float(min_score)
    ids, codes, desc = collection.ids, collection.codes, collection.descriptors
    k = min(neighbours + 1, max(len(ids), 1))
    pairs: set[tuple[int, int]] = set()
    for s in range(0, len(ids), batch):
        q_desc = None if desc is None else desc[s : s + batch]
        hits = collection.search(codes[s : s + batch], k, radius, descriptors=q_desc)
        for item_id, row in zip(ids[s : s + batch].tolist(), hits):
            for h in row:
                if h.id == item_id or (h.score is not None and h.score < threshold):
                    continue
                pairs.add((min(item_id, h.id), max(item_id, h.id)))
    parent: dict[int, int] = {}
    for i, j in sorted(pairs):
        ri, rj = _root(parent, i), _root(parent, j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    members: dict[int, list[int]] = {}
    for i in parent:
        members.setdefault(_root(parent, i), []).append(i)
    groups = sorted((sorted(g) for g in members.values() if len(g) > 1), key=lambda g: g[0])
    return DuplicateGroups(groups, sorted(pairs))


def group_pairs(groups: list[list[int]]) -> set[tuple[int, int]]:
    """Every pair (i < j) inside each group: what a grouping claims to be duplicates."""
    out: set[tuple[int, int]] = set()
    for g in groups:
        arr = np.asarray(sorted(g))
        for a in range(len(arr)):
            for b in range(a + 1, len(arr)):
                out.add((int(arr[a]), int(arr[b])))
    return out
