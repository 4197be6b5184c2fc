"""The frozen-bottom cache against the uncached network, and a short end-to-end fine-tune."""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from deephash.atomic_io import load_checkpoint
from deephash.data.transforms import batch_transform
from deephash.models import create_backbone
from deephash.models.heads import create_head
from deephash.models.network import RetrievalNet
from deephash.training.config import TrainConfig
from deephash.training.frozen_cache import (
    CachedTop,
    FrozenBottomCache,
    freeze_bottom,
    set_bn_eval,
)
from deephash.training.trainer import train

MEAN, STD = (127 / 255,), (128 / 255,)


def _net(stages: int = 5) -> RetrievalNet:
    torch.manual_seed(0)
    backbone = create_backbone("efficientnet-lite0", in_channels=1, num_classes=0)
    return RetrievalNet(backbone, create_head("embedding", 1280, 16), 16)


def _images(n: int = 12) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def _clean(x: np.ndarray) -> torch.Tensor:
    return batch_transform(torch.from_numpy(x), MEAN, STD, augment=False)


def _augment(x: np.ndarray, generator: torch.Generator | None = None) -> torch.Tensor:
    return batch_transform(
        torch.from_numpy(x), MEAN, STD, augment=True, padding=2, flip=True, generator=generator
    )


def test_cached_maps_equal_the_frozen_stages_and_the_top_gives_the_network_output() -> None:
    net = _net().eval()
    bottom, top = freeze_bottom(net, 5)
    images = _images()
    cache = FrozenBottomCache.build(
        bottom,
        images,
        clean=_clean,
        augment=_augment,
        views=2,
        seed=3,
        device=torch.device("cpu"),
        batch_size=5,  # chunks of 5, 5, 2: the cache fills across chunk borders
        progress=False,
    )
    assert cache.maps.shape == (3, 12, 112, 4, 4) and cache.maps.dtype == torch.float16
    with torch.no_grad():
        ref = bottom(_clean(images))
        assert torch.equal(cache.maps[0], ref.half())
        for v in (1, 2):  # view v: the augmentation drawn from its own seeded generator
            gen = torch.Generator().manual_seed(3 * 1_000_003 + v)
            aug = torch.cat([_augment(images[s : s + 5], generator=gen) for s in (0, 5, 10)])
            assert torch.equal(cache.maps[v], bottom(aug).half())
        assert not torch.equal(cache.maps[1], cache.maps[2])
        # head(top(cached maps)) is the whole network's output, up to float16 rounding
        cached_top = CachedTop(net, top).eval()
        out = cached_top(cache.batch(np.arange(12), generator=None, device=torch.device("cpu")))
        net.retrieve_from = "head"
        full = net(_clean(images))
        assert torch.allclose(out, full, atol=2e-3)
        assert torch.allclose(cached_top(ref), full, atol=1e-5)


def test_a_batch_draws_one_view_per_image_uniformly() -> None:
    views, n = 3, 4000
    maps = (
        torch.arange(views, dtype=torch.float16).view(views, 1, 1, 1, 1).expand(views, n, 1, 1, 1)
    )
    cache = FrozenBottomCache(maps.contiguous(), 0.0)
    gen = torch.Generator().manual_seed(0)
    got = cache.batch(np.arange(n), generator=gen, device=torch.device("cpu")).flatten()
    counts = torch.bincount(got.long(), minlength=views).numpy()
    assert counts.sum() == n and np.all(np.abs(counts / n - 1 / views) < 0.03)
    clean = cache.batch(np.arange(n), generator=None, device=torch.device("cpu"))
    assert torch.all(clean == 0)


def test_freezing_marks_only_the_bottom_and_refuses_a_backbone_without_stages() -> None:
    net = _net()
    bottom, top = freeze_bottom(net, 4)
    assert all(not p.requires_grad for p in bottom.parameters())
    assert all(p.requires_grad for p in top.parameters())
    small = RetrievalNet(
        create_backbone("small-cnn", in_channels=1), create_head("embedding", 256, 8), 8
    )
    with pytest.raises(ValueError, match="efficientnet-lite"):
        freeze_bottom(small, 2)
    with pytest.raises(ValueError, match="augmenting preprocessor"):
        FrozenBottomCache.build(
            bottom,
            _images(2),
            clean=_clean,
            augment=None,
            views=1,
            seed=0,
            device=torch.device("cpu"),
            progress=False,
        )


def test_bn_eval_keeps_running_statistics_while_training() -> None:
    net = _net()
    _, top = freeze_bottom(net, 5)
    net.train()
    set_bn_eval(net.backbone)
    before = {k: v.clone() for k, v in net.state_dict().items() if "running_mean" in k}
    with torch.no_grad():
        top(torch.randn(8, 112, 4, 4))
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_fine_tune_trains_the_top_on_the_cache_and_leaves_the_bottom(
    tmp_path: Path, tiny_config_values: dict[str, Any]
) -> None:
    cfg = TrainConfig.from_dict(
        {
            **tiny_config_values,
            "backbone": "efficientnet-lite0",
            "weights": "imagenet",
            "backbone_options": {"num_classes": 0},
            "freeze_stages": 5,
            "cache_views": 1,
            "loss": "multi-similarity",
            "sampling": "random",
            "epochs": 2,
            "batches_per_epoch": 2,
            "val_queries": 20,
            "val_database": 40,
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    result = train(cfg, tmp_path / "run")
    history = [json.loads(x) for x in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert history[0]["cache_seconds"] > 0 and "cache_seconds" not in history[1]
    assert 0.0 <= result.metrics["map"] <= 1.0
    # the run normalises inputs as the ImageNet weights expect, and saves that for serving
    state = load_checkpoint(tmp_path / "run" / "last.pt")
    assert state["data_info"]["mean"] == pytest.approx([127 / 255])
    assert state["data_info"]["std"] == pytest.approx([128 / 255])
    start = create_backbone("efficientnet-lite0", weights="imagenet", in_channels=1, num_classes=0)
    ref = start.state_dict()
    trained = {
        k[len("backbone.") :]: v for k, v in state["model"].items() if k.startswith("backbone.")
    }
    end = start.stage_ends[4]  # blocks [0, end) and the stem are frozen
    frozen = [
        k
        for k in ref
        if k.startswith(("_conv_stem", "_bn0"))
        or (k.startswith("_blocks.") and int(k.split(".")[1]) < end)
    ]
    assert frozen and all(torch.equal(trained[k], ref[k]) for k in frozen)
    moved = [k for k in ref if k.startswith("_conv_head") and not torch.equal(trained[k], ref[k])]
    assert moved
    # the final evaluation took its frozen maps from the store: equal to the uncached network
    stores = list((tmp_path / "cache").glob("*.pt"))
    assert len(stores) == 1
    from deephash.training.recipe import build_network, load_data

    data = load_data(cfg)
    model = build_network(cfg, data.in_channels)
    model.load_state_dict(load_checkpoint(tmp_path / "run" / "best.pt")["model"])
    model.eval()
    emb = np.load(tmp_path / "run" / "embeddings.npz")
    with torch.no_grad():
        direct = model(data.preprocessor(augment=False)(data.query.images)).numpy()
    assert np.allclose(emb["query"], direct, atol=2e-3)
