"""A collection's snapshot: every item's id, code and metadata in ``index.dhx`` (deephash index
format) and, for a re-ranking collection, every item's descriptor in ``descriptors.npz``; read when
a collection opens, written by a compaction (see :mod:`.collection` for the order of the writes)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deephash.collection._durable import fsync_dir
from deephash.collection.descriptor_file import (
    DESCRIPTOR_FILE,
    read_descriptors,
    write_descriptors,
)
from deephash.collection.descriptor_layout import DescriptorLayout
from deephash.collection.items import Item, item_from_json
from deephash.collection.layout import COLLECTION_FILE, LOG_FILE, SNAPSHOT_FILE
from deephash.collection.view import View
from deephash.index import BinaryIndex, create_index, load_index

__all__ = [
    "META_KEYS",
    "ReplayState",
    "read_snapshot",
    "read_snapshot_descriptors",
    "save_snapshot",
    "snapshot_index",
]

META_KEYS = ("label", "path", "image", "added")


@dataclass
class ReplayState:
    """Items keyed by id while a snapshot and a log are read (see :mod:`.replay`)."""

    codes: dict[int, bytes] = field(default_factory=dict)
    items: dict[int, Item] = field(default_factory=dict)
    images: dict[int, bytes] = field(default_factory=dict)  # image bytes carried by the log
    # stored rows (float16 (D,) or packed bits uint8 (D / 8,)), from the log
    descriptors: dict[int, np.ndarray] = field(default_factory=dict)
    next_id: int = 0


def read_snapshot(directory: Path, bits: int) -> ReplayState:
    """The items of the snapshot in collection folder ``directory`` (the state a log replays
    on); ``ValueError`` when it holds codes of another width than ``bits``."""
    snapshot = load_index(directory / SNAPSHOT_FILE)
    if snapshot.bits != bits:
        raise ValueError(
            f"{directory / SNAPSHOT_FILE} holds {snapshot.bits}-bit codes but "
            f"{COLLECTION_FILE} says {bits}; the collection folder is inconsistent"
        )
    state = ReplayState()
    meta = snapshot.metadata
    for row, item_id in enumerate(snapshot.ids.tolist()):
        state.codes[item_id] = snapshot.codes[row].tobytes()
        state.items[item_id] = item_from_json(
            {"id": item_id, **{k: meta[k][row].item() for k in META_KEYS if k in meta}}
        )
    if snapshot.ntotal:
        state.next_id = int(snapshot.ids[-1]) + 1
    return state


def read_snapshot_descriptors(
    directory: Path, ids: np.ndarray, state: ReplayState, layout: DescriptorLayout
) -> np.ndarray:
    """Resident rows (len(ids), width) (see :class:`.DescriptorLayout`): each live item's
    descriptor (``ids``: int64, ascending), from the log's records (``state``) or else the
    descriptor snapshot (matched by id, see :mod:`.descriptor_file`); ``ValueError`` when an
    item has none."""
    snap_ids, snap_rows = read_descriptors(
        directory / DESCRIPTOR_FILE, layout.width, layout.stored_dtype
    )
    out = np.zeros((len(ids), layout.width), dtype=layout.stored_dtype)
    have = np.zeros(len(ids), dtype=bool)
    if len(snap_ids) and len(ids):
        pos = np.minimum(np.searchsorted(snap_ids, ids), len(snap_ids) - 1)
        found = snap_ids[pos] == ids
        out[found] = snap_rows[pos[found]]
        have |= found
    for item_id, row in state.descriptors.items():
        i = int(np.searchsorted(ids, item_id))
        out[i], have[i] = row, True
    if not have.all():
        raise ValueError(
            f"{directory}: {int((~have).sum())} items (first id {int(ids[~have][0])}) "
            f"have no descriptor in {DESCRIPTOR_FILE} or {LOG_FILE}; the collection folder is "
            "inconsistent"
        )
    return layout.resident(out)


def snapshot_index(view: View, kind: str, bits: int) -> BinaryIndex:
    """A new ``kind`` index (``flat`` or ``mih``) of ``bits``-bit codes holding every item of
    ``view`` with its metadata: the snapshot to save."""
    snapshot = create_index(kind, bits)
    if len(view.ids):
        items = [view.items[i] for i in view.ids.tolist()]
        snapshot.add(
            view.codes,
            view.ids,
            metadata={
                "label": [it.label or "" for it in items],
                "path": [it.path or "" for it in items],
                "image": [it.image or "" for it in items],
                "added": np.array([it.added for it in items], dtype=np.float64),
            },
        )
    return snapshot


def save_snapshot(directory: Path, snapshot: BinaryIndex, view: View) -> None:
    """Write ``snapshot`` (see :func:`snapshot_index`) and ``view``'s descriptors, if any, to
    collection folder ``directory`` atomically, and fsync the folder."""
    if view.descriptors is not None:
        # before the code snapshot: the opener matches descriptors to items by id, so a crash
        # between the two renames still finds every live item's descriptor
        write_descriptors(directory / DESCRIPTOR_FILE, view.ids, view.descriptors)
    snapshot.save(directory / SNAPSHOT_FILE)
    fsync_dir(directory)
