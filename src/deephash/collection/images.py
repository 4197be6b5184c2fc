"""Decoding untrusted image bytes (uploads, files added to a collection) into model input.

Every image that enters a collection goes through :func:`decode_image_bytes`, so a file added from
the command line and the same bytes uploaded to the server get the same code. The steps are those
of :func:`deephash.data.image_folder.decode_image` (JPEG draft, RGB, short side resized bilinearly,
centre crop) and of :meth:`deephash.training.runs.LoadedRun.load_images` (BT.601 luma for grey
models), plus the checks an untrusted input needs: the pixel count is read from the header and
refused before any pixel is decoded (decompression bombs), and the whole image is decoded so a
truncated PNG or JPEG is an error rather than a half-grey picture.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DecodedImage",
    "ImageBombError",
    "ImageDecodeError",
    "decode_image_bytes",
    "to_model_input",
]

DEFAULT_MAX_PIXELS = 40_000_000  # a 40-megapixel photo; a bomb declares far more
_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "GIF": ".gif", "WEBP": ".webp", "BMP": ".bmp"}


class ImageDecodeError(ValueError):
    """The bytes are not a readable image (not an image at all, truncated or corrupt)."""


class ImageBombError(ImageDecodeError):
    """The image declares more pixels than the configured limit (a decompression bomb)."""


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image: RGB uint8 (size, size, 3), its format's file suffix and MIME type."""

    rgb: np.ndarray
    suffix: str
    mime: str


def decode_image_bytes(
    data: bytes, image_size: int, *, max_pixels: int = DEFAULT_MAX_PIXELS, name: str = "image"
) -> DecodedImage:
    """Decode, resize (short side to ``image_size``) and centre-crop one image.

    data: the file's bytes (PNG, JPEG, GIF, WebP or BMP). Returns RGB uint8 (image_size,
    image_size, 3). Raises :class:`ImageBombError` when width x height exceeds ``max_pixels`` and
    :class:`ImageDecodeError` for anything PIL cannot fully decode; ``name`` goes in the message.
    """
    if not data:
        raise ImageDecodeError(f"{name} is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # Our own limit replaces PIL's global one (a warning above it, an error at twice it).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format or ""
                if fmt not in _SUFFIX:
                    raise ImageDecodeError(
                        f"{name} is a {fmt or 'unknown'} image; send PNG, JPEG, GIF, WebP or BMP"
                    )
                w, h = img.size
                if w * h > max_pixels:
                    raise ImageBombError(
                        f"{name} declares {w}x{h} = {w * h:,} pixels, more than the limit of "
                        f"{max_pixels:,} (a decompression bomb or an oversized photo); resize it"
                    )
                img.draft("RGB", (image_size, image_size))
                img.load()  # decodes everything: a truncated file fails here
                rgb = img.convert("RGB")
    except ImageDecodeError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check (twice its global limit)
        raise ImageBombError(
            f"{name} is too large to decode ({exc}); the limit is {max_pixels:,} pixels"
        ) from None
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as exc:
        # UnidentifiedImageError: not an image; OSError "image file is truncated": a cut file.
        raise ImageDecodeError(f"{name} is not a readable image ({exc})") from None
    width, height = rgb.size
    scale = image_size / min(width, height)
    new_w, new_h = max(image_size, round(width * scale)), max(image_size, round(height * scale))
    rgb = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
    left, top = (new_w - image_size) // 2, (new_h - image_size) // 2
    rgb = rgb.crop((left, top, left + image_size, top + image_size))
    return DecodedImage(np.asarray(rgb, dtype=np.uint8), _SUFFIX[fmt], Image.MIME[fmt])


def to_model_input(rgb: np.ndarray, in_channels: int) -> np.ndarray:
    """RGB uint8 (N, S, S, 3) -> the model's input format: (N, S, S) luma for 1-channel models
    (ITU-R BT.601, as PIL's "L" conversion and ``LoadedRun.load_images``), else unchanged."""
    if in_channels == 1:
        gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
    return rgb
