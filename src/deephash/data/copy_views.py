"""Random copy-like views of images: what a re-saved, re-sized or edited copy of a photo undergoes.

Instance-aware training (an instance term between two views of each image, see
:mod:`deephash.losses.instance`) needs views that differ the way copies in the wild differ from
their source: down-scaled and scaled back up (thumbnails, re-uploads), blurred, re-compressed as
JPEG, brightened or with more contrast, shifted or cropped by a few pixels, rotated a little,
mirrored, with sensor noise. :class:`CopyViews` draws one random chain of these per image, each
edit with its own probability and strength, from a seeded generator, so a run's views are
reproducible (and a resumed run draws the same ones as an uninterrupted run, epoch by epoch).

Images are uint8 (N, H, W) grey or (N, H, W, 3) colour, in and out, at the same size.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["CopyViews", "blur_image", "jpeg_image", "rescale_image"]


def rescale_image(img: PILImage, factor: float) -> PILImage:
    """A PIL image scaled by ``factor`` (< 1: down) with antialiasing and back to its size (bilinear)."""
    from PIL import Image

    w, h = img.size
    small = img.resize(
        (max(1, round(w * factor)), max(1, round(h * factor))), Image.Resampling.BILINEAR
    )
    return small.resize((w, h), Image.Resampling.BILINEAR)


def blur_image(img: PILImage, radius: float) -> PILImage:
    """A PIL image under a Gaussian blur of ``radius`` pixels (PIL's GaussianBlur)."""
    from PIL import ImageFilter

    return img.filter(ImageFilter.GaussianBlur(radius))


def jpeg_image(img: PILImage, quality: int) -> PILImage:
    """A PIL image after a JPEG round trip at ``quality`` (4:2:0 chroma for colour)."""
    from PIL import Image

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert(img.mode)


@dataclass(frozen=True)
class CopyViews:
    """Settings of the random copy-like views: the probability of each edit and its range.

    Edits, in the order applied: ``rescale`` (down to a factor in ``scale_range``, back up),
    ``blur`` (radius in ``blur_range``), ``crop`` (a random window of ``crop_range`` of each side,
    resized back), ``shift`` (up to ``max_shift`` px each way, edge pixels fill the border),
    ``rotate`` (up to ``max_degrees`` either way), ``flip`` (left-right), ``brightness`` and
    ``contrast`` (a factor in ``enhance_range``), ``noise`` (Gaussian, σ up to ``max_noise`` grey
    levels), ``jpeg`` (quality in ``quality_range``). ``strength`` scales every probability
    (0: views are the images themselves).
    """

    strength: float = 1.0
    p_rescale: float = 0.4
    scale_range: tuple[float, float] = (0.4, 0.9)
    p_blur: float = 0.3
    blur_range: tuple[float, float] = (0.4, 1.2)
    p_crop: float = 0.3
    crop_range: tuple[float, float] = (0.8, 1.0)
    p_shift: float = 0.3
    max_shift: int = 2
    p_rotate: float = 0.2
    max_degrees: float = 6.0
    p_flip: float = 0.2
    p_brightness: float = 0.4
    p_contrast: float = 0.4
    enhance_range: tuple[float, float] = (0.75, 1.3)
    p_noise: float = 0.2
    max_noise: float = 10.0
    p_jpeg: float = 0.5
    quality_range: tuple[int, int] = (40, 95)

    def __post_init__(self) -> None:
        if not 0.0 <= self.strength <= 1.0 / max(self._probabilities()):
            raise ValueError(
                f"strength scales the edits' probabilities; it must be in [0, "
                f"{1.0 / max(self._probabilities()):.2f}], got {self.strength}"
            )

    def _probabilities(self) -> list[float]:
        return [
            self.p_rescale,
            self.p_blur,
            self.p_crop,
            self.p_shift,
            self.p_rotate,
            self.p_flip,
            self.p_brightness,
            self.p_contrast,
            self.p_noise,
            self.p_jpeg,
        ]

    def __call__(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """uint8 (N, H, W[, 3]) -> uint8 views of the same shape, one random edit chain each."""
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(
                f"images must be uint8 (N, H, W) or (N, H, W, 3), got {images.dtype} {images.shape}"
            )
        out = np.empty_like(images)
        for i, image in enumerate(images):
            out[i] = self.view(image, rng)
        return out

    def view(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One view of one uint8 image (H, W[, 3])."""
        from PIL import Image, ImageEnhance

        def happens(p: float) -> bool:
            return bool(rng.random() < p * self.strength)

        img = Image.fromarray(image)
        w, h = img.size
        if happens(self.p_rescale):
            img = rescale_image(img, float(rng.uniform(*self.scale_range)))
        if happens(self.p_blur):
            img = blur_image(img, float(rng.uniform(*self.blur_range)))
        if happens(self.p_crop):
            fw, fh = rng.uniform(*self.crop_range, size=2)
            cw, ch = max(1, round(w * fw)), max(1, round(h * fh))
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            box = (left, top, left + cw, top + ch)
            img = img.resize((w, h), Image.Resampling.BILINEAR, box=box)
        if happens(self.p_shift):
            img = Image.fromarray(self._shift(np.asarray(img), rng))
        if happens(self.p_rotate):
            arr = np.asarray(img)
            med = np.median(arr.reshape(-1, *arr.shape[2:]), axis=0)
            fill = int(med) if arr.ndim == 2 else tuple(int(v) for v in med)
            degrees = float(rng.uniform(-self.max_degrees, self.max_degrees))
            img = img.rotate(degrees, Image.Resampling.BILINEAR, fillcolor=fill)
        if happens(self.p_flip):
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if happens(self.p_brightness):
            img = ImageEnhance.Brightness(img).enhance(float(rng.uniform(*self.enhance_range)))
        if happens(self.p_contrast):
            img = ImageEnhance.Contrast(img).enhance(float(rng.uniform(*self.enhance_range)))
        arr = np.asarray(img, dtype=np.uint8)
        if happens(self.p_noise):
            sigma = float(rng.uniform(0.0, self.max_noise))
            noisy = arr.astype(np.float32) + rng.normal(0.0, sigma, arr.shape).astype(np.float32)
            arr = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        if happens(self.p_jpeg):
            quality = int(rng.integers(self.quality_range[0], self.quality_range[1] + 1))
            arr = np.asarray(jpeg_image(Image.fromarray(arr), quality), dtype=np.uint8)
        return arr.reshape(image.shape)

    def _shift(self, arr: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        dy, dx = (int(v) for v in rng.integers(-self.max_shift, self.max_shift + 1, size=2))
        m = self.max_shift
        pad = [(m, m), (m, m)] + [(0, 0)] * (arr.ndim - 2)
        padded = np.pad(arr, pad, mode="edge")
        h, w = arr.shape[:2]
        return np.ascontiguousarray(padded[m - dy : m - dy + h, m - dx : m - dx + w])
