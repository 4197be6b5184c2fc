import math

import pytest

from deephash.training.schedules import (
    ConstantSchedule,
    CosineSchedule,
    LinearSchedule,
    WarmupSchedule,
    create_schedule,
)


def test_constant_and_numbers() -> None:
    assert create_schedule(2) == ConstantSchedule(2.0)
    assert create_schedule(0.5)(100.0) == 0.5
    assert create_schedule({"type": "constant", "value": 3})(7) == 3.0


def test_warmup_by_hand() -> None:
    step = create_schedule({"type": "warmup", "value": 1.0, "start": 2})
    assert [step(e) for e in (0, 1.99, 2, 5)] == [0.0, 0.0, 1.0, 1.0]
    ramp = create_schedule({"type": "warmup", "value": 2.0, "start": 2, "ramp": 4})
    assert isinstance(ramp, WarmupSchedule)
    assert [ramp(e) for e in (1, 2, 3, 4, 6, 9)] == [0.0, 0.0, 0.5, 1.0, 2.0, 2.0]


def test_linear_by_hand() -> None:
    s = create_schedule(
        {"type": "linear", "start_value": 1, "end_value": 16, "start": 0, "end": 10}
    )
    assert isinstance(s, LinearSchedule)
    assert [s(e) for e in (-1, 0, 2, 5, 10, 12)] == [1.0, 1.0, 4.0, 8.5, 16.0, 16.0]
    assert s(2.5) == pytest.approx(4.75)  # fractional epochs


def test_cosine_by_hand() -> None:
    s = create_schedule(
        {"type": "cosine", "start_value": 1.0, "end_value": 0.0, "start": 2, "end": 6}
    )
    assert isinstance(s, CosineSchedule)
    assert s(0) == 1.0 and s(2) == 1.0 and s(6) == pytest.approx(0.0) and s(8) == pytest.approx(0.0)
    assert s(4) == pytest.approx(0.5)
    assert s(3) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("1.0", "must be a number or a mapping"),
        (True, "must be a number or a mapping"),
        ({"value": 1}, "unknown schedule type None"),
        ({"type": "stairs", "value": 1}, "unknown schedule type 'stairs'"),
        ({"type": "linear", "start_value": 1, "end_value": 2}, "missing end"),
        ({"type": "warmup", "value": 1, "epochs": 3}, "unknown field"),
        (
            {"type": "linear", "start_value": 1, "end_value": 2, "start": 5, "end": 5},
            "must be after",
        ),
        ({"type": "warmup", "value": "x"}, "finite number"),
        ({"type": "warmup", "value": 1, "ramp": -1}, ">= 0"),
    ],
)
def test_bad_specs(spec: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        create_schedule(spec)  # type: ignore[arg-type]


def test_step_by_hand() -> None:
    s = create_schedule({"type": "step", "values": [1, 2, 4, 8, 16], "every": 3})
    assert [s(e) for e in range(16)] == [1.0] * 3 + [2.0] * 3 + [4.0] * 3 + [8.0] * 3 + [16.0] * 4
    late = create_schedule({"type": "step", "values": [0.5, 1], "every": 2, "start": 1})
    assert [late(e) for e in (0, 1, 2.9, 3, 10)] == [0.5, 0.5, 0.5, 1.0, 1.0]
    with pytest.raises(ValueError, match="list of numbers"):
        create_schedule({"type": "step", "values": 3, "every": 1})
    with pytest.raises(ValueError, match="every must be > 0"):
        create_schedule({"type": "step", "values": [1], "every": 0})
    with pytest.raises(ValueError, match="at least one value"):
        create_schedule({"type": "step", "values": [], "every": 1})
    with pytest.raises(ValueError, match="finite number"):
        create_schedule({"type": "step", "values": [1, "x"], "every": 1})
