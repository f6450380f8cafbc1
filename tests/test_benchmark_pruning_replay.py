"""The pruning replay feeds recorded histories to the real stopper and ASHA: where they stop, and
whether the sweep's pick (and so its known test accuracy) survives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from automl.search.stopping import OverfitRule
from benchmarks.pruning_replay import main, replay

FALLING = [2.0, 1.5, 1.0, 0.7]


def _trial(acc: list[float], val_loss: list[float]) -> dict[str, Any]:
    history = [
        {"val_accuracy": a, "val_loss": v, "train_loss": t}
        for a, v, t in zip(acc, val_loss, FALLING, strict=True)
    ]
    return {"history": history}


def _result(*trials: dict[str, Any], test: float = 0.9) -> dict[str, Any]:
    return {"runs": [{"pruner": "none", "seed": 0, "test_accuracy": test, "trials": list(trials)}]}


OVERFITS = _trial([0.6, 0.8, 0.8, 0.8], [1.0, 0.7, 0.9, 1.1])  # best epoch 2, then loss rises
PLATEAU_THEN_CLIMB = _trial([0.5, 0.7, 0.7, 0.9], [1.2, 0.9, 0.8, 0.6])  # loss keeps falling


def test_overfitting_trial_stops_and_pick_survives() -> None:
    slow = _trial([0.5, 0.6, 0.7, 0.75], [1.2, 1.0, 0.9, 0.8])
    out = replay(
        _result(OVERFITS, slow), OverfitRule(grace_period=1, patience=1, signal="both"), None
    )
    (seed,) = out["per_seed"]
    assert seed["statuses"] == ["pruned_overfit@3", "completed@4"]
    assert seed["epochs"] == "7 / 8"
    assert seed["same_pick"] is True and seed["test"] == 0.9


def test_rule_that_cuts_the_eventual_pick_leaves_test_unknown() -> None:
    result = _result(OVERFITS, PLATEAU_THEN_CLIMB)
    metric = replay(result, OverfitRule(grace_period=1, patience=1, signal="metric"), None)
    assert metric["per_seed"][0]["statuses"] == ["pruned_overfit@3", "pruned_overfit@3"]
    assert metric["per_seed"][0]["same_pick"] is False
    assert metric["per_seed"][0]["test"] is None  # never guessed
    both = replay(result, OverfitRule(grace_period=1, patience=1, signal="both"), None)
    assert both["per_seed"][0]["statuses"] == ["pruned_overfit@3", "completed@4"]
    assert both["per_seed"][0]["same_pick"] is True


def test_asha_stops_a_trial_below_the_rung() -> None:
    worse_start = _trial([0.5, 0.6, 0.7, 0.75], [1.2, 1.0, 0.9, 0.8])
    rule = OverfitRule(grace_period=1, patience=1, signal="both")
    out = replay(_result(OVERFITS, worse_start), rule, (1, 2.0))
    assert out["per_seed"][0]["statuses"] == ["pruned_overfit@3", "stopped_early@1"]
    assert out["median_saving"] == pytest.approx(1 - 4 / 8)


def test_sweep_without_histories_is_named() -> None:
    with pytest.raises(SystemExit, match="seed 0: no per-epoch history"):
        replay(_result({"history": []}), OverfitRule(), None)


def test_mode_min_picks_the_lowest_value() -> None:
    rule = OverfitRule(metric="val_loss", mode="min", grace_period=1, patience=1)
    out = replay(_result(OVERFITS, PLATEAU_THEN_CLIMB), rule, None)
    (seed,) = out["per_seed"]
    # OVERFITS: lowest loss 0.7 at epoch 2, none lower at epoch 3 (patience 1) -> pruned at 3
    assert seed["statuses"] == ["pruned_overfit@3", "completed@4"]
    assert seed["pick_val"] == "0.6000 vs 0.6000"  # PLATEAU_THEN_CLIMB's last epoch, either way
    assert seed["same_pick"] is True


def test_a_file_that_is_not_a_result_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "notes.json"
    bad.write_text("not json")
    for path in (bad, tmp_path / "missing.json"):
        with pytest.raises(SystemExit) as stop:
            main([str(path)])
        assert stop.value.code == 2
        assert "not a benchmarks.pruning result" in capsys.readouterr().err
