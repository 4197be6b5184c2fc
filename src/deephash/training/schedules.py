"""Schedules for hyper-parameters that change during training (``alpha``, ``lam``, ``margin``...).

A schedule is a callable ``schedule(epoch: float) -> float``; ``epoch`` may be fractional
(``epoch + step / steps_per_epoch``) so values can change every step. Configs describe schedules
with plain values (see :func:`create_schedule`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ConstantSchedule",
    "CosineSchedule",
    "LinearSchedule",
    "Schedule",
    "StepSchedule",
    "WarmupSchedule",
    "create_schedule",
    "create_schedules",
]


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"schedule field {name!r} must be a finite number, got {value!r}")
    return float(value)


class Schedule:
    """Base class: ``__call__(epoch) -> value``."""

    def __call__(self, epoch: float) -> float:
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantSchedule(Schedule):
    """Always ``value``."""

    value: float

    def __call__(self, epoch: float) -> float:
        return self.value


@dataclass(frozen=True)
class WarmupSchedule(Schedule):
    """0 before epoch ``start``; then rises linearly to ``value`` over ``ramp`` epochs (a step when
    ``ramp == 0``) and stays there: ``value · clip((epoch − start) / ramp, 0, 1)``."""

    value: float
    start: float = 0.0
    ramp: float = 0.0

    def __post_init__(self) -> None:
        if self.start < 0 or self.ramp < 0:
            raise ValueError(f"warmup start and ramp must be >= 0, got {self.start}, {self.ramp}")

    def __call__(self, epoch: float) -> float:
        if epoch < self.start:
            return 0.0
        if self.ramp == 0:
            return self.value
        return self.value * min(1.0, (epoch - self.start) / self.ramp)


@dataclass(frozen=True)
class LinearSchedule(Schedule):
    """``start_value`` until epoch ``start``, linear to ``end_value`` at epoch ``end``, then constant."""

    start_value: float
    end_value: float
    start: float
    end: float

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"schedule end ({self.end}) must be after start ({self.start})")

    def _progress(self, epoch: float) -> float:
        return min(1.0, max(0.0, (epoch - self.start) / (self.end - self.start)))

    def __call__(self, epoch: float) -> float:
        t = self._progress(epoch)
        return self.start_value + (self.end_value - self.start_value) * t


@dataclass(frozen=True)
class CosineSchedule(LinearSchedule):
    """Half-cosine from ``start_value`` (epoch ``start``) to ``end_value`` (epoch ``end``):
    ``end + (start_value − end_value) · (1 + cos(π t)) / 2`` with ``t`` the clipped progress."""

    def __call__(self, epoch: float) -> float:
        t = self._progress(epoch)
        return self.end_value + (self.start_value - self.end_value) * 0.5 * (
            1 + math.cos(math.pi * t)
        )


@dataclass(frozen=True)
class StepSchedule(Schedule):
    """A staircase: ``values[0]`` until epoch ``start + every``, then ``values[1]`` for the next
    ``every`` epochs, and so on; the last value stays. Before ``start``: ``values[0]``.
    E.g. ``values=(1, 2, 4, 8, 16), every=3``: α doubled every 3 epochs, 16 from epoch 12."""

    values: tuple[float, ...]
    every: float
    start: float = 0.0

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a step schedule needs at least one value")
        if self.every <= 0 or self.start < 0:
            raise ValueError(
                f"step schedule: every must be > 0 and start >= 0, got {self.every}, {self.start}"
            )

    def __call__(self, epoch: float) -> float:
        stage = math.floor(max(0.0, epoch - self.start) / self.every)
        return self.values[min(stage, len(self.values) - 1)]


_FIELDS: dict[str, tuple[type[Schedule], set[str], set[str]]] = {
    # type: (class, required fields, optional fields)
    "constant": (ConstantSchedule, {"value"}, set()),
    "warmup": (WarmupSchedule, {"value"}, {"start", "ramp"}),
    "linear": (LinearSchedule, {"start_value", "end_value", "end"}, {"start"}),
    "cosine": (CosineSchedule, {"start_value", "end_value", "end"}, {"start"}),
    "step": (StepSchedule, {"values", "every"}, {"start"}),
}


def create_schedule(spec: float | int | Mapping[str, Any] | Schedule) -> Schedule:
    """Build a schedule from a config value.

    - a number -> :class:`ConstantSchedule`;
    - ``{"type": "constant", "value": v}``;
    - ``{"type": "warmup", "value": 1.0, "start": 2, "ramp": 3}`` (start, ramp default 0);
    - ``{"type": "linear" | "cosine", "start_value": 1, "end_value": 16, "start": 0, "end": 10}``
      (start defaults to 0);
    - ``{"type": "step", "values": [1, 2, 4, 8, 16], "every": 3}`` (start defaults to 0);
    - a :class:`Schedule` passes through.
    """
    if isinstance(spec, Schedule):
        return spec
    if isinstance(spec, int | float) and not isinstance(spec, bool):
        return ConstantSchedule(_number("value", spec))
    if not isinstance(spec, Mapping):
        raise ValueError(
            f"a schedule must be a number or a mapping with a 'type', got {type(spec).__name__}"
        )
    kind = spec.get("type")
    if kind not in _FIELDS:
        raise ValueError(f"unknown schedule type {kind!r}; use one of {', '.join(sorted(_FIELDS))}")
    cls, required, optional = _FIELDS[kind]
    given = set(spec) - {"type"}
    missing = required - given
    if missing:
        raise ValueError(f"{kind} schedule is missing {', '.join(sorted(missing))}")
    unknown = given - required - optional
    if unknown:
        allowed = ", ".join(sorted(required | optional))
        raise ValueError(
            f"{kind} schedule got unknown field(s) {', '.join(sorted(unknown))}; allowed: {allowed}"
        )
    kwargs: dict[str, Any] = {k: _number(k, spec[k]) for k in given - {"values"}}
    if "values" in given:
        values = spec["values"]
        if isinstance(values, str) or not isinstance(values, Sequence):
            raise ValueError(f"schedule field 'values' must be a list of numbers, got {values!r}")
        kwargs["values"] = tuple(_number("values", v) for v in values)
    return cls(**kwargs)


def create_schedules(
    specs: Mapping[str, float | int | Mapping[str, Any] | Schedule],
) -> dict[str, Schedule]:
    """One schedule per loss attribute name (a config's ``schedules``), see :func:`create_schedule`."""
    return {name: create_schedule(spec) for name, spec in specs.items()}
