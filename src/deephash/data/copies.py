"""Copy transforms: the edits a re-posted image goes through, for copy-detection benchmarks.

A copy-detection query is a transformed copy of a database image; the search should return that
image (its *source*) first (the protocol of the Image Similarity Challenge, DISC21, at a small
scale). Each transform maps uint8 images (N, H, W) (grey) or (N, H, W, 3) to the same shape and
dtype, deterministically (``noise`` draws from a seeded generator), so every method compared sees
the very same query pixels.

Names (``list_copy_transforms()``):

==================  =========================================================================
``exact``           the image itself
``jpeg-q50/q75``    JPEG round trip at that quality (PIL, 4:2:0 chroma for colour)
``brightness-1.15`` every pixel × 1.15, clipped to 255 (PIL ``ImageEnhance.Brightness``)
``contrast-1.2``    contrast × 1.2 about the image's mean grey (PIL ``ImageEnhance.Contrast``)
``shift-1/2``       content moved 1 or 2 px right and down, the uncovered border filled with
                    the image's edge pixels (replicate padding)
``crop-0.9``        the centre 90% of each side cropped and resized back (bilinear)
``rotate-5``        rotated 5° about the centre (bilinear), corners filled with the edge colour
``flip``            mirrored left-right
``noise-8``         additive Gaussian noise, σ = 8 grey levels, rounded and clipped
``scale-0.5``       scaled down to half size (bilinear, antialiased) and back up: a thumbnail
                    or a re-upload at a lower resolution
``blur-1``          Gaussian blur of radius 1 px (PIL ``GaussianBlur``)
==================  =========================================================================
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deephash.data.copy_views import blur_image, jpeg_image, rescale_image

__all__ = ["COPY_TRANSFORMS", "apply_copy_transform", "list_copy_transforms"]

CopyTransform = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _per_image(fn: Callable[[object], object]) -> CopyTransform:
    """Lift a PIL image -> PIL image function to uint8 batches."""
    from PIL import Image

    def run(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.empty_like(images)
        for i, img in enumerate(images):
            out[i] = np.asarray(fn(Image.fromarray(img)), dtype=np.uint8).reshape(img.shape)
        return out

    return run


def _jpeg(quality: int) -> CopyTransform:
    return _per_image(lambda img: jpeg_image(img, quality))  # type: ignore[arg-type]


def _rescale(factor: float) -> CopyTransform:
    return _per_image(lambda img: rescale_image(img, factor))  # type: ignore[arg-type]


def _blur(radius: float) -> CopyTransform:
    return _per_image(lambda img: blur_image(img, radius))  # type: ignore[arg-type]


def _enhance(kind: str, factor: float) -> CopyTransform:
    from PIL import ImageEnhance

    def enhance(img: object) -> object:
        return getattr(ImageEnhance, kind)(img).enhance(factor)

    return _per_image(enhance)


def _shift(pixels: int) -> CopyTransform:
    def run(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        pad = [(0, 0), (pixels, 0), (pixels, 0)] + [(0, 0)] * (images.ndim - 3)
        padded = np.pad(images, pad, mode="edge")
        return np.ascontiguousarray(padded[:, : images.shape[1], : images.shape[2]])

    return run


def _crop(fraction: float) -> CopyTransform:
    from PIL import Image

    def crop(img: object) -> object:
        w, h = img.size  # type: ignore[attr-defined]
        cw, ch = round(w * fraction), round(h * fraction)
        left, top = (w - cw) // 2, (h - ch) // 2
        box = (left, top, left + cw, top + ch)
        return img.resize((w, h), Image.Resampling.BILINEAR, box=box)  # type: ignore[attr-defined]

    return _per_image(crop)


def _rotate(degrees: float) -> CopyTransform:
    from PIL import Image

    def rotate(img: object) -> object:
        arr = np.asarray(img)
        fill = tuple(int(v) for v in np.atleast_1d(np.median(arr.reshape(-1, *arr.shape[2:]), 0)))
        return img.rotate(  # type: ignore[attr-defined]
            degrees, Image.Resampling.BILINEAR, fillcolor=fill[0] if len(fill) == 1 else fill
        )

    return _per_image(rotate)


def _flip(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.ascontiguousarray(images[:, :, ::-1])


def _noise(sigma: float) -> CopyTransform:
    def run(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = images.astype(np.float32) + rng.normal(0.0, sigma, images.shape).astype(np.float32)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)

    return run


COPY_TRANSFORMS: dict[str, CopyTransform] = {
    "exact": lambda images, rng: images.copy(),
    "jpeg-q50": _jpeg(50),
    "jpeg-q75": _jpeg(75),
    "brightness-1.15": _enhance("Brightness", 1.15),
    "contrast-1.2": _enhance("Contrast", 1.2),
    "shift-1": _shift(1),
    "shift-2": _shift(2),
    "crop-0.9": _crop(0.9),
    "rotate-5": _rotate(5.0),
    "flip": _flip,
    "noise-8": _noise(8.0),
    "scale-0.5": _rescale(0.5),
    "blur-1": _blur(1.0),
}


def list_copy_transforms() -> list[str]:
    """The copy transforms' names, in benchmark order."""
    return list(COPY_TRANSFORMS)


def apply_copy_transform(name: str, images: np.ndarray, seed: int = 0) -> np.ndarray:
    """The copies of ``images`` (uint8 (N, H, W) or (N, H, W, 3)) under transform ``name``:
    uint8, same shape. Deterministic for a given ``seed``."""
    if name not in COPY_TRANSFORMS:
        raise ValueError(f"unknown copy transform {name!r}; choose one of {list_copy_transforms()}")
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(
            f"images must be uint8 (N, H, W) or (N, H, W, C), got {images.dtype} {images.shape}"
        )
    return COPY_TRANSFORMS[name](images, np.random.default_rng(seed))
