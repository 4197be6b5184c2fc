"""Copy-detection metrics: does a search find the image a query was copied from?

Each query is a transformed copy of exactly one database item, its *source*. A method returns, per
query, a ranked list of database ids with a confidence score each (higher = more confident: a
re-rank score, or minus a Hamming distance). Definitions (the Image Similarity Challenge's, DISC21,
for µAP):

- **R@k** (recall at k): share of queries whose source is among the first k returned ids.
- **MRR**: mean over queries of 1 / (rank of the source), 0 when the source is not returned.
- **µAP** (micro average precision): every returned (query, id, score) from all queries is pooled
  into one list and sorted by score, highest first; a prediction is correct when the id is the
  query's source. µAP = Σ_t (R_t − R_{t−1}) · P_t over the distinct score thresholds t, where P_t
  and R_t are the precision and recall of the predictions with score ≥ t (tied predictions enter
  together), and recall counts against the number of queries (a source never returned lowers it).
  So µAP also asks that the scores of correct matches stand above the scores of wrong ones
  *across* queries, the way a threshold would be set in a copy-detection system.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["CopyDetectionReport", "copy_detection_report", "micro_average_precision"]


@dataclass(frozen=True)
class CopyDetectionReport:
    """R@1, R@10, MRR and µAP of the sources over ``queries`` queries (see the module)."""

    recall_at_1: float
    recall_at_10: float
    mrr: float
    micro_ap: float
    queries: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _check(
    ranked_ids: np.ndarray, scores: np.ndarray, sources: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = np.asarray(ranked_ids)
    sc = np.asarray(scores, dtype=np.float64)
    src = np.asarray(sources).reshape(-1)
    if ids.ndim != 2 or sc.shape != ids.shape or len(src) != len(ids):
        raise ValueError(
            f"ranked_ids {ids.shape} and scores {sc.shape} must both be (nq, K), sources (nq,), "
            f"got sources {src.shape}"
        )
    if ids.dtype.kind not in "iu" or src.dtype.kind not in "iu":
        raise ValueError("ranked_ids and sources must be integer ids")
    return ids.astype(np.int64), sc, src.astype(np.int64)


def micro_average_precision(
    ranked_ids: np.ndarray, scores: np.ndarray, sources: np.ndarray
) -> float:
    """µAP of the pooled predictions (definition in the module docstring).

    ranked_ids: int (nq, K) returned database ids, -1 for no prediction; scores: float (nq, K),
    higher = more confident (ignored where the id is -1); sources: int (nq,) each query's source.
    """
    ids, sc, src = _check(ranked_ids, scores, sources)
    if len(src) == 0:
        return 0.0
    valid = ids >= 0
    pooled_scores = sc[valid]
    if np.isnan(pooled_scores).any():
        raise ValueError("a returned id has a NaN score")
    correct = (ids == src[:, None])[valid]
    order = np.argsort(-pooled_scores, kind="stable")
    s, c = pooled_scores[order], correct[order].astype(np.int64)
    tp = np.cumsum(c)
    # the last prediction of each group of equal scores: ties enter the ranking together
    last = np.r_[s[1:] != s[:-1], True] if len(s) else np.zeros(0, bool)
    tp_t = tp[last]
    n_t = np.flatnonzero(last) + 1
    recall = tp_t / len(src)
    precision = tp_t / n_t
    gains = np.diff(np.r_[0.0, recall])
    return float(np.sum(gains * precision))


def copy_detection_report(
    ranked_ids: np.ndarray, scores: np.ndarray, sources: np.ndarray
) -> CopyDetectionReport:
    """R@1, R@10, MRR and µAP of ranked results (arguments as :func:`micro_average_precision`;
    R@10 uses the first min(10, K) ids)."""
    ids, sc, src = _check(ranked_ids, scores, sources)
    if len(src) == 0:
        raise ValueError("no queries")
    hit = ids == src[:, None]
    found = hit.any(1)
    rank = np.where(found, hit.argmax(1) + 1, 0)
    rr = np.where(found, 1.0 / np.maximum(rank, 1), 0.0)
    return CopyDetectionReport(
        recall_at_1=float(np.mean(hit[:, :1].any(1))),
        recall_at_10=float(np.mean(hit[:, :10].any(1))),
        mrr=float(np.mean(rr)),
        micro_ap=micro_average_precision(ids, sc, src),
        queries=len(src),
    )
