import numpy as np
import pytest

from deephash.data.copy_views import CopyViews

OFF = {
    f"p_{name}": 0.0
    for name in (
        "rescale",
        "blur",
        "crop",
        "shift",
        "rotate",
        "flip",
        "brightness",
        "contrast",
        "noise",
        "jpeg",
    )
}


@pytest.fixture()
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (6, 28, 28), dtype=np.uint8)


def test_views_are_seeded_and_differ_per_image(images: np.ndarray) -> None:
    views = CopyViews()
    a = views(images, np.random.default_rng(5))
    np.testing.assert_array_equal(a, views(images, np.random.default_rng(5)))
    assert not np.array_equal(a, views(images, np.random.default_rng(6)))
    assert a.shape == images.shape and a.dtype == np.uint8
    assert sum(not np.array_equal(a[i], images[i]) for i in range(len(images))) >= 4
    rgb = np.repeat(images[..., None], 3, axis=3)
    assert views(rgb, np.random.default_rng(0)).shape == rgb.shape


def test_strength_zero_is_the_image_and_single_edits_do_what_they_say(
    images: np.ndarray,
) -> None:
    rng = np.random.default_rng(1)
    np.testing.assert_array_equal(CopyViews(strength=0.0)(images, rng), images)
    flip = CopyViews(**{**OFF, "p_flip": 1.0})(images, rng)
    np.testing.assert_array_equal(flip, images[:, :, ::-1])
    shifted = CopyViews(**{**OFF, "p_shift": 1.0}, max_shift=1)(images, rng)
    for src, out in zip(images, shifted):
        # every view is the source moved by (dy, dx) in [-1, 1]^2, edge pixels filling the border
        padded = np.pad(src, 1, mode="edge")
        windows = [
            padded[1 - dy : 29 - dy, 1 - dx : 29 - dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)
        ]
        assert any(np.array_equal(out, w) for w in windows)
    bright = CopyViews(**{**OFF, "p_brightness": 1.0}, enhance_range=(1.2, 1.2))(images, rng)
    assert np.abs(bright.astype(int) - np.minimum(np.rint(images * 1.2), 255)).max() <= 1


def test_bad_settings_and_input(images: np.ndarray) -> None:
    with pytest.raises(ValueError, match="strength"):
        CopyViews(strength=-0.1)
    with pytest.raises(ValueError, match="uint8"):
        CopyViews()(images.astype(np.float32), np.random.default_rng(0))
