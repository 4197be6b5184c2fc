import numpy as np
import pytest
import torch

from deephash.data.transforms import (
    BatchTransform,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToFloat,
    batch_to_tensor,
    batch_transform,
    build_transform,
    channel_stats,
    resize_images,
    resized_crop_jitter,
)


def test_to_float_and_normalize_by_hand() -> None:
    img = torch.tensor([[[0, 255, 51]]], dtype=torch.uint8)  # (H=1, W=1, C=3)
    x = ToFloat()(img)
    assert x.shape == (3, 1, 1) and x.flatten().tolist() == pytest.approx([0.0, 1.0, 0.2])
    y = Normalize([0.5, 0.5, 0.2], [0.5, 0.25, 1.0])(x)
    assert y.flatten().tolist() == pytest.approx([-1.0, 2.0, 0.0])
    assert ToFloat()(torch.zeros(4, 5, dtype=torch.uint8)).shape == (1, 4, 5)
    with pytest.raises(ValueError, match="positive"):
        Normalize([0.0], [0.0])


def test_random_crop_is_a_shifted_window() -> None:
    x = torch.arange(16, dtype=torch.float32).view(1, 4, 4)
    g = torch.Generator().manual_seed(0)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    seen = set()
    for _ in range(50):
        out = RandomCrop(padding=2, generator=g)(x)
        assert out.shape == (1, 4, 4)
        hits = [
            (i, j)
            for i in range(5)
            for j in range(5)
            if torch.equal(padded[:, i : i + 4, j : j + 4], out)
        ]
        assert hits
        seen.add(hits[0])
    assert len(seen) > 5


def test_flip_and_resize() -> None:
    x = torch.arange(6, dtype=torch.float32).view(1, 2, 3)
    assert torch.equal(RandomHorizontalFlip(p=1.0)(x), x.flip(-1))
    assert torch.equal(RandomHorizontalFlip(p=0.0)(x), x)
    y = Resize(4)(torch.full((3, 8, 8), 0.25))
    assert y.shape == (3, 4, 4) and torch.allclose(y, torch.full_like(y, 0.25))


def test_build_transform_eval_matches_formula() -> None:
    img = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (5, 5, 3), dtype=np.uint8))
    t = build_transform(False, [0.1, 0.2, 0.3], [0.5, 0.5, 0.5])
    ref = (
        img.permute(2, 0, 1).double() / 255 - torch.tensor([0.1, 0.2, 0.3]).view(3, 1, 1).double()
    ) / 0.5
    assert torch.allclose(t(img).double(), ref, atol=1e-6)
    assert build_transform(True, [0.0], [1.0], padding=2)(
        torch.zeros(6, 6, dtype=torch.uint8)
    ).shape == (1, 6, 6)


def test_batch_transform_matches_per_image_without_augment() -> None:
    imgs = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (4, 6, 6, 3), dtype=np.uint8))
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.3, 0.4]
    out = batch_transform(imgs, mean, std)
    per = torch.stack([build_transform(False, mean, std)(im) for im in imgs])
    assert out.shape == (4, 3, 6, 6) and torch.allclose(out, per, atol=1e-6)


def test_batch_augmentation_is_crop_and_flip_of_each_image() -> None:
    rng = np.random.default_rng(2)
    imgs = torch.from_numpy(rng.integers(1, 256, (16, 5, 5), dtype=np.uint8))  # grey, no zeros
    g = torch.Generator().manual_seed(0)
    out = BatchTransform([0.0], [1.0], augment=True, padding=2)(imgs, generator=g)
    assert out.shape == (16, 1, 5, 5)
    flips = 0
    for b in range(16):
        padded = torch.nn.functional.pad(imgs[b].float() / 255, (2, 2, 2, 2))
        cands = [padded[i : i + 5, j : j + 5] for i in range(5) for j in range(5)]
        plain = any(torch.allclose(out[b, 0], c) for c in cands)
        flipped = any(torch.allclose(out[b, 0], c.flip(-1)) for c in cands)
        assert plain or flipped
        flips += int(flipped and not plain)
    assert 0 < flips < 16


def test_batch_transform_errors() -> None:
    with pytest.raises(ValueError, match="uint8"):
        batch_transform(torch.zeros(2, 3, 3), [0.0], [1.0])
    with pytest.raises(ValueError, match="channels"):
        batch_transform(torch.zeros(2, 3, 3, 3, dtype=torch.uint8), [0.0], [1.0])


def test_channel_stats_matches_numpy() -> None:
    imgs = np.random.default_rng(3).integers(0, 256, (7, 4, 4, 3), dtype=np.uint8)
    mean, std = channel_stats(imgs)
    x = imgs.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), atol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=(0, 1, 2)), atol=1e-12)


def test_resize_images_constant_and_shape() -> None:
    imgs = np.full((3, 28, 28), 100, np.uint8)
    out = resize_images(imgs, 32)
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8 and (out == 100).all()
    assert resize_images(np.zeros((2, 8, 8, 3), np.uint8), 4).shape == (2, 4, 4, 3)


def test_batch_to_tensor_accepts_numpy() -> None:
    imgs = np.random.default_rng(4).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    out = batch_to_tensor(imgs, mean=[0.5], std=[0.25])
    ref = (torch.from_numpy(imgs).float()[:, None] / 255 - 0.5) / 0.25
    assert torch.allclose(out, ref, atol=1e-6)


@pytest.mark.parametrize("side", [6, 72])  # small images use one flat gather, large ones slices
def test_batch_augmentation_both_paths_colour(side: int) -> None:
    imgs = torch.from_numpy(
        np.random.default_rng(5).integers(1, 256, (6, side, side, 3), dtype=np.uint8)
    )
    g = torch.Generator().manual_seed(1)
    out = batch_transform(imgs, [0.0] * 3, [1.0] * 3, augment=True, padding=3, generator=g)
    assert out.shape == (6, 3, side, side)
    for b in range(6):
        padded = torch.nn.functional.pad(imgs[b].permute(2, 0, 1).float() / 255, (3, 3, 3, 3))
        wins = [padded[:, i : i + side, j : j + side] for i in range(7) for j in range(7)]
        assert any(
            torch.allclose(out[b], wdw) or torch.allclose(out[b], wdw.flip(-1)) for wdw in wins
        )
    same = batch_transform(imgs, [0.0] * 3, [1.0] * 3, augment=True, padding=0, flip=False)
    assert torch.allclose(same, imgs.permute(0, 3, 1, 2).float() / 255)


def test_resized_crop_jitter_off_is_identity_and_checks_arguments() -> None:
    x = torch.randn(3, 1, 8, 8)
    assert resized_crop_jitter(x) is x
    for bad in ({"min_scale": 0.0}, {"min_scale": 1.5}, {"jitter": 1.0}, {"jitter": -0.1}):
        with pytest.raises(ValueError):
            resized_crop_jitter(x, **bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="B, C, H, W"):
        resized_crop_jitter(x[0], min_scale=0.5)


def test_resized_crops_stay_inside_the_image() -> None:
    # A constant image stays constant under any crop that stays inside it; sampling outside would
    # bring in the (different) fill value.
    x = torch.full((64, 2, 12, 12), 0.7)
    g = torch.Generator().manual_seed(0)
    y = resized_crop_jitter(x, min_scale=0.2, fill=-5.0, generator=g)
    torch.testing.assert_close(y, x)


def test_resized_crop_of_a_ramp_is_an_affine_map_of_it() -> None:
    # On a linear ramp (value = column index) an axis-aligned crop resampled bilinearly is again a
    # linear ramp: a slope <= 1 (zoom in) and within the image's range.
    cols = torch.arange(16, dtype=torch.float32).expand(16, 16)
    x = cols.expand(32, 1, 16, 16).clone()
    y = resized_crop_jitter(x, min_scale=0.3, generator=torch.Generator().manual_seed(1))
    inner = y[:, 0, :, 2:-2]  # away from the bilinear border clamp
    slopes = inner[:, :, 1:] - inner[:, :, :-1]
    assert torch.allclose(slopes, slopes[:, :1, :1].expand_as(slopes), atol=1e-4)
    assert bool((slopes[:, 0, 0] > 0).all()) and bool((slopes[:, 0, 0] <= 1 + 1e-5).all())
    assert float(y.min()) >= -1e-5 and float(y.max()) <= 15 + 1e-5
    assert not torch.allclose(y, x)  # zoomed in at least somewhere


def test_jitter_is_contrast_about_the_mean_plus_a_shift() -> None:
    x = torch.randn(50, 3, 6, 6)
    j = 0.4
    y = resized_crop_jitter(x, jitter=j, generator=torch.Generator().manual_seed(2))
    mx, my = x.mean(dim=(1, 2, 3)), y.mean(dim=(1, 2, 3))
    contrast = (y - my.view(-1, 1, 1, 1)).std(dim=(1, 2, 3)) / (x - mx.view(-1, 1, 1, 1)).std(
        dim=(1, 2, 3)
    )
    shift = my - mx
    assert bool((contrast >= 1 - j - 1e-5).all()) and bool((contrast <= 1 + j + 1e-5).all())
    assert bool((shift.abs() <= j + 1e-5).all())
    # and (y - my) is exactly a multiple of (x - mx), image by image
    torch.testing.assert_close(
        y - my.view(-1, 1, 1, 1), (x - mx.view(-1, 1, 1, 1)) * contrast.view(-1, 1, 1, 1)
    )


def test_batch_transform_applies_the_strong_augmentation_only_when_augmenting() -> None:
    images = torch.randint(0, 256, (4, 10, 10), dtype=torch.uint8)
    plain = BatchTransform((0.5,), (0.25,), augment=False, crop_scale=0.5, jitter=0.3)
    torch.testing.assert_close(plain(images), batch_transform(images, (0.5,), (0.25,)))
    strong = BatchTransform((0.5,), (0.25,), augment=True, padding=0, flip=False, crop_scale=1.0)
    strong.jitter = 0.3
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    want = resized_crop_jitter(
        batch_transform(images, (0.5,), (0.25,)), jitter=0.3, generator=g2, fill=-2.0
    )
    torch.testing.assert_close(strong(images, generator=g1), want)
