"""Image transforms in plain torch (no torchvision), per image and for whole batches.

Per-image transforms take float (C, H, W) tensors, except :class:`ToFloat`, which takes the uint8
(H, W) / (H, W, C) arrays that :class:`~deephash.data.dataset.ArrayDataset` stores. The batched path
(:func:`batch_transform`) takes a uint8 batch and does crop/flip on the whole batch at once, so a
trainer can index the uint8 arrays directly instead of running per-item DataLoader workers.
Random crops pad with zeros (black) before normalization, like the usual CIFAR recipe.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from deephash.data.dataset import to_float_image

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "BatchTransform",
    "Compose",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "ToFloat",
    "batch_to_tensor",
    "batch_transform",
    "build_transform",
    "channel_stats",
    "resize_images",
    "resized_crop_jitter",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

Transform = Callable[[torch.Tensor], torch.Tensor]


def _check_stats(mean: Sequence[float], std: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    m = torch.as_tensor(list(mean), dtype=torch.float32)
    s = torch.as_tensor(list(std), dtype=torch.float32)
    if m.ndim != 1 or m.shape != s.shape or m.numel() == 0:
        raise ValueError(
            f"mean and std need one value per channel, got {list(mean)} and {list(std)}"
        )
    if bool((s <= 0).any()):
        raise ValueError(f"std values must be positive, got {list(std)}")
    return m, s


class ToFloat:
    """uint8 (H, W) or (H, W, C) -> float32 (C, H, W) in [0, 1]."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return to_float_image(image)


class Normalize:
    """(x - mean[c]) / std[c] on float (C, H, W); one mean/std value per channel."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        m, s = _check_stats(mean, std)
        self.mean, self.std = m.view(-1, 1, 1), s.view(-1, 1, 1)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] != self.mean.shape[0]:
            raise ValueError(
                f"Normalize has {self.mean.shape[0]} channels, image has shape {tuple(x.shape)}"
            )
        return (x - self.mean.to(x.device)) / self.std.to(x.device)


class RandomCrop:
    """Zero-pad each side by ``padding`` pixels, then crop a random ``size`` square (default: H x W)."""

    def __init__(
        self, size: int | None = None, padding: int = 0, generator: torch.Generator | None = None
    ) -> None:
        if padding < 0 or (size is not None and size < 1):
            raise ValueError(f"need padding >= 0 and size >= 1, got padding={padding}, size={size}")
        self.size, self.padding, self.generator = size, padding, generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        th, tw = (self.size, self.size) if self.size is not None else (h, w)
        if self.padding:
            x = F.pad(x, (self.padding,) * 4)
        ph, pw = x.shape[-2:]
        if th > ph or tw > pw:
            raise ValueError(f"crop {th}x{tw} is larger than the padded image {ph}x{pw}")
        top = int(torch.randint(0, ph - th + 1, (1,), generator=self.generator))
        left = int(torch.randint(0, pw - tw + 1, (1,), generator=self.generator))
        return x[..., top : top + th, left : left + tw]


class RandomHorizontalFlip:
    """Mirror the last axis with probability ``p``."""

    def __init__(self, p: float = 0.5, generator: torch.Generator | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"flip probability must be in [0, 1], got {p}")
        self.p, self.generator = p, generator

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if float(torch.rand((), generator=self.generator)) < self.p:
            return x.flip(-1)
        return x


class Resize:
    """Bilinear resize (antialiased when shrinking) of float (C, H, W) to ``size`` x ``size``."""

    def __init__(self, size: int | tuple[int, int]) -> None:
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        if min(self.size) < 1:
            raise ValueError(f"resize target must be positive, got {size}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = F.interpolate(
            x.unsqueeze(0), size=self.size, mode="bilinear", align_corners=False, antialias=True
        )
        return out.squeeze(0)


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            x = t(x)
        return x


def build_transform(
    train: bool,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    augment: bool = True,
    padding: int = 4,
    flip: bool = True,
    image_size: int | None = None,
) -> Compose:
    """The per-image pipeline for an :class:`ArrayDataset`: uint8 -> normalized float (C, H, W).

    Training with ``augment`` adds a random crop after zero padding by ``padding`` pixels and, if
    ``flip``, a random horizontal flip; evaluation only converts, resizes (if ``image_size``) and
    normalizes with ``mean``/``std`` (one value per channel, in [0, 1] pixel units).
    """
    steps: list[Transform] = [ToFloat()]
    if image_size is not None:
        steps.append(Resize(image_size))
    if train and augment:
        if padding:
            steps.append(RandomCrop(padding=padding))
        if flip:
            steps.append(RandomHorizontalFlip())
    steps.append(Normalize(mean, std))
    return Compose(steps)


def batch_transform(
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    augment: bool = False,
    padding: int = 4,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A uint8 batch -> normalized float32 (B, C, H, W), with optional batched augmentation.

    images: uint8 (B, H, W) or (B, H, W, C) on any device. With ``augment``, every image gets its
    own random crop of the zero-padded image (``padding`` pixels per side) and, if ``flip``, a
    horizontal flip with probability 1/2; random numbers come from ``generator`` (on the images'
    device) or the global torch RNG.
    """
    if images.dtype != torch.uint8 or images.ndim not in (3, 4):
        raise ValueError(
            f"batch_transform expects uint8 (B, H, W) or (B, H, W, C), got {images.dtype} {tuple(images.shape)}"
        )
    x = images.unsqueeze(-1) if images.ndim == 3 else images
    b, h, w, c = x.shape
    dev = x.device
    m, s = _check_stats(mean, std)
    if m.numel() != c:
        raise ValueError(f"{m.numel()} normalization channels for images with {c} channels")
    pad = padding if augment else 0
    if augment and (pad > 0 or flip) and b:
        # Crop and flip in uint8, channel-last, as one flat ``take`` over the zero-padded batch:
        # a flipped image reads its columns right to left, so flipping costs nothing extra.
        hp, wp = h + 2 * pad, w + 2 * pad
        padded = F.pad(x.permute(0, 3, 1, 2), (pad,) * 4).permute(0, 2, 3, 1).contiguous()
        oy = torch.randint(0, 2 * pad + 1, (b,), device=dev, generator=generator)
        ox = torch.randint(0, 2 * pad + 1, (b,), device=dev, generator=generator)
        flipped = (torch.rand(b, device=dev, generator=generator) < 0.5) & flip
        if h * w > 64 * 64:  # large images: per-image slices beat building a huge index
            crops = torch.empty_like(x)
            for i, (y0, x0, fl) in enumerate(zip(oy.tolist(), ox.tolist(), flipped.tolist())):
                window = padded[i, y0 : y0 + h, x0 : x0 + w]
                crops[i] = window.flip(1) if fl else window
            x = crops
        else:
            j = torch.arange(w, device=dev)
            cols = ox[:, None] + torch.where(flipped[:, None], w - 1 - j, j)  # (B, W)
            rows = oy[:, None] + torch.arange(h, device=dev)  # (B, H)
            pixel = (torch.arange(b, device=dev) * (hp * wp))[:, None, None] + rows[:, :, None] * wp
            pixel = pixel + cols[:, None, :]  # (B, H, W) flat pixel index into padded
            x = padded.reshape(-1).take(pixel[..., None] * c + torch.arange(c, device=dev))
    out = x.permute(0, 3, 1, 2).contiguous().to(torch.float32)
    # (x / 255 - mean) / std, in place: one float buffer for the whole batch.
    scale = (1.0 / (255.0 * s)).to(dev).view(1, -1, 1, 1)
    return out.mul_(scale).sub_((m / s).to(dev).view(1, -1, 1, 1))


def batch_to_tensor(
    images: np.ndarray | torch.Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    augment: bool = False,
    padding: int = 4,
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """:func:`batch_transform` for a numpy batch: uint8 (B, H, W[, C]) array -> float (B, C, H, W).

    The array is wrapped without copying when it is contiguous and writable (a read-only one, such
    as a decoded upload's buffer, is copied); the result lives on the CPU.
    """
    tensor = _as_tensor(images) if isinstance(images, np.ndarray) else images
    return batch_transform(
        tensor, mean, std, augment=augment, padding=padding, flip=flip, generator=generator
    )


def resized_crop_jitter(
    x: torch.Tensor,
    *,
    min_scale: float = 1.0,
    jitter: float = 0.0,
    fill: torch.Tensor | float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The stronger augmentation of self-supervised and unseen-class recipes, on a float batch.

    x: float (B, C, H, W), already normalized. Each image gets its own random resized crop: an area
    fraction drawn from [min_scale, 1] and an aspect ratio from [3/4, 4/3] (both log-uniform for the
    ratio, uniform for the area, as SimCLR / Inception crops), placed uniformly inside the image and
    resampled bilinearly to H×W; then, with ``jitter`` > 0, a contrast factor from [1 - jitter,
    1 + jitter] about the image mean and a brightness shift from [-jitter, jitter] (normalized
    units). ``fill``: the value of pixels sampled from outside the image, per channel (C,) or
    scalar (the normalized black of :func:`batch_transform` 's padding). ``min_scale=1`` and
    ``jitter=0`` return ``x`` unchanged. Returns float (B, C, H, W).
    """
    if not 0.0 < min_scale <= 1.0:
        raise ValueError(f"min_scale must be in (0, 1], got {min_scale}")
    if not 0.0 <= jitter < 1.0:
        raise ValueError(f"jitter must be in [0, 1), got {jitter}")
    if x.ndim != 4:
        raise ValueError(f"resized_crop_jitter expects float (B, C, H, W), got {tuple(x.shape)}")
    b, dev = x.shape[0], x.device
    if not b or (min_scale == 1.0 and jitter == 0.0):
        return x

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return torch.rand(b, device=dev, generator=generator) * (hi - lo) + lo

    if min_scale < 1.0:
        area = uniform(min_scale, 1.0)
        ratio = torch.exp(uniform(float(np.log(3 / 4)), float(np.log(4 / 3))))
        sx = torch.sqrt(area * ratio).clamp(max=1.0)  # crop width / image width
        sy = torch.sqrt(area / ratio).clamp(max=1.0)
        # Offsets keep every sampled pixel centre inside the image's outer pixel centres (at
        # normalised +-(1 - 1/W)), so no sample blends with the fill.
        h, w = x.shape[-2:]
        tx = (torch.rand(b, device=dev, generator=generator) * 2 - 1) * (1 - sx) * (1 - 1 / w)
        ty = (torch.rand(b, device=dev, generator=generator) * 2 - 1) * (1 - sy) * (1 - 1 / h)
        theta = torch.zeros(b, 2, 3, device=dev, dtype=x.dtype)
        theta[:, 0, 0], theta[:, 1, 1], theta[:, 0, 2], theta[:, 1, 2] = sx, sy, tx, ty
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        f = torch.as_tensor(fill, device=dev, dtype=x.dtype).reshape(1, -1, 1, 1)
        x = F.grid_sample(x - f, grid, mode="bilinear", align_corners=False) + f
    if jitter > 0.0:
        contrast = uniform(1.0 - jitter, 1.0 + jitter).view(b, 1, 1, 1).to(x.dtype)
        shift = uniform(-jitter, jitter).view(b, 1, 1, 1).to(x.dtype)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * contrast + mean + shift
    return x


class BatchTransform:
    """Settings for :func:`batch_transform` (then, when set, :func:`resized_crop_jitter`), applied
    with ``transform(images_uint8, generator)``."""

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        augment: bool = False,
        padding: int = 4,
        flip: bool = True,
        crop_scale: float | None = None,
        jitter: float = 0.0,
    ) -> None:
        m, s = _check_stats(mean, std)
        self.mean, self.std = tuple(mean), tuple(std)
        self.augment, self.padding, self.flip = augment, padding, flip
        self.crop_scale, self.jitter = crop_scale, jitter
        self._black = -m / s  # normalised 0 pixel: what resized crops fill with, like the padding

    def __call__(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        x = batch_transform(
            images,
            self.mean,
            self.std,
            augment=self.augment,
            padding=self.padding,
            flip=self.flip,
            generator=generator,
        )
        if self.augment and (self.crop_scale is not None or self.jitter > 0):
            x = resized_crop_jitter(
                x,
                min_scale=1.0 if self.crop_scale is None else self.crop_scale,
                jitter=self.jitter,
                fill=self._black.to(x.device),
                generator=generator,
            )
        return x

    def __repr__(self) -> str:
        return (
            f"BatchTransform(mean={self.mean}, std={self.std}, augment={self.augment}, "
            f"padding={self.padding}, flip={self.flip}, crop_scale={self.crop_scale}, "
            f"jitter={self.jitter})"
        )


def resize_images(images: np.ndarray, size: int, chunk: int = 4096) -> np.ndarray:
    """Resize a uint8 (N, H, W) / (N, H, W, C) array to (N, size, size[, C]) (bilinear, antialiased)."""
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise ValueError(
            f"resize_images expects uint8 (N, H, W[, C]), got {images.dtype} {images.shape}"
        )
    grey = images.ndim == 3
    out = np.empty((images.shape[0], size, size, *(() if grey else images.shape[3:])), np.uint8)
    for start in range(0, images.shape[0], chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + chunk]))
        x = (x.unsqueeze(1) if grey else x.permute(0, 3, 1, 2)).to(torch.float32)
        y = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )
        y = y.round_().clamp_(0, 255).to(torch.uint8)
        out[start : start + chunk] = (y[:, 0] if grey else y.permute(0, 2, 3, 1)).numpy()
    return out


def channel_stats(images: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (population) of uint8 images, in [0, 1] pixel units.

    images: uint8 (N, H, W) (one channel) or (N, H, W, C). Uses a 256-bin histogram per channel,
    so it is exact and needs no float copy of the array.
    """
    if images.dtype != np.uint8 or images.ndim not in (3, 4) or images.shape[0] == 0:
        raise ValueError(
            f"channel_stats expects non-empty uint8 (N, H, W[, C]), got {images.dtype} {images.shape}"
        )
    channels = [images] if images.ndim == 3 else [images[..., c] for c in range(images.shape[-1])]
    values = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for ch in channels:
        hist = np.bincount(np.ascontiguousarray(ch).ravel(), minlength=256).astype(np.float64)
        p = hist / hist.sum()
        mu = float(p @ values)
        means.append(mu)
        stds.append(float(np.sqrt(max(p @ (values - mu) ** 2, 0.0))))
    return tuple(means), tuple(stds)


def _as_tensor(images: np.ndarray) -> torch.Tensor:
    """A tensor sharing ``images``' memory where torch may (contiguous, writable), else a copy."""
    arr = np.ascontiguousarray(images)
    return torch.from_numpy(arr if arr.flags.writeable else arr.copy())
