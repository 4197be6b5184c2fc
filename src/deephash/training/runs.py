"""Loading a finished (or interrupted) run folder: its config, network and preprocessing."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deephash.atomic_io import load_checkpoint
from deephash.training.config import TrainConfig

__all__ = ["LoadedRun", "load_run"]


@dataclass
class LoadedRun:
    """A run's config, its network (eval mode, best weights) and what preprocessing needs."""

    run_dir: Path
    config: TrainConfig
    net: nn.Module
    device: torch.device
    data_info: dict[str, Any]

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """uint8 (B, H, W[, C]) -> normalised float (B, C, H, W), as during training."""
        from deephash.data.transforms import batch_to_tensor

        return batch_to_tensor(
            images, mean=self.data_info["mean"], std=self.data_info["std"], augment=False
        )

    def load_images(self, paths: list[Path] | list[str]) -> np.ndarray:
        """Decode image files into the training data's format: uint8 (N, H, W) for grey models,
        (N, H, W, 3) for colour ones, at the training image size (resize short side, centre crop)."""
        from deephash.data.image_folder import decode_images

        size = int(self.data_info["image_shape"][0])
        rgb = decode_images([Path(p) for p in paths], size, desc="decoding images")
        if int(self.data_info["in_channels"]) == 1:
            # ITU-R BT.601 luma, as PIL's "L" conversion
            gray = rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
            return np.clip(np.rint(gray), 0, 255).astype(np.uint8)
        return rgb

    @torch.no_grad()
    def encode(
        self, images: np.ndarray, batch_size: int = 512, progress: bool = False
    ) -> np.ndarray:
        """Model outputs for uint8 images: float32 (N, D) embeddings or relaxed codes."""
        from deephash.evaluation.evaluator import embed_images

        return embed_images(
            self.net,
            images,
            self.preprocess,
            device=self.device,
            batch_size=batch_size,
            progress=progress,
        )


def load_run(run_dir: str | Path, *, device: str = "auto", checkpoint: str = "best") -> LoadedRun:
    """Rebuild the network of ``run_dir`` and load its ``best.pt`` (or ``last.pt``) weights."""
    from deephash.device import resolve_device
    from deephash.training import recipe

    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise FileNotFoundError(f"{run_dir} is not a deephash run folder (no config.yaml)")
    ckpt = run_dir / f"{checkpoint}.pt"
    if not ckpt.exists():
        ckpt = run_dir / "last.pt"
    dev = resolve_device(device)
    state = load_checkpoint(ckpt, map_location=dev)
    cfg = TrainConfig.from_dict(state["config"])
    info = state.get("data_info")
    if info is None:
        raise ValueError(f"{ckpt} has no data_info; it was written by an older deephash")

    # The weights come from the checkpoint, so the backbone is built without initial weights.
    net = recipe.build_network(
        TrainConfig.from_dict({**cfg.to_dict(), "weights": None}), int(info["in_channels"])
    )
    net.load_state_dict(state["model"])
    net.to(dev).eval()
    return LoadedRun(run_dir=run_dir, config=cfg, net=net, device=dev, data_info=info)
