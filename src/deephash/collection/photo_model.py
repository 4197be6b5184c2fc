"""A hashing model for a folder of unlabeled photos: a pretrained backbone plus ITQ (or LSH) fitted
on the backbone features of a sample of the folder itself, saved as a fitted run folder.

The sample goes through the path every added or uploaded image takes (the collection's decode at
the backbone's input size, then the network), so the projection is fitted on exactly the features
the collection will encode.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from deephash.collection.photo_files import Photo, Skipped, read_photo

__all__ = ["DEFAULT_PHOTO_BACKBONE", "PhotoModel", "fit_photo_model", "photo_data_info"]

DEFAULT_PHOTO_BACKBONE = "efficientnet-lite0"


@dataclass
class PhotoModel:
    """What fitting found: the run folder, the method used, the images it was fitted on and the
    files of the sample it could not read."""

    run_dir: Path
    method: str
    fitted_on: int
    skipped: list[Skipped] = field(default_factory=list)


def photo_data_info(backbone: str, image_size: int) -> dict[str, Any]:
    """The preprocessing of a photo model: RGB at ``image_size``, the backbone's own
    normalisation (ImageNet weights expect it), no classes."""
    from deephash.models import backbone_input_stats

    stats = backbone_input_stats(backbone)
    mean, std = stats if stats is not None else (0.5, 0.5)
    return {
        "in_channels": 3,
        "num_classes": 0,
        "mean": [float(mean)] * 3,
        "std": [float(std)] * 3,
        "image_shape": [int(image_size), int(image_size)],
        "class_names": [],
        "protocol": "photos",
    }


def fit_photo_model(
    files: list[Path],
    run_dir: Path,
    *,
    bits: int = 64,
    backbone: str = DEFAULT_PHOTO_BACKBONE,
    image_size: int = 224,
    sample: int = 2000,
    seed: int = 0,
    max_pixels: int,
    batch_size: int = 64,
    progress: bool = True,
) -> PhotoModel:
    """Fit the codes of ``bits`` bits on (up to ``sample`` of) ``files`` and save the model as a
    run folder in ``run_dir``. ITQ (Gong & Lazebnik) on L2-normalised backbone features when the
    sample holds at least ``bits`` readable images, else LSH (random hyperplanes through their
    mean). Raises ``ValueError`` when no file of the sample is readable."""
    from deephash.hashing import ITQ, LSH
    from deephash.training import recipe
    from deephash.training.fitted_run import fitted_config, save_fitted_run

    picked = sorted(random.Random(seed).sample(files, min(sample, len(files))))
    values = {
        "dataset": "folder",
        "backbone": backbone,
        "backbone_options": {"num_classes": 0, "input_size": image_size},
        "weights": "imagenet",
        "bits": bits,
        "seed": seed,
    }
    cfg = fitted_config(values, name="photos")
    info = photo_data_info(backbone, image_size)
    from deephash.models.network import RetrievalNet

    net = recipe.build_network(cfg, 3).eval()
    assert isinstance(net, RetrievalNet)
    x, skipped = _photo_features(
        net,
        picked,
        info,
        image_size=image_size,
        max_pixels=max_pixels,
        batch_size=batch_size,
        progress=progress,
    )
    if not len(x):
        raise ValueError(f"none of the {len(picked)} files sampled is a readable image")
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    method = "itq" if len(x) >= bits else "lsh"
    hasher = (ITQ if method == "itq" else LSH)(bits, seed=seed).fit(x)
    save_fitted_run(
        run_dir,
        cfg,
        hasher,
        info,
        normalize=True,
        fitted={"method": method, "fit_on": "photos", "images": len(x)},
    )
    return PhotoModel(run_dir, method, len(x), skipped)


def _photo_features(
    net: Any,
    files: list[Path],
    info: dict[str, Any],
    *,
    image_size: int,
    max_pixels: int,
    batch_size: int,
    progress: bool,
) -> tuple[np.ndarray, list[Skipped]]:
    """The backbone features float32 (n, F) of the readable ``files`` (read as the collection
    reads an added photo, normalised with ``info``'s mean and std), and the files skipped."""
    import torch
    from tqdm.auto import tqdm

    feats: list[np.ndarray] = []
    skipped: list[Skipped] = []
    batch: list[Photo] = []
    bar = tqdm(
        total=len(files), desc="fitting codes", unit="img", disable=None if progress else True
    )

    def flush() -> None:
        from deephash.data.transforms import batch_to_tensor

        rgb = np.stack([p.image.rgb for p in batch])
        x = batch_to_tensor(rgb, mean=info["mean"], std=info["std"], augment=False)
        with torch.inference_mode():
            feats.append(net.features(x).float().numpy())
        bar.update(len(batch))
        batch.clear()

    for path in files:
        got = read_photo(path, image_size, max_pixels=max_pixels)
        if isinstance(got, Skipped):
            skipped.append(got)
            bar.update(1)
            continue
        batch.append(got)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    bar.close()
    if not feats:
        return np.zeros((0, 0), np.float32), skipped
    return np.concatenate(feats), skipped
