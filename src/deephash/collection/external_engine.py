"""Keeping an external engine (Milvus) in step with a collection: the log and the view are the
source of truth; the engine is told every change and, after it missed some (a crash, or it was
unreachable), re-synced from the collection."""

from __future__ import annotations

from typing import Any

import numpy as np

from deephash.collection.view import View
from deephash.index import BinaryIndex

__all__ = ["delete_rows", "engine_spec", "insert_rows", "resync_engine", "stored_ids"]


def engine_spec(settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The :func:`~deephash.index.create_index` name and options of a collection's external
    engine, from its settings (``collection.json``)."""
    options = {
        "collection": settings["milvus_collection"],
        # searches never wait for the server's time tick: the collection's pending delta gives
        # read-your-writes (see :mod:`.freshness`)
        "consistency": "Bounded",
        # ties at the cut are settled from the collection's own codes (see :mod:`.engine_search`)
        "exact_ties": False,
        **settings.get("milvus_index", {}),
    }
    return f"milvus:{settings['uri']}", options


def insert_rows(index: BinaryIndex, codes: np.ndarray, ids: np.ndarray, replace: bool) -> None:
    """Write new rows (uint8 (n, nbytes), int64 (n,)) to the engine without reading it first: the
    collection knows its ids are new. ``replace``: a retry that may repeat an applied write (an
    upsert, so no id is stored twice)."""
    insert = getattr(index, "insert", None)
    if insert is not None:  # Milvus: no duplicate-id read
        insert(codes, ids, replace=replace)
        return
    if replace:
        index.remove_ids(ids)
    index.add(codes, ids)


def delete_rows(index: BinaryIndex, ids: np.ndarray) -> None:
    """Delete ids int64 (m,) from the engine without reading it first (idempotent)."""
    delete = getattr(index, "delete", None)
    if delete is not None:
        delete(ids)
    else:
        index.remove_ids(ids)


def seal(index: BinaryIndex) -> None:
    """Have the engine turn its recent writes into indexed storage (Milvus: a flush, after which
    searches no longer scan growing segments by brute force); nothing for other indexes."""
    flush = getattr(index, "flush", None)
    if flush is not None:
        flush()


def stored_ids(index: BinaryIndex, ids: np.ndarray) -> np.ndarray:
    """int64: those of ``ids`` that the engine's searches see (at its consistency level)."""
    stored = getattr(index, "stored", None)
    if stored is not None:
        return np.asarray(stored(ids), dtype=np.int64)
    return ids[np.isin(ids, index.ids)]


def resync_engine(index: BinaryIndex, view: View) -> None:
    """Make the engine hold exactly the items of ``view``.

    The engine may differ from the folder after a crash (an insert logged but not yet sent, a
    removal not yet applied there), or after it was unreachable. Ids are never reused, so an id
    means one code: the sync reads the engine's ids (for Milvus at Strong consistency), removes
    those the collection lacks and writes the missing ones (upserts: nothing stored twice). An
    engine that cannot list its ids is cleared of every id below ``next_id`` and refilled.
    """
    try:
        held = np.asarray(index.ids, dtype=np.int64) if index.ntotal else np.zeros(0, np.int64)
        listed = held.ndim == 1 and len(held) == index.ntotal
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        listed = False
    if listed:
        stale = np.setdiff1d(held, view.ids)
        if len(stale):
            delete_rows(index, stale)
        missing = ~np.isin(view.ids, held)
    else:
        if index.ntotal:
            delete_rows(index, np.arange(view.next_id, dtype=np.int64))
        missing = np.ones(len(view.ids), dtype=bool)
    ids, codes = view.ids[missing], view.codes[missing]
    for start in range(0, len(ids), 10_000):
        insert_rows(index, codes[start : start + 10_000], ids[start : start + 10_000], True)
