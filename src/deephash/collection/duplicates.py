"""Near-duplicate groups of a collection: items that are copies of one another.

Each item searches the collection with its own stored code (and descriptor): its nearest other
item (``neighbours`` of them) is a near duplicate when its code is within Hamming ``radius`` and,
in a collection that stores float descriptors, its re-rank score (cosine similarity of the
descriptors) is at least ``min_score``.
Without descriptors only the radius decides (a hashing model maps a whole class onto one code, so
expect whole classes at radius 0 there).

A collection of instance bits (a binary descriptor kind) pairs items by their descriptors alone:
each item's ``neighbours`` nearest other items by (descriptor Hamming distance, id) that are at
most ``max_distance`` bits away (default :func:`default_max_distance`), whatever their class
codes (a copy's class code may differ from its source's); ``radius``, only when given, also asks
for codes within it, and ``min_score`` may stand for the distance (score ``1 - 2 d / D``).

Pairs are joined transitively into groups (union-find).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from deephash.checks import check_count
from deephash.codes import hamming_distance_matrix
from deephash.collection.collection import Collection

__all__ = [
    "DEFAULT_DUPLICATE_RADIUS",
    "DEFAULT_MAX_DISTANCE_PER_128_BITS",
    "DEFAULT_MIN_SCORE",
    "DEFAULT_NEIGHBOURS",
    "DuplicateGroups",
    "default_max_distance",
    "find_duplicates",
    "group_pairs",
]

DEFAULT_DUPLICATE_RADIUS = 8
# chosen on planted copies of validation images (benchmarks/bench_duplicates.py --split validation):
# the best pair F1 (0.599) of the scores and neighbour counts tried
DEFAULT_MIN_SCORE = 0.99
DEFAULT_NEIGHBOURS = 1
# instance bits: differing bits per 128 (rounded down), chosen on planted copies of validation
# images with runs that held validation out (bench_duplicates.py --descriptor instance --split
# validation): the best pair F1 at 128 bits, the shipped recipe's width, was at 6 (0.681; 5:
# 0.664, 7: 0.672); at 64 bits the best was 2 (0.610; 3: 0.590). A share of the width, as a copy
# flips a like share of a wider descriptor's bits.
DEFAULT_MAX_DISTANCE_PER_128_BITS = 6


@dataclass(frozen=True)
class DuplicateGroups:
    """groups: each a sorted list of ids (at least 2), ordered by their smallest id; pairs: the
    near-duplicate pairs (i < j) found before joining."""

    groups: list[list[int]]
    pairs: list[tuple[int, int]]


def default_max_distance(bits: int) -> int:
    """The default ``max_distance`` of a ``bits``-wide binary descriptor: 6 of 128 bits, 3 of
    64."""
    return bits * DEFAULT_MAX_DISTANCE_PER_128_BITS // 128


def _root(parent: dict[int, int], i: int) -> int:
    while parent.setdefault(i, i) != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def find_duplicates(
    collection: Collection,
    *,
    radius: int | None = None,
    min_score: float | None = None,
    max_distance: int | None = None,
    neighbours: int = DEFAULT_NEIGHBOURS,
    batch: int = 500,
) -> DuplicateGroups:
    """Near-duplicate groups of ``collection`` (see the module).

    radius: largest Hamming distance between the codes of two duplicates (default
    :data:`DEFAULT_DUPLICATE_RADIUS`; none for instance bits). min_score: smallest re-rank score
    (default :data:`DEFAULT_MIN_SCORE`; only for a collection with descriptors). max_distance:
    largest number of differing instance bits (default :func:`default_max_distance`; only for a
    collection of binary descriptors, and not with ``min_score``). neighbours: how many nearest
    other items of each item may pair with it (1: each item links to its nearest other item
    only, which keeps a class of look-alikes from chaining into one group; exact duplicates
    still join, as each links to one of them).
    """
    check_count(radius, "radius", 0)
    check_count(max_distance, "max_distance", 0)
    check_count(neighbours, "neighbours", 1)
    if collection.binary_descriptor:
        limit = _descriptor_limit(collection, min_score, max_distance)
        pairs = _descriptor_pairs(collection, limit, radius, neighbours, batch)
    else:
        if max_distance is not None:
            raise ValueError(
                f"collection {collection.directory} stores no instance bits "
                f"({collection.descriptor or 'no descriptors'}), so --max-distance cannot "
                "apply; use --min-score and --radius"
            )
        if min_score is not None and not collection.reranks:
            raise ValueError(
                f"collection {collection.directory} stores no descriptors, so --min-score "
                "cannot apply; near duplicates are then items within --radius"
            )
        r = DEFAULT_DUPLICATE_RADIUS if radius is None else radius
        pairs = _code_pairs(collection, r, min_score, neighbours, batch)
    return _grouped(pairs)


def _descriptor_limit(collection: Collection, min_score: float | None, limit: int | None) -> int:
    """The largest descriptor distance of duplicates: ``limit``, or the one ``min_score`` stands
    for (score 1 - 2 d / D >= min_score), or the default."""
    bits = collection.descriptor_dim
    if min_score is not None and limit is not None:
        raise ValueError("give --max-distance or --min-score, not both (score = 1 - 2 d / bits)")
    if min_score is not None:
        if not -1.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be within [-1, 1], got {min_score}")
        return max(0, math.floor((1.0 - min_score) * bits / 2 + 1e-9))
    if limit is None:
        return default_max_distance(bits)
    if limit > bits:
        raise ValueError(f"max_distance must be at most {bits} (the descriptor bits), got {limit}")
    return int(limit)


def _descriptor_pairs(
    collection: Collection, limit: int, radius: int | None, neighbours: int, batch: int
) -> set[tuple[int, int]]:
    """Each item with its ``neighbours`` nearest other items by (descriptor distance, id) within
    ``limit`` bits (and codes within ``radius`` when given)."""
    ids, codes, desc = collection.ids, collection.codes, collection.descriptors
    assert desc is not None
    position = {int(i): p for p, i in enumerate(ids.tolist())}
    k = min(neighbours + 1, max(len(ids), 1))
    pairs: set[tuple[int, int]] = set()
    for s in range(0, len(ids), batch):
        _, found = collection.nearest_descriptors(desc[s : s + batch], k, limit)
        for p, (item_id, row) in enumerate(zip(ids[s : s + batch].tolist(), found), s):
            others = [int(j) for j in row if j >= 0 and j != item_id][:neighbours]
            if radius is not None and others:
                near = hamming_distance_matrix(
                    codes[p : p + 1], codes[[position[j] for j in others]]
                )
                others = [j for j, d in zip(others, near[0]) if d <= radius]
            pairs.update((min(item_id, j), max(item_id, j)) for j in others)
    return pairs


def _code_pairs(
    collection: Collection, radius: int, min_score: float | None, neighbours: int, batch: int
) -> set[tuple[int, int]]:
    """Each item with its ``neighbours`` nearest other items by code (re-ranked by float
    descriptor when the collection stores them) within ``radius`` and scoring >= min_score."""
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
    return pairs


def _grouped(pairs: set[tuple[int, int]]) -> DuplicateGroups:
    """The pairs joined transitively (union-find)."""
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
