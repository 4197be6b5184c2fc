import numpy as np
import pytest

from deephash.metrics import copy_detection_report, micro_average_precision


def test_report_matches_a_hand_computation() -> None:
    # 3 queries, sources 7, 8, 9; two predictions each (-1: none)
    ids = np.array([[7, 1], [2, 8], [3, -1]])
    scores = np.array([[0.9, 0.5], [0.8, 0.6], [0.7, np.nan]])
    r = copy_detection_report(ids, scores, np.array([7, 8, 9]))
    assert r.recall_at_1 == pytest.approx(1 / 3)
    assert r.recall_at_10 == pytest.approx(2 / 3)
    assert r.mrr == pytest.approx((1 + 1 / 2 + 0) / 3)
    # pooled by score: 0.9 ok, 0.8 no, 0.7 no, 0.6 ok, 0.5 no; 3 positives in all
    # P at the correct ones: 1/1 at recall 1/3, 2/4 at recall 2/3 -> (1 + 0.5) / 3
    assert r.micro_ap == pytest.approx((1.0 + 0.5) / 3)
    assert r.queries == 3


def test_tied_scores_enter_together() -> None:
    # a wrong and a correct prediction tie at the top: precision 1/2 at recall 1/2
    ids = np.array([[5, 0], [6, 1]])
    scores = np.array([[-1.0, -3.0], [-2.0, -1.0]])
    # pooled: -1 (q0: 5 ok), -1 (q1: 6? no, id 1 wrong) tie, then -2 (q1: 6 ok), -3 (q0: 0 wrong)
    got = micro_average_precision(ids, scores, np.array([5, 6]))
    assert got == pytest.approx(0.5 * (1 / 2) + 0.5 * (2 / 3))
    # the order of the tied pair inside the arrays does not matter
    swapped = micro_average_precision(ids[::-1], scores[::-1], np.array([6, 5]))
    assert swapped == pytest.approx(got)


def test_perfect_and_empty() -> None:
    ids = np.arange(4)[:, None]
    assert micro_average_precision(ids, np.ones((4, 1)), np.arange(4)) == 1.0
    r = copy_detection_report(np.full((2, 3), -1), np.full((2, 3), np.nan), np.array([0, 1]))
    assert (r.recall_at_1, r.mrr, r.micro_ap) == (0.0, 0.0, 0.0)


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="ranked_ids"):
        copy_detection_report(np.zeros((2, 3), int), np.zeros((2, 2)), np.zeros(2, int))
    with pytest.raises(ValueError, match="NaN"):
        micro_average_precision(np.zeros((1, 1), int), np.full((1, 1), np.nan), np.zeros(1, int))
