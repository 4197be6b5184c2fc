"""A run folder's layout, named in one place.

``deephash train`` (and ``compare``'s fitted rows) write a run folder; ``evaluate``, ``encode``,
the ImageNet-start weights, the baselines and the collection read it. Every one of them names the
files through :class:`RunFolder`, so the layout is written down once::

    runs/demo/best-hash-48/
      config.yaml      the recipe, as trained (TrainConfig.save)
      last.pt          the latest checkpoint (resume starts here)
      best.pt          the checkpoint of the best validation score (absent without validation)
      history.jsonl    one line per epoch: losses, validation scores, times
      metrics.json     the final evaluation
      features.npz     a frozen backbone's features (feature baselines)
      embeddings.npz   query / database embeddings of a baseline row
      codes.npz        query / database codes of a hashing baseline row
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RunFolder"]


@dataclass(frozen=True)
class RunFolder:
    """The files of the run folder at ``path`` (nothing is read or created by naming them)."""

    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def history(self) -> Path:
        return self.path / "history.jsonl"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def features(self) -> Path:
        return self.path / "features.npz"

    @property
    def embeddings(self) -> Path:
        return self.path / "embeddings.npz"

    @property
    def codes(self) -> Path:
        return self.path / "codes.npz"

    def checkpoint(self) -> Path:
        """The weights a trained run is used with: ``best.pt`` when validation chose one, else
        ``last.pt`` (which may not exist; callers say what is missing)."""
        return self.best if self.best.exists() else self.last

    def is_run(self) -> bool:
        """Whether the folder holds a run's recipe (``config.yaml``)."""
        return self.config.is_file()
