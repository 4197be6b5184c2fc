"""Input checks and preparation shared by every retrieval metric.

Everything public in :mod:`deephash.metrics` funnels its arguments through :func:`prepare`, so the
error messages are the same whichever metric the caller used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import torch

from deephash.checks import check_choice
from deephash.codes import to_words

# The option values; public signatures take plain ``str`` (names come from configs and the CLI)
# and every function checks them at run time with an error that lists the valid ones.
_DISTANCES: tuple[str, ...] = get_args(Literal["hamming", "euclidean", "cosine"])
_AP_DIVISORS: tuple[str, ...] = get_args(Literal["retrieved", "min_r_k"])
_NO_RETRIEVAL: tuple[str, ...] = get_args(Literal["zero", "exclude"])
Distance = str
APDivisor = str
NoRetrieval = str

ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]


@dataclass(frozen=True)
class Prepared:
    """Validated, normalised retrieval inputs.

    hamming: True for packed codes. Then ``query``/``database`` are uint64 words (n, words) from
        :func:`deephash.codes.to_words` and ``max_distance`` is ``8 * bytes_per_code``.
        Otherwise they are float32/float64 (n, d) arrays.
    query_labels/database_labels: int64 (n,) class ids remapped to 0..num_classes-1 (single-label);
        for multi-label, uint64 (n, ceil(num_classes / 64)) bit masks of the label sets.
    leave_one_out: the queries are the first ``num_queries`` database items (query i is database
        item i) and each query's own item is left out of its ranking, which then holds
        ``num_ranked = num_database - 1`` items.
    """

    distance: str
    hamming: bool
    query: np.ndarray
    database: np.ndarray
    query_labels: np.ndarray
    database_labels: np.ndarray
    multilabel: bool
    num_classes: int
    max_distance: int
    leave_one_out: bool = False

    @property
    def num_queries(self) -> int:
        return int(self.query.shape[0])

    @property
    def num_database(self) -> int:
        return int(self.database.shape[0])

    @property
    def num_ranked(self) -> int:
        """Items in each query's ranking: the database, less the query's own item when leaving
        one out."""
        return self.num_database - int(self.leave_one_out)


def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise ValueError(f"{name} must be a numpy array or torch tensor, got {type(x)}") from exc


def _prepare_points(
    query: np.ndarray, database: np.ndarray, distance: str
) -> tuple[np.ndarray, ...]:
    for name, arr in (("query", query), ("database", database)):
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-D array (n, dim), got shape {arr.shape}")
        if arr.shape[0] == 0:
            raise ValueError(f"{name} is empty (shape {arr.shape}); need at least one row")
    if query.shape[1] != database.shape[1]:
        raise ValueError(
            f"query and database widths differ: query {query.shape} vs database {database.shape}"
        )
    if distance == "hamming":
        for name, arr in (("query", query), ("database", database)):
            if arr.dtype != np.uint8:
                raise ValueError(
                    f"distance='hamming' needs packed codes: uint8 (n, ceil(bits / 8)) from "
                    f"deephash.codes.pack_bits, but {name} has dtype {arr.dtype}. Pack {{-1,+1}} "
                    f"codes with pack_bits, or pass distance='euclidean'/'cosine' for embeddings."
                )
        return to_words(query), to_words(database)
    for name, arr in (("query", query), ("database", database)):
        if arr.dtype == np.uint8:
            raise ValueError(
                f"{name} is uint8, which looks like packed binary codes; use distance='hamming' "
                f"for codes, or cast embeddings to float for distance={distance!r}"
            )
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    # Rank in single precision only when both inputs are float32/float16; integers and float64
    # rank in float64, so exact ties in the data stay exact.
    low = (np.dtype(np.float32), np.dtype(np.float16))
    dtype = np.float32 if query.dtype in low and database.dtype in low else np.float64
    q = np.ascontiguousarray(query, dtype=dtype)
    db = np.ascontiguousarray(database, dtype=dtype)
    for name, arr in (("query", q), ("database", db)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or infinite values")
    return q, db


def _prepare_labels(
    query_labels: np.ndarray, database_labels: np.ndarray, nq: int, ndb: int
) -> tuple[np.ndarray, np.ndarray, bool, int]:
    for name, lab, n in (
        ("query_labels", query_labels, nq),
        ("database_labels", database_labels, ndb),
    ):
        if lab.ndim not in (1, 2):
            raise ValueError(
                f"{name} must be (n,) class ids or an (n, num_classes) label matrix, "
                f"got shape {lab.shape}"
            )
        if lab.shape[0] != n:
            raise ValueError(f"{name} has {lab.shape[0]} rows but there are {n} points")
    if query_labels.ndim != database_labels.ndim:
        raise ValueError(
            "query_labels and database_labels must both be class ids (n,) or both label "
            f"matrices (n, num_classes); got shapes {query_labels.shape} and "
            f"{database_labels.shape}"
        )
    if query_labels.ndim == 1:
        for name, lab in (("query_labels", query_labels), ("database_labels", database_labels)):
            if np.issubdtype(lab.dtype, np.floating) or np.issubdtype(
                lab.dtype, np.complexfloating
            ):
                raise ValueError(
                    f"{name} must be integer class ids, got dtype {lab.dtype}; cast with "
                    ".astype(np.int64)"
                )
        classes, inverse = np.unique(
            np.concatenate([query_labels, database_labels]), return_inverse=True
        )
        inverse = inverse.astype(np.int64).reshape(-1)
        return inverse[:nq].copy(), inverse[nq:].copy(), False, int(classes.size)
    if query_labels.shape[1] != database_labels.shape[1]:
        raise ValueError(
            f"label matrices have different numbers of classes: {query_labels.shape[1]} "
            f"(query) vs {database_labels.shape[1]} (database)"
        )
    if query_labels.shape[1] == 0:
        raise ValueError("label matrices have zero columns; need at least one class")
    q_mask = to_words(np.packbits(query_labels != 0, axis=1, bitorder="little"))
    db_mask = to_words(np.packbits(database_labels != 0, axis=1, bitorder="little"))
    return q_mask, db_mask, True, int(query_labels.shape[1])


def _check_leave_one_out(q: np.ndarray, db: np.ndarray, ql: np.ndarray, dbl: np.ndarray) -> None:
    nq, n = q.shape[0], db.shape[0]
    if n < 2:
        raise ValueError(
            "leave_one_out needs a database of at least 2 items (one is left out of each ranking)"
        )
    if nq > n:
        raise ValueError(
            f"leave_one_out: the queries must be the first database items, but there are {nq} "
            f"queries and only {n} database items"
        )
    if not (np.array_equal(q, db[:nq]) and np.array_equal(ql, dbl[:nq])):
        raise ValueError(
            "leave_one_out: query i must be database item i (same vector, same label) for every "
            "query; pass the same array as query and database (or queries = database[:nq])"
        )


def prepare(
    query: ArrayLike,
    query_labels: ArrayLike,
    database: ArrayLike,
    database_labels: ArrayLike,
    distance: str,
    leave_one_out: bool = False,
) -> Prepared:
    """Validate and normalise the four retrieval arrays (see :class:`Prepared`).

    leave_one_out: the queries are the database's first items (checked: same vectors and labels)
    and each query's own item is left out of its ranking.
    """
    check_choice(distance, _DISTANCES, "distance")
    if not isinstance(leave_one_out, bool | np.bool_):
        raise ValueError(f"leave_one_out must be True or False, got {leave_one_out!r}")
    q_np = _to_numpy(query, "query")
    db_np = _to_numpy(database, "database")
    q, db = _prepare_points(q_np, db_np, distance)
    ql, dbl, multilabel, num_classes = _prepare_labels(
        _to_numpy(query_labels, "query_labels"),
        _to_numpy(database_labels, "database_labels"),
        q.shape[0],
        db.shape[0],
    )
    if leave_one_out:
        _check_leave_one_out(q, db, ql, dbl)
    max_distance = 8 * int(q_np.shape[1]) if distance == "hamming" else 0
    return Prepared(
        distance=distance,
        hamming=distance == "hamming",
        query=q,
        database=db,
        query_labels=ql,
        database_labels=dbl,
        multilabel=multilabel,
        num_classes=num_classes,
        max_distance=max_distance,
        leave_one_out=bool(leave_one_out),
    )
