"""Every validation score of the exported epoch is shown, whichever one drives the search:
the terminal table, the HTML report's trial table and the model card."""

from __future__ import annotations

import io
from typing import Any

import pytest

from automl.config.schema import Config, SweepConfig
from automl.export.card import model_card
from automl.report.page import trial_table
from automl.search.summary import best_epoch_scores, print_table

HISTORY = [
    {"epoch": 1, "val_accuracy": 0.70, "val_f1": 0.20, "val_balanced_accuracy": 0.25,
     "val_loss": 0.9},
    {"epoch": 2, "val_accuracy": 0.80, "val_f1": 0.31, "val_balanced_accuracy": 0.3333,
     "val_loss": 0.8},
]  # fmt: skip


def _summary(metric: str) -> dict[str, Any]:
    row = {
        "trial_id": "t1", "params": {"train.class_weights": "sqrt"}, "status": "completed",
        "reason": "", "history": HISTORY, "best_value": HISTORY[1][metric], "best_epoch": 2,
        "wall_s": 5.0, "epochs_run": 2,
    }  # fmt: skip
    return {
        "sweep": "s", "metric": metric, "mode": "max", "best_value": row["best_value"],
        "best_trial": "t1", "best_epoch": 2, "num_trials": 1, "statuses": {"completed": 1},
        "wall_s": 5.0, "export_dir": None, "trials": [row],
    }  # fmt: skip


def test_best_epoch_scores_reads_the_best_epoch_not_the_last() -> None:
    row = {"history": HISTORY, "best_epoch": 1}
    assert best_epoch_scores(row) == {
        "val_accuracy": 0.70, "val_f1": 0.20, "val_balanced_accuracy": 0.25, "val_loss": 0.9,
    }  # fmt: skip
    assert best_epoch_scores({"history": [], "best_epoch": 0}) == {}


def test_an_export_no_better_than_the_commonest_class_is_said() -> None:
    """Every smoke trial on a small CSV of 3 balanced classes scored 0.3333: exported and
    registered as @champion without a word."""
    from automl.search.summary import no_better_than_majority

    row = {"history": HISTORY, "best_epoch": 1}  # validation accuracy 0.70
    assert no_better_than_majority(row, [0] * 70 + [1] * 30) is not None  # 0.70: no better
    said = no_better_than_majority(row, [0] * 69 + [1] * 31)
    assert said is None  # 0.70 beats 0.69
    assert "(0.7000) is no better than always answering the commonest class (0.8000)" in str(
        no_better_than_majority(row, [0] * 8 + [1] * 2)
    )
    assert no_better_than_majority({"history": [], "best_epoch": 0}, [0, 1]) is None
    # weighted classes trade accuracy for the small class: 0.88 under a 0.90 majority, with a
    # balanced accuracy of 0.86, is a model, not the commonest class
    good = {"history": [{"epoch": 1, "val_accuracy": 0.88, "val_balanced_accuracy": 0.86}],
            "best_epoch": 1}  # fmt: skip
    assert no_better_than_majority(good, [0] * 90 + [1] * 10) is None


@pytest.mark.parametrize("metric", ["val_accuracy", "val_f1", "val_balanced_accuracy"])
def test_terminal_and_html_tables_show_every_score(metric: str) -> None:
    summary = _summary(metric)
    out = io.StringIO()
    print_table(summary, out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("best trial's best epoch"))
    for shown in ("accuracy 0.8000", "macro-F1 0.3100", "balanced accuracy 0.3333"):
        assert shown in line
    html = trial_table(summary)
    for value in ("0.8", "0.31", "0.3333"):
        assert f"<td>{value}</td>" in html
    assert "balanced accuracy (best epoch)" in html or metric == "val_balanced_accuracy"


def test_a_sweep_that_exported_nothing_says_so_in_the_table_and_the_page() -> None:
    from automl.report.page import render_html

    summary = {**_summary("val_accuracy"), "best_trial": None, "best_value": None,
               "best_epoch": None, "outcome": "time_budget_ran_out", "trials": [],
               "num_trials": 0, "statuses": {}}  # fmt: skip
    out = io.StringIO()
    print_table(summary, out)
    assert out.getvalue().splitlines()[-1] == (
        "no best val_accuracy: 0 trials {}; 5.0 s; nothing exported"
    )
    page = render_html(summary, [])
    assert "<p><b>Nothing exported:</b> time budget ran out.</p>" in page
    assert "None" not in page
    gone = _summary("val_accuracy")  # a best trial whose checkpoint was deleted by hand
    out = io.StringIO()
    print_table(gone, out)
    assert out.getvalue().rstrip().endswith("exported to nothing (its checkpoint is gone)")
    assert "exported to nothing (its checkpoint is gone)</p>" in render_html(gone, [])


def test_card_lists_every_score_of_the_exported_epoch() -> None:
    provenance = {
        "metric": "val_f1", "best_value": 0.31, "checkpoint_epoch": 2,
        "best_scores": best_epoch_scores(_summary("val_f1")["trials"][0]),
    }  # fmt: skip
    card = model_card(Config(sweep=SweepConfig(metric="val_f1")), provenance, ["a", "b"])
    assert "validation val_f1: **0.3100**" in card
    assert (
        "at that epoch, validation accuracy 0.8000, macro-F1 0.3100, "
        "balanced accuracy 0.3333, loss 0.8000"
    ) in card


def test_best_epoch_scores_finds_the_epoch_by_its_number_not_its_place() -> None:
    """A history lacking epoch 1 (a record resumed from an older one) showed epoch 3's scores
    for best epoch 2, and ranked ties in the export by them."""
    history = [{"epoch": 2, "val_accuracy": 0.7, "val_loss": 0.46},
               {"epoch": 3, "val_accuracy": 0.69, "val_loss": 0.41}]  # fmt: skip
    assert best_epoch_scores({"history": history, "best_epoch": 2}) == {
        "val_accuracy": 0.7,
        "val_loss": 0.46,
    }
    assert best_epoch_scores({"history": history, "best_epoch": 1}) == {}
