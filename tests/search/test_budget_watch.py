"""Half the sweep's time budget gone with no epoch finished: one warning while there is still
time to act (the end of the sweep would only say the budget ran out)."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from automl.search.callback import SweepCallback

CONFIG = {"train.learning_rate": 0.01, "train.epochs": 3}


def _callback(budget_s: float | None) -> SweepCallback:
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=3, tracker=None, stopper=None,
        budget_s=budget_s, train_examples=200_000,
    )  # fmt: skip
    callback.setup()
    return callback


def _elapse(callback: SweepCallback, seconds: float) -> None:
    callback._fit_started = time.monotonic() - seconds  # as if the fit began `seconds` ago


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_half_the_budget_without_an_epoch_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    callback = _callback(budget_s=420)
    _elapse(callback, 200)
    callback.on_step_end(iteration=1, trials=[])
    assert _warnings(caplog) == []  # not half yet
    _elapse(callback, 215)
    callback.on_step_end(iteration=2, trials=[])
    callback.on_step_end(iteration=3, trials=[])
    (line,) = _warnings(caplog)
    assert "sweep.time_budget_s=420" in line and "200,000 training examples" in line
    assert "data.max_examples" in line


def test_no_warning_once_an_epoch_finished(caplog: pytest.LogCaptureFixture) -> None:
    callback = _callback(budget_s=420)
    trial = SimpleNamespace(trial_id="a", config=dict(CONFIG), last_result={})
    callback.on_trial_result(1, [], trial, {"epoch": 1, "val_accuracy": 0.5})
    _elapse(callback, 300)
    callback.on_step_end(iteration=2, trials=[])
    assert _warnings(caplog) == []


def test_no_budget_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    callback = _callback(budget_s=None)
    _elapse(callback, 10_000)
    callback.on_step_end(iteration=1, trials=[])
    assert _warnings(caplog) == []


def test_a_resumed_round_counts_the_epochs_before_the_stop(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dataclasses import asdict

    from automl.search.callback import TrialRecord

    callback = _callback(budget_s=420)
    done = TrialRecord("a", dict(CONFIG), history=[{"epoch": 1, "val_accuracy": 0.5}])
    callback.set_state({"records": [asdict(done)]})
    _elapse(callback, 300)
    callback.on_step_end(iteration=1, trials=[])
    assert _warnings(caplog) == []


def test_a_later_round_still_warns_though_earlier_rounds_had_epochs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from dataclasses import asdict

    from automl.search.callback import TrialRecord

    earlier = TrialRecord("a", dict(CONFIG), history=[{"epoch": 1, "val_accuracy": 0.5}])
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=3, tracker=None, stopper=None,
        previous=[earlier], budget_s=420, train_examples=10,
    )  # fmt: skip
    callback.setup()
    callback.set_state({"records": [asdict(earlier)]})  # a resumed second round
    _elapse(callback, 300)
    callback.on_step_end(iteration=1, trials=[])
    assert len(_warnings(caplog)) == 1


def test_a_resumed_sitting_counts_the_budget_the_earlier_ones_spent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """600 s, 200 s of them spent before a stop with no epoch done: the resumed sitting
    warned 300 s in (500 s gone), or never where less than half was left."""
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=3, tracker=None, stopper=None,
        budget_s=600, budget_spent_s=200, train_examples=200_000,
    )  # fmt: skip
    callback.setup()
    _elapse(callback, 90)
    callback.on_step_end(iteration=1, trials=[])
    assert _warnings(caplog) == []  # 290 s of 600
    _elapse(callback, 110)
    callback.on_step_end(iteration=2, trials=[])
    assert len(_warnings(caplog)) == 1  # 310 s of 600


def test_the_spent_budget_is_told_every_half_minute(caplog: pytest.LogCaptureFixture) -> None:
    """A SIGKILL (a lost node) leaves no handler to record the sitting: the sweep saves what
    the callback tells it every BUDGET_TOLD_EVERY_S, so its resume gets at most that again."""
    from automl.search.callback import BUDGET_TOLD_EVERY_S

    told: list[float] = []
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=3, tracker=None, stopper=None,
        budget_s=600, budget_spent_s=100, on_budget_spent=told.append, train_examples=10,
    )  # fmt: skip
    callback.setup()
    callback.on_step_end(iteration=1, trials=[])
    assert told == []  # not yet half a minute
    _elapse(callback, 40)
    callback._budget_told -= BUDGET_TOLD_EVERY_S
    callback.on_step_end(iteration=2, trials=[])
    assert len(told) == 1 and 139 < told[0] < 142  # 100 before, 40 in this sitting
    callback.on_step_end(iteration=3, trials=[])
    assert len(told) == 1
    # without a time budget too: the save records the sitting's wall time, which a SIGKILL
    # lost whole (the resumed summary counted the last sitting alone)
    told.clear()
    unbudgeted = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=3, tracker=None, stopper=None,
        on_budget_spent=told.append, train_examples=10,
    )  # fmt: skip
    unbudgeted.setup()
    _elapse(unbudgeted, 40)
    unbudgeted._budget_told -= BUDGET_TOLD_EVERY_S
    unbudgeted.on_step_end(iteration=1, trials=[])
    assert len(told) == 1
