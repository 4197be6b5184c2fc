"""A collection's item records: stored metadata (:class:`Item`), search results (:class:`Hit`)
and items to add (:class:`NewItem`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Hit", "Item", "NewItem", "item_from_json", "new_items"]


@dataclass(frozen=True)
class Item:
    """One item's metadata. ``image`` is the stored file's name under ``images/`` (None if the
    item has no stored image); ``path`` the original file path or upload name; ``added`` Unix
    seconds."""

    id: int
    label: str | None
    path: str | None
    image: str | None
    added: float

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.label is not None:
            out["label"] = self.label
        if self.path is not None:
            out["path"] = self.path
        out["added"] = self.added
        return out


@dataclass(frozen=True)
class Hit:
    """A search result: the item, its Hamming distance to the query and, when the collection
    re-ranks, its re-rank score (cosine similarity of the descriptors, 1 for the same image; see
    :mod:`deephash.index.rerank`), else None."""

    id: int
    distance: int
    item: Item
    score: float | None = None


@dataclass
class NewItem:
    """An item to add: its packed code uint8 (ceil(bits / 8),), optionally the image file's bytes
    (stored as ``images/<id><suffix>``), a label and the original path or name; ``descriptor``
    float (D,) is required by a re-ranking collection and refused by one without descriptors."""

    code: np.ndarray
    image_bytes: bytes | None = None
    suffix: str = ".png"
    label: str | None = None
    path: str | None = None
    descriptor: np.ndarray | None = None


def new_items(
    codes: np.ndarray,
    descriptors: np.ndarray | None,
    images: Sequence[bytes | None],
    suffixes: Sequence[str],
    labels: Sequence[str | None],
    paths: Sequence[str | None],
) -> list[NewItem]:
    """One :class:`NewItem` per encoded image: codes uint8 (n, nbytes), descriptors float (n, D)
    or None, and the images' bytes, suffixes, labels and paths (n each; an empty label or path
    means none)."""
    return [
        NewItem(
            codes[i],
            images[i],
            suffixes[i],
            labels[i] or None,
            paths[i] or None,
            None if descriptors is None else descriptors[i],
        )
        for i in range(len(codes))
    ]


def item_from_json(d: dict[str, Any]) -> Item:
    """An :class:`Item` from its log or snapshot fields (empty strings mean absent)."""
    return Item(
        id=int(d["id"]),
        label=d.get("label") or None,
        path=d.get("path") or None,
        image=d.get("image") or None,
        added=float(d.get("added", 0.0)),
    )
