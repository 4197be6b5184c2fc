"""Loading a finished (or interrupted) run folder: its config, network and preprocessing."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from deephash.atomic_io import load_checkpoint
from deephash.run_folder import RunFolder
from deephash.training.config import TrainConfig

__all__ = ["ENCODER_ENGINES", "LoadedRun", "load_run"]

# the engine that encodes images for a collection and the server ($DEEPHASH_ENCODER): "auto"
# (ONNX Runtime when installed, on a CPU, and within 1e-4 of torch; else torch), "torch",
# "onnxruntime" (an error when it cannot be used)
ENCODER_ENGINES = ("auto", "torch", "onnxruntime")


@dataclass
class LoadedRun:
    """A run's config, its network (eval mode, best weights) and what preprocessing needs."""

    run_dir: Path
    config: TrainConfig
    net: nn.Module
    device: torch.device
    data_info: dict[str, Any]
    _engines: dict[str | None, Any] = field(default_factory=dict, repr=False)
    _engine_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    def engine(self, descriptor: str | None) -> Any:
        """The ONNX Runtime encoder of this network (and ``descriptor``), built once, or None
        when torch encodes (see :data:`ENCODER_ENGINES`)."""
        with self._engine_lock:
            if descriptor not in self._engines:
                self._engines[descriptor] = self._build_engine(descriptor)
            return self._engines[descriptor]

    def _build_engine(self, descriptor: str | None) -> Any:
        from deephash.models.onnx_encoder import OnnxEncoder, onnxruntime_available

        choice = os.environ.get("DEEPHASH_ENCODER", "auto")
        if choice not in ENCODER_ENGINES:
            raise ValueError(f"DEEPHASH_ENCODER must be one of {ENCODER_ENGINES}, got {choice!r}")
        if choice == "torch" or (choice == "auto" and self.device.type != "cpu"):
            return None
        if not onnxruntime_available():
            if choice == "onnxruntime":
                raise ImportError("DEEPHASH_ENCODER=onnxruntime: pip install 'deephash[onnx]'")
            return None
        size = self.data_info["image_shape"]
        shape = (int(self.data_info["in_channels"]), int(size[0]), int(size[1]))
        try:
            return OnnxEncoder(self.net, shape, descriptor)
        except Exception as exc:  # export or agreement failed: torch stays the engine
            if choice == "onnxruntime":
                raise
            # e.g. a pooling ONNX cannot express: torch encodes, as without ONNX Runtime
            logging.getLogger(__name__).info("%s: encoding with torch (%s)", self.run_dir, exc)
            return None

    def encode_for_search(
        self, images: np.ndarray, descriptor: str | None = None, batch_size: int = 256
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """uint8 images (N, H, W[, C]) at the model's size -> (outputs float32 (N, out_dim),
        descriptors float32 (N, D) or None): what a collection stores, through the engine
        (ONNX Runtime or torch, see :data:`ENCODER_ENGINES`)."""
        from deephash.models.descriptors import compute_descriptors

        engine = self.engine(descriptor)
        outs: list[np.ndarray] = []
        descs: list[np.ndarray] = []
        with torch.inference_mode():
            for s in range(0, len(images), batch_size):
                x = self.preprocess(images[s : s + batch_size])
                if engine is not None:
                    out, desc = engine(x)
                elif descriptor is None:
                    out, desc = self.net(x.to(self.device)).float(), None
                else:
                    desc, out = compute_descriptors(self.net, x.to(self.device), descriptor)
                outs.append(out.cpu().numpy())
                if desc is not None:
                    descs.append(desc.cpu().numpy())
        width = int(getattr(self.net, "out_dim", 0)) or None
        empty = np.zeros((0, width or 0), np.float32)
        return (
            np.concatenate(outs) if outs else empty,
            (np.concatenate(descs) if descs else None),
        )


def load_run(run_dir: str | Path, *, device: str = "auto", checkpoint: str = "best") -> LoadedRun:
    """Rebuild the network of ``run_dir`` and load its ``best.pt`` (or ``last.pt``) weights."""
    from deephash.device import resolve_device
    from deephash.training import recipe

    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not folder.is_run():
        raise FileNotFoundError(f"{run_dir} is not a deephash run folder (no config.yaml)")
    ckpt = folder.best if checkpoint == "best" else run_dir / f"{checkpoint}.pt"
    if not ckpt.exists():
        ckpt = folder.last
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
    from deephash.models.cpu_inference import channels_last_for_cpu

    channels_last_for_cpu(net, dev)  # encoding speed; the values agree to float rounding
    return LoadedRun(run_dir=run_dir, config=cfg, net=net, device=dev, data_info=info)
