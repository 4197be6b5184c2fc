import warnings

import pytest

from deephash.training.validation import CollapseWarning, check_collapse


@pytest.mark.parametrize(
    ("spread", "active", "val_map", "collapsed"),
    [
        (0.5, 0.5, 0.8, False),
        (0.01, 0.5, 0.8, True),  # distances nearly all equal
        (0.5, 1.0, 0.1, True),  # every term active at a poor mAP
        (0.5, 1.0, 0.5, False),  # every term active, but retrieval works
    ],
)
def test_check_collapse(spread: float, active: float, val_map: float, collapsed: bool) -> None:
    val = {"val_map": val_map, "val_distance_spread": spread}
    record = {"epoch": 3, "active_fraction": active}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_collapse(val, record)
    assert [w.category for w in caught] == ([CollapseWarning] if collapsed else [])
    if collapsed:
        assert "epoch 3: embeddings look collapsed" in str(caught[0].message)
