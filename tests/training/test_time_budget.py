import math
import types

import pytest

from deephash.training import time_budget
from deephash.training.config import TrainConfig
from deephash.training.distributed import DistInfo
from deephash.training.time_budget import TimeBudget


def test_budget_leaves_the_last_validation_before_the_deadline() -> None:
    cfg = TrainConfig(time_limit_minutes=1.0)
    history = [{"val_seconds": 4.0}, {"epoch": 2}, {"val_seconds": 6.0}, {"epoch": 4}]
    budget = TimeBudget.of(cfg, history)  # the last epoch that validated
    assert (budget.deadline, budget.val_seconds) == (60.0, 6.0)
    assert not budget.spent(53.9) and budget.spent(54.0)


def test_no_limit_never_stops_and_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    def clock() -> float:
        raise AssertionError("the clock was read without a limit")

    monkeypatch.setattr(time_budget, "time", types.SimpleNamespace(perf_counter=clock))
    budget = TimeBudget.of(TrainConfig(), [])
    assert budget.deadline == math.inf and budget.val_seconds == 0.0
    assert not budget.spent(1e12)
    assert not budget.ends_epoch(1e12, 0.0, DistInfo())


def test_epoch_stops_when_its_own_seconds_reach_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = {"t": 110.0}
    monkeypatch.setattr(time_budget, "time", types.SimpleNamespace(perf_counter=lambda: now["t"]))
    budget = TimeBudget(deadline=60.0, val_seconds=5.0)
    # 40 s before this epoch (started at t=100), 10 s into it: 40 + 10 + 5 < 60
    assert not budget.ends_epoch(40.0, 100.0, DistInfo())
    now["t"] = 115.0  # 40 + 15 + 5 = 60
    assert budget.ends_epoch(40.0, 100.0, DistInfo())
