"""How a trial that ended without error is labelled: pruning must have saved epochs."""

from __future__ import annotations

import pytest

from automl.search.callback import final_status

OVERFIT = "val_accuracy has not improved for 2 epochs"


@pytest.mark.parametrize(
    ("epochs_run", "planned", "reason", "status"),
    [
        (3, 3, None, "completed"),
        (12, 12, OVERFIT, "completed"),  # the rule fired at the last epoch: nothing was saved
        (5, 12, OVERFIT, "pruned_overfit"),
        (1, 3, None, "stopped_early"),  # ASHA
    ],
)
def test_final_status(epochs_run: int, planned: int, reason: str | None, status: str) -> None:
    got, why = final_status(epochs_run, planned, reason)
    assert got == status
    assert (why == reason) if status == "pruned_overfit" else (status != "completed" or why == "")
    if status == "stopped_early":
        assert f"{epochs_run} of {planned}" in why
