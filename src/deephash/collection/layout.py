"""The names of the files and folders in a collection folder (see :mod:`.collection` for what each
holds)."""

from __future__ import annotations

__all__ = [
    "COLLECTION_FILE",
    "IMAGES_DIR",
    "LOCK_FILE",
    "LOG_FILE",
    "MODEL_DIR",
    "SNAPSHOT_FILE",
]

COLLECTION_FILE = "collection.json"
SNAPSHOT_FILE = "index.dhx"
LOG_FILE = "log.bin"
IMAGES_DIR = "images"
LOCK_FILE = "lock"
MODEL_DIR = "model"  # the model fitted for the collection's own photos (create --images)
