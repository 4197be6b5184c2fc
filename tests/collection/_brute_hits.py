"""The brute-force reference of a collection's search, shared by the engine tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from deephash.codes import hamming_distance_matrix
from deephash.collection import Collection


def brute(col: Collection, q: np.ndarray, k: int, radius: int | None = None) -> list[tuple]:
    """(id, distance) of the k nearest stored codes to q (uint8 (nbytes,)), ties by the smaller id."""
    d = hamming_distance_matrix(q[None, :], col.codes)[0]
    order = np.lexsort((col.ids, d))
    if radius is not None:
        order = order[d[order] <= radius]
    return [(int(col.ids[i]), int(d[i])) for i in order[:k]]


def pairs(hits: list[Any]) -> list[tuple]:
    """(id, distance) of search hits, to compare with :func:`brute`."""
    return [(h.id, h.distance) for h in hits]
