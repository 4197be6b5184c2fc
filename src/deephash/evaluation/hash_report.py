"""What a hashing run adds to its metrics: bit statistics and a Hamming-ranking PR curve plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from deephash import metrics as m
from deephash.codes import pack_bits, sign
from deephash.hashing.bit_stats import bit_stats
from deephash.viz import plot_precision_recall

__all__ = ["hash_report"]


def hash_report(
    query: np.ndarray,
    query_labels: np.ndarray,
    database: np.ndarray,
    database_labels: np.ndarray,
    *,
    bits: int,
    label: str,
    plot_path: Path,
    leave_one_out: bool = False,
) -> dict[str, Any]:
    """Bit statistics of the database codes and the precision–recall curve of Hamming ranking.

    query/database: relaxed codes float (n, bits), signed here; labels: (n,) class ids.
    Writes the curve to ``plot_path`` (legend ``label``) and returns ``{"bit_stats": {...},
    "pr_curve": {...}}`` for metrics.json. leave_one_out: query i is database item i and is left
    out of its own ranking (see :func:`deephash.metrics.precision_recall_curve`).
    """
    qc, dc = pack_bits(sign(query)), pack_bits(sign(database))
    stats = bit_stats(dc, bits)
    curve = m.precision_recall_curve(
        qc,
        query_labels,
        dc,
        database_labels,
        distance="hamming",
        bits=bits,
        leave_one_out=leave_one_out,
    )
    plot_precision_recall(
        {label: (np.asarray(curve.precision), np.asarray(curve.recall))},
        plot_path,
        title="Hamming ranking precision–recall",
    )
    return {
        "bit_stats": {
            "balance": [round(float(v), 4) for v in stats.balance],
            "max_abs_balance": stats.max_abs_balance,
            "distinct_fraction": stats.distinct_fraction,
            "mean_abs_correlation": stats.mean_abs_correlation,
            "max_abs_correlation": stats.max_abs_correlation,
        },
        "pr_curve": curve.to_dict(),
    }
