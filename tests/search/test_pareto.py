"""Cost-aware export: the Pareto front (metric vs trainable parameters) and the export rule,
on synthetic trial rows."""

from __future__ import annotations

from typing import Any

import pytest

from automl.search.pareto import choose_export, export_choice, mark_pareto, pareto_front


def row(trial: str, value: float | None, params: int, status: str = "completed") -> dict[str, Any]:
    return {"trial_id": trial, "best_value": value, "trainable_params": params, "status": status}


@pytest.mark.parametrize(
    ("points", "mode", "front"),
    [
        ([(0.8, 100), (0.7, 10), (0.75, 50)], "max", [True, True, True]),
        ([(0.8, 100), (0.8, 50), (0.6, 50)], "max", [False, True, False]),  # same value, smaller
        ([(0.8, 100), (0.9, 100)], "max", [False, True]),
        ([(0.5, 20), (0.4, 20), (0.6, 5)], "min", [False, True, True]),  # val_loss: lower wins
        ([(0.7, 10), (0.7, 10)], "max", [True, True]),  # twins dominate neither
    ],
)
def test_pareto_front(points: list[tuple[float, int]], mode: str, front: list[bool]) -> None:
    assert pareto_front(points, mode) == front


def test_mark_pareto_leaves_out_unscored_and_failed() -> None:
    rows = [row("a", 0.8, 100), row("b", 0.7, 10), row("c", 0.9, 5, "failed"), row("d", None, 1)]
    mark_pareto(rows, "max")
    assert [r["pareto"] for r in rows] == [True, True, False, False]


def test_smallest_within_tolerance_of_the_best() -> None:
    rows = [row("big", 0.820, 22_000_000), row("lora", 0.817, 300_000), row("tiny", 0.70, 1_000)]
    assert choose_export(rows, "max")["trial_id"] == "big"
    assert choose_export(rows, "max", "smallest_within", 0.005)["trial_id"] == "lora"
    assert choose_export(rows, "max", "smallest_within", 0.002)["trial_id"] == "big"
    assert choose_export(rows, "max", "smallest_within", 0.2)["trial_id"] == "tiny"
    losses = [row("a", 0.50, 100), row("b", 0.503, 10)]
    assert choose_export(losses, "min", "smallest_within", 0.005)["trial_id"] == "b"


def test_equal_best_values_go_to_the_lower_validation_loss_then_the_earlier_trial() -> None:
    """Accuracy on 202 texts moves in steps of 0.5 %: ties went to whichever Ray started
    first, whatever their losses."""

    def scored(trial: str, accuracy: float, losses: list[float], best_epoch: int) -> dict:
        history = [
            {"epoch": e, "val_accuracy": accuracy, "val_loss": loss}
            for e, loss in enumerate(losses, start=1)
        ]
        return {**row(trial, accuracy, 10), "history": history, "best_epoch": best_epoch}

    rows = [scored("first", 0.8, [0.9, 0.7], 1), scored("second", 0.8, [0.8], 1),
            scored("worse", 0.79, [0.1], 1)]  # fmt: skip
    assert choose_export(rows, "max")["trial_id"] == "second"  # 0.8 at its best epoch, not 0.7
    rows[1]["history"][0]["val_loss"] = 0.9
    assert choose_export(rows, "max")["trial_id"] == "first"  # equal losses: the earlier
    no_history = [row("a", 0.8, 10), scored("b", 0.8, [float("nan")], 1), row("c", 0.8, 10)]
    assert choose_export(no_history, "max")["trial_id"] == "a"
    # smallest_within among equal sizes and values: the same trial as the top one
    rows[1]["history"][0]["val_loss"] = 0.8
    chosen, info = export_choice(rows, "max", "smallest_within", 0.0)
    assert chosen is not None and chosen["trial_id"] == info["top_trial"] == "second"


def test_export_choice_records_the_rule_and_the_top_trial() -> None:
    rows = [row("big", 0.82, 1000), row("small", 0.818, 10), row("x", None, 1, "failed")]
    chosen, info = export_choice(rows, "max", "smallest_within", 0.005)
    assert chosen is not None and chosen["trial_id"] == "small"
    assert info == {"rule": "smallest_within", "tolerance": 0.005, "top_trial": "big",
                    "top_value": 0.82}  # fmt: skip
    assert export_choice([row("x", None, 1, "failed")], "max", "best", 0.0)[0] is None


def test_export_choice_skips_a_trial_whose_checkpoint_is_gone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An extended sweep: the first round exported `a` and deleted the others' checkpoints;
    the new trial `b` moves the tolerance band so `smallest_within` names `c`, whose checkpoint
    is gone. The rule then chooses among the trials that kept theirs (it exported nothing, and
    the clean-up deleted every other checkpoint, `a`'s and `b`'s too)."""
    rows = [row("t", 0.90, 1000), row("c", 0.895, 500), row("a", 0.891, 100),
            row("b", 0.903, 2000)]  # fmt: skip
    kept = {"a", "b"}
    assert export_choice(rows, "max", "smallest_within", 0.01)[0]["trial_id"] == "c"
    with caplog.at_level("WARNING", logger="automl.sweep"):
        chosen, info = export_choice(
            rows, "max", "smallest_within", 0.01, exportable=lambda r: r["trial_id"] in kept
        )
    assert chosen is not None and chosen["trial_id"] == "b"  # a (0.891) is outside 0.903 - 0.01
    assert info["without_checkpoint"] == "c" and info["top_trial"] == "b"
    assert "trial c, whose checkpoint was deleted" in caplog.text
    # the band counts from the sweep's best, kept or not: the best kept trial outside it is
    # exported with a warning saying so, and the summary names the real top
    caplog.clear()
    lost_top = [row("t", 0.90, 1000), row("a", 0.88, 100)]
    with caplog.at_level("WARNING", logger="automl.sweep"):
        chosen, info = export_choice(
            lost_top, "max", "smallest_within", 0.005, exportable=lambda r: r["trial_id"] == "a"
        )
    assert chosen is not None and chosen["trial_id"] == "a"
    assert (info["top_trial"], info["top_value"], info["without_checkpoint"]) == ("t", 0.90, "t")
    assert info["outside_rule"] is True
    assert "below the sweep's best 0.9000 by more than the rule allows" in caplog.text
    # within the band from the sweep's best (0.89..0.90), not from the best kept one (0.883..)
    band = [row("t", 0.90, 1000), row("c", 0.895, 50), row("a", 0.893, 800),
            row("b", 0.888, 100)]  # fmt: skip
    chosen, info = export_choice(
        band, "max", "smallest_within", 0.01, exportable=lambda r: r["trial_id"] in {"a", "b"}
    )
    assert chosen is not None and chosen["trial_id"] == "a" and "outside_rule" not in info
    # the rule's own choice still there: nothing changes, nothing is said
    caplog.clear()
    chosen, info = export_choice(rows, "max", "smallest_within", 0.01, exportable=lambda r: True)
    assert chosen is not None and chosen["trial_id"] == "c" and "without_checkpoint" not in info
    assert "checkpoint was deleted" not in caplog.text
