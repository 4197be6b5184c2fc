"""A searchable image collection on disk, shared by ``deephash collection`` and ``deephash serve``:
the model's codes in a Hamming index, item metadata, the stored images, an fsynced append-only log
(an acknowledged addition survives ``kill -9``), and an OS lock (one writer process at a time)."""

from deephash.collection.collection import BACKENDS, Collection
from deephash.collection.images import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    ImageBombError,
    ImageDecodeError,
    decode_image_bytes,
)
from deephash.collection.items import Hit, Item, NewItem
from deephash.collection.lock import CollectionLockedError, FolderLock

__all__ = [
    "BACKENDS",
    "DEFAULT_MAX_PIXELS",
    "Collection",
    "CollectionLockedError",
    "DecodedImage",
    "FolderLock",
    "Hit",
    "ImageBombError",
    "ImageDecodeError",
    "Item",
    "NewItem",
    "decode_image_bytes",
]
