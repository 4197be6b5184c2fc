import numpy as np
import pytest

from deephash.checks import check_choice, check_positive_int


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_positive_int_accepts(value: object) -> None:
    assert check_positive_int(value, "k") == int(value)  # type: ignore[call-overload]


@pytest.mark.parametrize("value", [0, -1, 2.0, "3", True, None])
def test_positive_int_refuses(value: object) -> None:
    with pytest.raises(ValueError, match="k must be a positive integer"):
        check_positive_int(value, "k")


def test_choice() -> None:
    check_choice("a", ("a", "b"), "mode")
    with pytest.raises(ValueError, match=r"mode must be one of \['a', 'b'\], got 'c'"):
        check_choice("c", ("a", "b"), "mode")
