"""Retrieval metrics: pure functions of (query, query labels, database, database labels).

Codes are packed uint8 ``(n, ceil(bits / 8))`` in the :mod:`deephash.codes` (faiss) layout and
ranked by Hamming distance with an exact counting-sort kernel; float embeddings ``(n, d)`` are
ranked by Euclidean or cosine distance. Ranking ties are always broken by database order. Labels
are class ids of any integer values (relevant = same class) or multi-label indicator matrices
(relevant = at least one shared label). Each function's docstring states its definition.
``leave_one_out=True`` is the metric-learning shape "every item queries all the others": query i
is database item i (checked) and is left out of its own ranking.
"""

from deephash.metrics.average_precision import mean_average_precision
from deephash.metrics.copy_detection import (
    CopyDetectionReport,
    copy_detection_report,
    micro_average_precision,
)
from deephash.metrics.knn import knn_accuracy
from deephash.metrics.map_at_r import map_at_r, r_precision
from deephash.metrics.pr_curve import PrecisionRecallCurve, precision_recall_curve
from deephash.metrics.precision import precision_at_k, precision_within_radius
from deephash.metrics.report import RetrievalReport, retrieval_report

__all__ = [
    "CopyDetectionReport",
    "PrecisionRecallCurve",
    "RetrievalReport",
    "copy_detection_report",
    "knn_accuracy",
    "map_at_r",
    "mean_average_precision",
    "micro_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
    "r_precision",
    "retrieval_report",
]
