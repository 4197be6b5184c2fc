from pathlib import Path

import numpy as np
import torch

from deephash.models import create_backbone
from deephash.training.baselines import run_baseline


def test_pixels_are_the_flattened_image() -> None:
    net = create_backbone("pixels", in_channels=2, image_size=5)
    x = torch.randn(3, 2, 5, 5)
    assert net.out_features == 50
    torch.testing.assert_close(net(x), x.reshape(3, 50))
    assert not list(net.parameters())
    big = torch.ones(1, 2, 10, 10) * torch.tensor([3.0, -1.0]).view(1, 2, 1, 1)
    want = torch.tensor([3.0] * 25 + [-1.0] * 25).view(1, 50)  # other sizes are resized first
    torch.testing.assert_close(net(big), want)


def test_pixel_baseline_features_are_the_preprocessed_images(
    tmp_path: Path, tiny_fmnist: Path
) -> None:
    from deephash.data import load_protocol_data

    values = {
        "method": "features",
        "dataset": "fashion-mnist",
        "data_dir": str(tiny_fmnist),
        "protocol": "fashion-mnist-unseen",
        "backbone": "pixels",
        "device": "cpu",
    }
    run_baseline(values, tmp_path / "px")
    data = load_protocol_data("fashion-mnist-unseen", data_dir=tiny_fmnist)
    want = data.preprocessor(augment=False)(data.query.images).reshape(len(data.query), -1)
    got = np.load(tmp_path / "px" / "features.npz")["query"]
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-6)
