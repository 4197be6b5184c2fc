import numpy as np
import pytest

from deephash.checks import check_choice, check_count, check_positive_int


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


@pytest.mark.parametrize(("value", "least"), [(None, 1), (0, 0), (5, 1), (np.int64(2), 2)])
def test_count_accepts(value: object, least: int) -> None:
    check_count(value, "radius", least)


@pytest.mark.parametrize(
    ("value", "least", "message"),
    [
        (-1, 0, r"radius must be >= 0, got -1"),
        (0, 1, r"radius must be >= 1, got 0"),
        (2.5, 0, r"radius must be a whole number, got 2\.5"),
        (True, 0, r"radius must be a whole number, got True"),
        ("3", 0, r"radius must be a whole number, got '3'"),
    ],
)
def test_count_refuses(value: object, least: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_count(value, "radius", least)
