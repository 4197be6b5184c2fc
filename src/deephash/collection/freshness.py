"""Read-your-writes over an external engine without waiting for its clock: the pending delta.

A collection over Milvus searches the engine at Bounded consistency (no wait for the server's
time tick), so the engine may not show the latest changes yet. The collection's :class:`View`
therefore carries what the engine may still miss: ``delta``, a flat index of the acknowledged
additions the engine has not been seen to hold, and ``removed``, tombstones of the acknowledged
removals it has not been seen to drop. A search merges the engine's answer (asked for k +
``len(removed)`` rows, tombstones filtered out) with the delta's by (distance, id), as the flat
index ranks, an id in both counted once (see :func:`~deephash.collection.engine_search.engine_candidates`).
That merge is right whichever of these changes the engine already shows; the delta only has to
keep a change until the engine certainly shows it, and then drains (:func:`drained`), told by
:class:`~deephash.collection.engine_writer.EngineWriter`.

Each function returns a new view; the caller publishes it under the collection's write lock.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from deephash.collection.view import View
from deephash.index import create_index

__all__ = ["drained", "pending_counts", "with_additions", "with_removals"]


def _delta_arrays(view: View, nbytes: int) -> tuple[np.ndarray, np.ndarray]:
    if view.delta is None:
        return np.zeros(0, np.int64), np.zeros((0, nbytes), np.uint8)
    return view.delta.ids, view.delta.codes


def _with_delta(view: View, ids: np.ndarray, codes: np.ndarray, bits: int) -> View:
    delta = None
    if len(ids):
        delta = create_index("flat", bits)
        delta.add(codes, ids)
    return replace(view, delta=delta)


def with_additions(view: View, ids: np.ndarray, codes: np.ndarray, bits: int) -> View:
    """``view`` (already holding the new items in ids/codes) with ids int64 (n,) and codes uint8
    (n, nbytes) pending in the delta."""
    old_ids, old_codes = _delta_arrays(view, codes.shape[1])
    return _with_delta(
        view, np.concatenate([old_ids, ids]), np.concatenate([old_codes, codes]), bits
    )


def with_removals(view: View, gone: np.ndarray, bits: int) -> View:
    """``view`` (already without the removed items) with ids int64 (m,) dropped from the delta and
    tombstoned: the engine may hold them (applied, or about to be), whether or not they were
    still pending."""
    old_ids, old_codes = _delta_arrays(view, (bits + 7) // 8)
    keep = ~np.isin(old_ids, gone)
    out = _with_delta(view, old_ids[keep], old_codes[keep], bits)
    return replace(out, removed=view.removed | frozenset(gone.tolist()))


def drained(view: View, seen_added: np.ndarray, seen_removed: np.ndarray, bits: int) -> View:
    """``view`` without the additions the engine was seen to hold (``seen_added``) and the
    tombstones of removals it was seen to apply (``seen_removed``), both int64."""
    old_ids, old_codes = _delta_arrays(view, (bits + 7) // 8)
    keep = ~np.isin(old_ids, seen_added)
    out = view if keep.all() else _with_delta(view, old_ids[keep], old_codes[keep], bits)
    if len(seen_removed) and view.removed:
        out = replace(out, removed=view.removed - frozenset(seen_removed.tolist()))
    return out


def pending_counts(view: View) -> dict[str, int]:
    """How many additions and removals the engine may not show yet (for ``info`` and ``/stats``)."""
    return {
        "pending_additions": 0 if view.delta is None else int(view.delta.ntotal),
        "pending_removals": len(view.removed),
    }
