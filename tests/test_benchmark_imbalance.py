"""Pure logic of the imbalance benchmark (no models): which epoch counts, deltas, the goal."""

from __future__ import annotations

import pytest

from benchmarks.imbalance import exported_epoch, markdown, table


def epoch(e: int, val_acc: float, val_f1: float, test_acc: float, test_f1: float) -> dict:
    return {
        "epoch": e, "val_accuracy": val_acc, "val_f1": val_f1, "val_balanced_accuracy": val_f1,
        "test_accuracy": test_acc, "test_f1": test_f1, "test_balanced_accuracy": test_f1,
    }  # fmt: skip


HISTORY = [
    epoch(1, 0.7, 0.30, 0.71, 0.31),
    epoch(2, 0.8, 0.25, 0.79, 0.26),
    epoch(3, 0.8, 0.2, 0, 0),
]


def test_the_exported_epoch_is_the_first_best_by_the_objective() -> None:
    assert exported_epoch(HISTORY, "val_accuracy")["epoch"] == 2  # ties keep the earlier epoch
    assert exported_epoch(HISTORY, "val_f1")["epoch"] == 1
    assert exported_epoch([], "val_f1") == {}


def trial(option: str, seed: int, test_acc: float, test_f1: float) -> dict:
    return {
        "task": "full", "option": option, "seed": seed, "wall_s": 60.0,
        "history": [epoch(1, 0.8, 0.3, test_acc, test_f1)],
    }  # fmt: skip


def test_table_compares_each_option_with_today_on_the_same_seeds() -> None:
    trials = [
        trial("today", 0, 0.80, 0.30), trial("today", 1, 0.82, 0.28),
        trial("weights_sqrt", 0, 0.80, 0.46), trial("weights_sqrt", 1, 0.81, 0.46),
        trial("sampling_balanced", 0, 0.70, 0.60), trial("sampling_balanced", 1, 0.72, 0.60),
        trial("weights_balanced", 1, 0.80, 0.50),  # one seed: paired with today's seed 1 only
        trial("sampling_sqrt", 2, 0.80, 0.50),  # a seed today lacks: no delta
    ]  # fmt: skip
    rows = {r["option"]: r for r in table(trials) if r["objective"] == "val_accuracy"}
    assert rows["today"]["test_f1"] == pytest.approx(0.29)
    assert rows["weights_sqrt"]["d_test_f1"] == pytest.approx(0.17)
    assert rows["weights_sqrt"]["d_test_accuracy"] == pytest.approx(-0.005)
    assert rows["weights_sqrt"]["meets_goal"] is True
    assert rows["sampling_balanced"]["meets_goal"] is False  # 10 points of accuracy lost
    assert rows["weights_balanced"]["d_test_f1"] == pytest.approx(0.22)
    assert rows["weights_balanced"]["d_seeds"] == [1]
    assert "d_test_f1" not in rows["sampling_sqrt"]
    results = {
        "machine": {"cpus": 2, "gpu": False, "torch": "t", "transformers": "x", "python": "3",
                    "platform": "p", "date": "d"},
        "setup": "s", "trials": trials, "table": table(trials),
    }  # fmt: skip
    text = markdown(results)
    assert "| weights_sqrt | 0,1 | 0.805" in text and "| +0.170 | yes |" in text
