"""A run's time limit (``time_limit_minutes``), which covers validation too.

An epoch stops early enough to leave the last validation pass's duration before the deadline, so
the training seconds overshoot it by at most about one batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from deephash.training.config import TrainConfig
from deephash.training.distributed import DistInfo, any_rank

__all__ = ["TimeBudget"]


@dataclass
class TimeBudget:
    """The deadline in training seconds (inf: none) and the duration of the last validation."""

    deadline: float
    val_seconds: float

    @classmethod
    def of(cls, cfg: TrainConfig, history: list[dict[str, Any]]) -> TimeBudget:
        """The recipe's budget; on resume the last validation's duration is the last epoch that
        validated, as an uninterrupted run would remember it."""
        deadline = cfg.time_limit_minutes * 60 if cfg.time_limit_minutes else math.inf
        val_seconds = next(
            (float(h["val_seconds"]) for h in reversed(history) if "val_seconds" in h), 0.0
        )
        return cls(deadline, val_seconds)

    def spent(self, elapsed: float) -> bool:
        """Whether no epoch fits any more after ``elapsed`` seconds."""
        return elapsed + self.val_seconds >= self.deadline

    def ends_epoch(self, elapsed: float, epoch_start: float, info: DistInfo) -> bool:
        """Whether the epoch started at ``epoch_start`` (a ``time.perf_counter()``) after
        ``elapsed`` seconds must stop now (asked of every rank: one stops, all stop)."""
        return math.isfinite(self.deadline) and any_rank(
            self.spent(elapsed + (time.perf_counter() - epoch_start)), info
        )
