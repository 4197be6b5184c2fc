"""Adding a folder of photos to a collection: every readable image is added, every other file is
skipped with its reason; each chunk of images is one durable log record, so an interrupted import
keeps the chunks acknowledged before it and nothing half-written."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deephash.collection.items import new_items
from deephash.collection.photo_files import Photo, Skipped, read_photo

__all__ = ["PhotoImport", "add_photos"]

CHUNK = 64  # images per log record (one fsync): a few seconds of encoding at 224 px on a CPU


@dataclass
class PhotoImport:
    """The ids of the added images and the files skipped, with reasons."""

    ids: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def add_photos(
    col: Any,
    files: list[Path],
    *,
    chunk: int = CHUNK,
    on_progress: Callable[[int], None] | None = None,
    on_skip: Callable[[Skipped], None] | None = None,
) -> PhotoImport:
    """Read, decode and encode ``files`` at the collection's image size and add the readable ones
    to ``col`` (an open, writable :class:`~deephash.collection.Collection`) with their resolved
    paths; ``on_progress(n)`` after each n files handled, ``on_skip`` for each file skipped."""
    out = PhotoImport()
    batch: list[Photo] = []

    def flush() -> None:
        import numpy as np

        rgb = np.stack([p.image.rgb for p in batch])
        codes, desc = col.encode_with_descriptors(rgb)
        images = [p.data for p in batch]
        suffixes = [p.image.suffix for p in batch]
        paths: list[str | None] = [str(p.path.resolve()) for p in batch]
        new = new_items(codes, desc, images, suffixes, [None] * len(batch), paths)
        out.ids.extend(col.add(new))
        if on_progress:
            on_progress(len(batch))
        batch.clear()

    for path in files:
        got = read_photo(path, col.image_size, max_pixels=col.max_pixels)
        if isinstance(got, Skipped):
            out.skipped.append(got)
            if on_skip:
                on_skip(got)
            if on_progress:
                on_progress(1)
            continue
        batch.append(got)
        if len(batch) == chunk:
            flush()
    if batch:
        flush()
    return out
