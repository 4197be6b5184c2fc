"""Keeping an external engine (Milvus) in step with a collection: the log and the view are the
source of truth; the engine is told every change and, after it missed some (a crash, or it was
unreachable), re-synced from the collection."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from deephash.collection.view import View
from deephash.index import BinaryIndex

__all__ = ["engine_spec", "engine_write", "resync_engine"]

_log = logging.getLogger(__name__)


def engine_spec(settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The :func:`~deephash.index.create_index` name and options of a collection's external
    engine, from its settings (``collection.json``)."""
    options = {"collection": settings["milvus_collection"], **settings.get("milvus_index", {})}
    return f"milvus:{settings['uri']}", options


def resync_engine(index: BinaryIndex, view: View) -> None:
    """Make the engine hold exactly the items of ``view``.

    The engine may differ from the folder after a crash (an insert logged but not yet sent, a
    removal not yet applied there). Ids are never reused, so an id means one code: the sync
    removes the engine's ids the collection lacks and adds the missing ones. An engine that
    cannot list its ids is cleared of every id below ``next_id`` and refilled.
    """
    try:
        held = np.asarray(index.ids, dtype=np.int64) if index.ntotal else np.zeros(0, np.int64)
        listed = held.ndim == 1 and len(held) == index.ntotal
    except (AttributeError, NotImplementedError, TypeError, ValueError):
        listed = False
    if listed:
        stale = np.setdiff1d(held, view.ids)
        if len(stale):
            index.remove_ids(stale)
        missing = ~np.isin(view.ids, held)
    else:
        if index.ntotal:
            index.remove_ids(np.arange(view.next_id, dtype=np.int64))
        missing = np.ones(len(view.ids), dtype=bool)
    ids, codes = view.ids[missing], view.codes[missing]
    for start in range(0, len(ids), 10_000):
        index.add(codes[start : start + 10_000], ids[start : start + 10_000])


def engine_write(write: Callable[[], object], directory: Path) -> bool:
    """Apply a change (already durable in the log of the collection in ``directory``) to the
    external engine. Returns False, with a warning logged, when that failed: the caller marks the
    engine stale, and it is re-synced before the next search (the change stands)."""
    try:
        write()
    except Exception as exc:  # any failure: the log has it, the re-sync will apply it
        _log.warning(
            "%s: the search engine missed a change (%s: %s); it is re-synced from the "
            "collection before the next search",
            directory,
            type(exc).__name__,
            exc,
        )
        return False
    return True
