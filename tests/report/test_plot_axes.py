"""Plot axes that stay readable: numbers in order with unset values apart, and legends that
name the best trials of a long sweep, not all of them."""

from __future__ import annotations

from automl.report.plots import LEGEND_TRIALS, _axis, _legend_trials


def test_numbers_keep_their_order_when_some_trials_leave_the_value_unset() -> None:
    """One `None` (auto) made the whole axis categories sorted by printed length."""
    rates = [0.001, 0.0005, 5e-05, 0.0002, "unset"]
    pos, labels, ticks = _axis(rates)
    by_position = [v for _, v in sorted(zip(pos, rates, strict=True), key=lambda p: p[0])]
    assert by_position == ["unset", 5e-05, 0.0002, 0.0005, 0.001]
    assert labels == ["5e-05", "0.001", "unset"] and min(ticks) == pos[-1]
    pos, labels, _ = _axis([None, 16, 8])
    assert pos[0] < pos[2] < pos[1] and labels[-1] == "None"


def test_a_long_sweeps_legend_names_its_best_trials() -> None:
    trials = [{"trial_id": f"t{i}", "best_value": i / 200} for i in range(150)]
    trials.append({"trial_id": "failed", "best_value": None})
    named = _legend_trials({"trials": trials, "mode": "max", "best_trial": "t149"}, LEGEND_TRIALS)
    assert named == {f"t{i}" for i in range(150 - LEGEND_TRIALS, 150)}
    lowest = _legend_trials({"trials": trials, "mode": "min", "best_trial": "t0"}, 3)
    assert lowest == {"t0", "t1", "t2"}
