import numpy as np
import pytest

from deephash.data.copies import apply_copy_transform, list_copy_transforms


@pytest.fixture()
def images() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (4, 28, 28), dtype=np.uint8)


@pytest.mark.parametrize("name", list_copy_transforms())
def test_every_transform_keeps_shape_and_is_deterministic(name: str, images: np.ndarray) -> None:
    a = apply_copy_transform(name, images, seed=3)
    assert a.shape == images.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, apply_copy_transform(name, images, seed=3))
    rgb = np.repeat(images[..., None], 3, axis=3)
    assert apply_copy_transform(name, rgb).shape == rgb.shape


def test_transforms_do_what_they_say(images: np.ndarray) -> None:
    np.testing.assert_array_equal(apply_copy_transform("exact", images), images)
    np.testing.assert_array_equal(apply_copy_transform("flip", images), images[:, :, ::-1])
    shifted = apply_copy_transform("shift-1", images)
    np.testing.assert_array_equal(shifted[:, 1:, 1:], images[:, :-1, :-1])
    np.testing.assert_array_equal(shifted[:, 0, 1:], images[:, 0, :-1])  # edge replicated
    bright = apply_copy_transform("brightness-1.15", images).astype(int)
    want = np.minimum(np.rint(images * 1.15), 255)
    assert np.abs(bright - want).max() <= 1
    jpeg = apply_copy_transform("jpeg-q75", images)
    assert not np.array_equal(jpeg, images)
    noise = apply_copy_transform("noise-8", images).astype(int) - images
    assert 4 < np.abs(noise).mean() < 10  # sigma 8 (some clipped at 0 and 255)


def test_bad_input(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown copy transform"):
        apply_copy_transform("sepia", images)
    with pytest.raises(ValueError, match="uint8"):
        apply_copy_transform("flip", images.astype(np.float32))


def test_scale_and_blur_copies_smooth_and_keep_flat_images(images: np.ndarray) -> None:
    flat = np.full((2, 28, 28), 77, dtype=np.uint8)
    for name in ("scale-0.5", "blur-1"):
        np.testing.assert_array_equal(apply_copy_transform(name, flat), flat)
        smooth = apply_copy_transform(name, images).astype(float)
        # white noise loses most of its pixel-to-pixel variation; the mean grey stays
        assert np.diff(smooth, axis=2).std() < 0.7 * np.diff(images.astype(float), axis=2).std()
        assert abs(smooth.mean() - images.mean()) < 2
