"""The image files of a folder of photos (nested folders too), each read and decoded on its own, so
that one unreadable file is skipped with its reason instead of stopping the rest."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from deephash.collection.images import DecodedImage, ImageDecodeError, decode_image_bytes

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "PHOTO_EXTENSIONS",
    "Photo",
    "Skipped",
    "list_photo_files",
    "read_photo",
]

# what decode_image_bytes reads, plus formats named here so they are reported rather than ignored
PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic")
DEFAULT_MAX_FILE_BYTES = 100 * 1024 * 1024  # a file larger than this is not read at all


@dataclass(frozen=True)
class Skipped:
    """A file left out, and why (one line for the user)."""

    path: Path
    reason: str

    def line(self) -> str:
        return f"skipped {self.path}: {self.reason}"


@dataclass(frozen=True)
class Photo:
    """A readable photo: its path, file bytes and the decoded, resized image."""

    path: Path
    data: bytes
    image: DecodedImage


def list_photo_files(root: str | os.PathLike[str]) -> tuple[list[Path], list[Skipped]]:
    """Every file under ``root`` (nested folders included, symbolic links to folders not
    followed, hidden files and folders left out), sorted: those named as images
    (:data:`PHOTO_EXTENSIONS`), and the other files as :class:`Skipped` with their reason."""
    folder = Path(root)
    if not folder.is_dir():
        raise NotADirectoryError(f"{folder} is not a folder of images")
    files: list[Path] = []
    skipped: list[Skipped] = []
    for parent, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(parent) / name
            if path.suffix.lower() in PHOTO_EXTENSIONS:
                files.append(path)
            else:
                skipped.append(
                    Skipped(path, f"not an image file by its name ({path.suffix or 'no suffix'})")
                )
    return sorted(files), skipped


def read_photo(
    path: Path,
    image_size: int,
    *,
    max_pixels: int,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> Photo | Skipped:
    """Read and decode one file at ``image_size`` (short side resized, centre crop, RGB; grey,
    RGBA, palette and CMYK images converted); a :class:`Skipped` with the reason when it cannot
    be read (missing, not readable, empty, larger than ``max_bytes``, more than ``max_pixels``,
    not an image, truncated)."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return Skipped(
                path, f"{size:,} bytes, more than the limit of {max_bytes:,} bytes per file"
            )
        data = path.read_bytes()
    except OSError as exc:
        return Skipped(path, f"cannot be read ({exc.strerror or exc})")
    try:
        image = decode_image_bytes(data, image_size, max_pixels=max_pixels, name=path.name)
    except ImageDecodeError as exc:
        return Skipped(path, str(exc))
    return Photo(path, data, image)
