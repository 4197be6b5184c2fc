"""Reading a collection's state back: the snapshot's items, then the log's records on top; and the
log's ``add`` record, written by the collection and read here."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from deephash.codes import code_bytes
from deephash.collection.descriptor_file import decode_descriptor, encode_descriptor
from deephash.collection.descriptor_layout import DescriptorLayout
from deephash.collection.items import Item, item_from_json
from deephash.collection.layout import LOG_FILE
from deephash.collection.log import LogContents, read_log
from deephash.collection.snapshot import ReplayState, read_snapshot, read_snapshot_descriptors
from deephash.collection.view import View

__all__ = ["ReplayState", "Replayed", "add_record", "replay_folder", "replay_record"]


@dataclass
class Replayed:
    """A collection folder read back: ``view`` (no index built yet), ``state`` (its items and
    the image bytes the log carries) and ``log`` (where its good records end)."""

    view: View
    state: ReplayState
    log: LogContents


def replay_folder(directory: Path, bits: int, layout: DescriptorLayout | None) -> Replayed:
    """The state of collection folder ``directory``: its snapshot with its log replayed on top.
    bits: the code width; layout: how its descriptors are stored (None: it stores none)."""
    nbytes = code_bytes(bits)
    state = read_snapshot(directory, bits)
    log = read_log(directory / LOG_FILE)
    for record in log.records:
        replay_record(state, record, nbytes, directory / LOG_FILE, layout)
    ids = np.array(sorted(state.codes), dtype=np.int64)
    codes = np.frombuffer(b"".join(state.codes[i] for i in ids.tolist()), dtype=np.uint8)
    codes = codes.reshape(len(ids), nbytes).copy()
    descriptors = (
        read_snapshot_descriptors(directory, ids, state, layout) if layout is not None else None
    )
    view = View(ids, codes, state.items, state.next_id, descriptors=descriptors)
    return Replayed(view, state, log)


def add_record(
    item: Item, code: np.ndarray, descriptor: np.ndarray | None, image_bytes: bytes | None
) -> dict[str, Any]:
    """One item of a log ``add`` record (read back by :func:`replay_record`): its metadata, code
    uint8 (nbytes,), descriptor (float (D,) or packed bits uint8) when the collection re-ranks,
    and image bytes."""
    record = {k: v for k, v in vars(item).items() if v is not None}
    record["code"] = code.tobytes().hex()
    if descriptor is not None:
        record["desc"] = encode_descriptor(descriptor)
    if image_bytes is not None:
        record["image_data"] = base64.b64encode(image_bytes).decode("ascii")
    return record


def replay_record(
    state: ReplayState,
    record: dict[str, Any],
    nbytes: int,
    log_path: Path,
    layout: DescriptorLayout | None = None,
) -> None:
    """Apply one log record to ``state``; idempotent by id (an ``add`` of an id already present
    is skipped, a ``remove`` of a missing id ignored). nbytes: bytes per packed code; layout:
    the descriptors of a re-ranking collection (None: none; a record without one is then an
    error found by the opener's final check)."""
    op = record["op"]
    if op == "begin":
        state.next_id = max(state.next_id, int(record["next_id"]))
    elif op == "add":
        for d in record["items"]:
            _replay_item(state, d, nbytes, log_path, layout)
    elif op == "remove":
        for item_id in record["ids"]:
            state.codes.pop(int(item_id), None)
            state.items.pop(int(item_id), None)
            state.images.pop(int(item_id), None)
            state.descriptors.pop(int(item_id), None)
    else:
        raise ValueError(f"{log_path}: unknown operation {op!r}")


def _replay_item(
    state: ReplayState,
    d: dict[str, Any],
    nbytes: int,
    log_path: Path,
    layout: DescriptorLayout | None,
) -> None:
    """Apply one item of an ``add`` record (see :func:`replay_record`)."""
    item_id = int(d["id"])
    state.next_id = max(state.next_id, item_id + 1)
    if item_id in state.codes:
        return  # already folded into the snapshot (crash inside compact)
    code = bytes.fromhex(d["code"])
    if len(code) != nbytes:
        raise ValueError(f"{log_path}: item {item_id} has a bad code")
    state.codes[item_id] = code
    state.items[item_id] = item_from_json(d)
    if layout is not None and "desc" in d:
        try:
            state.descriptors[item_id] = decode_descriptor(
                d["desc"], layout.width, layout.stored_dtype
            )
        except ValueError as exc:
            raise ValueError(f"{log_path}: item {item_id}: {exc}") from None
    if "image_data" in d:
        state.images[item_id] = base64.b64decode(d["image_data"])
