import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from deephash.collection.images import (
    ImageBombError,
    ImageDecodeError,
    decode_image_bytes,
    to_model_input,
)
from deephash.data.image_folder import decode_image


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """The same PNG with the header declaring another size (CRC fixed): a bomb's signature."""
    ihdr = bytearray(png[12:29])  # chunk type + 13 data bytes
    ihdr[4:12] = struct.pack(">II", width, height)
    return png[:12] + bytes(ihdr) + struct.pack(">I", zlib.crc32(bytes(ihdr))) + png[33:]


RNG = np.random.default_rng(0)
PHOTO = RNG.integers(0, 256, (40, 60, 3), dtype=np.uint8)


@pytest.mark.parametrize("encode", [png_bytes, jpeg_bytes])
def test_same_pixels_as_the_folder_reader(encode, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = encode(PHOTO)
    f = tmp_path / "x.img"
    f.write_bytes(data)
    got = decode_image_bytes(data, 28)
    np.testing.assert_array_equal(got.rgb, decode_image(f, 28))
    assert got.rgb.shape == (28, 28, 3)
    assert (got.suffix, got.mime) in ((".png", "image/png"), (".jpg", "image/jpeg"))


def test_grey_conversion_matches_pil() -> None:
    rgb = RNG.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    grey = to_model_input(rgb, 1)
    for i in range(3):
        # PIL's L conversion: (299 R + 587 G + 114 B) / 1000, rounded
        ref = np.asarray(Image.fromarray(rgb[i]).convert("L"), dtype=np.int16)
        assert np.abs(grey[i].astype(np.int16) - ref).max() <= 1
    assert to_model_input(rgb, 3) is rgb


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, I am text", b"%PDF-1.4 not an image", b"\x89PNG\r\n\x1a\n\x00\x00"],
    ids=["empty", "text", "pdf", "png-magic-only"],
)
def test_not_images(data: bytes) -> None:
    with pytest.raises(ImageDecodeError):
        decode_image_bytes(data, 28, name="upload.png")


@pytest.mark.parametrize("encode", [png_bytes, jpeg_bytes])
def test_truncated_files(encode) -> None:  # type: ignore[no-untyped-def]
    data = encode(PHOTO)
    for cut in (len(data) // 2, len(data) - 30):
        with pytest.raises(ImageDecodeError, match="upload"):
            decode_image_bytes(data[:cut], 28, name="upload")


def test_bomb_is_refused_before_decoding() -> None:
    for side, shown in ((100_000, "10000000000 pixels"), (12_000, "144,000,000 pixels")):
        bomb = with_ihdr_size(png_bytes(PHOTO), side, side)  # 100,000² is over PIL's own limit
        with pytest.raises(ImageBombError, match=shown):
            decode_image_bytes(bomb, 28, max_pixels=40_000_000)
    # the limit is configurable: a normal image over a small limit is refused too
    with pytest.raises(ImageBombError, match="2,400 pixels"):
        decode_image_bytes(png_bytes(PHOTO), 28, max_pixels=1000)
    assert decode_image_bytes(png_bytes(PHOTO), 28, max_pixels=2400).rgb.shape == (28, 28, 3)
