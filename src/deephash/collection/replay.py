"""Reading a collection's state back: the snapshot's items, then the log's records on top."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deephash.collection.descriptor_file import decode_descriptor
from deephash.collection.items import Item, item_from_json

__all__ = ["ReplayState", "replay_record"]


@dataclass
class ReplayState:
    """Items keyed by id while a snapshot and a log are read."""

    codes: dict[int, bytes] = field(default_factory=dict)
    items: dict[int, Item] = field(default_factory=dict)
    images: dict[int, bytes] = field(default_factory=dict)  # image bytes carried by the log
    descriptors: dict[int, np.ndarray] = field(default_factory=dict)  # float16 (D,), from the log
    next_id: int = 0


def replay_record(
    state: ReplayState, record: dict[str, Any], nbytes: int, log_path: Path, dim: int = 0
) -> None:
    """Apply one log record to ``state``; idempotent by id (an ``add`` of an id already present
    is skipped, a ``remove`` of a missing id ignored). nbytes: bytes per packed code; dim: the
    descriptor width of a re-ranking collection (0: none; a record without one is then an error
    found by the opener's final check)."""
    op = record["op"]
    if op == "begin":
        state.next_id = max(state.next_id, int(record["next_id"]))
    elif op == "add":
        for d in record["items"]:
            item_id = int(d["id"])
            state.next_id = max(state.next_id, item_id + 1)
            if item_id in state.codes:
                continue  # already folded into the snapshot (crash inside compact)
            code = bytes.fromhex(d["code"])
            if len(code) != nbytes:
                raise ValueError(f"{log_path}: item {item_id} has a bad code")
            state.codes[item_id] = code
            state.items[item_id] = item_from_json(d)
            if dim and "desc" in d:
                try:
                    state.descriptors[item_id] = decode_descriptor(d["desc"], dim)
                except ValueError as exc:
                    raise ValueError(f"{log_path}: item {item_id}: {exc}") from None
            if "image_data" in d:
                state.images[item_id] = base64.b64decode(d["image_data"])
    elif op == "remove":
        for item_id in record["ids"]:
            state.codes.pop(int(item_id), None)
            state.items.pop(int(item_id), None)
            state.images.pop(int(item_id), None)
            state.descriptors.pop(int(item_id), None)
    else:
        raise ValueError(f"{log_path}: unknown operation {op!r}")
