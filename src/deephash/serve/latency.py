"""Query latency percentiles over a sliding window of recent requests."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

__all__ = ["LatencyRecorder"]


class LatencyRecorder:
    """Keeps the last ``window`` latencies (milliseconds) and the total count."""

    def __init__(self, window: int = 10_000) -> None:
        self._values: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()
        self.total = 0

    def record(self, ms: float) -> None:
        with self._lock:
            self._values.append(float(ms))
            self.total += 1

    def percentiles(self) -> dict[str, float | int | None]:
        """``{"count", "p50", "p95", "p99"}`` in ms over the window (None before any query)."""
        with self._lock:
            values = np.array(self._values, dtype=np.float64)
            total = self.total
        if not len(values):
            return {"count": total, "p50": None, "p95": None, "p99": None}
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        return {
            "count": total,
            "p50": round(float(p50), 3),
            "p95": round(float(p95), 3),
            "p99": round(float(p99), 3),
        }
