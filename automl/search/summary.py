"""The end-of-sweep summary as a table on the terminal."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from automl.console import counted

# How the per-epoch validation scores are named wherever they are shown (table, card, report).
SCORE_NAMES = {
    "val_accuracy": "accuracy",
    "val_f1": "macro-F1",
    "val_balanced_accuracy": "balanced accuracy",
    "val_loss": "loss",
}


def best_epoch_scores(row: Any) -> dict[str, float]:
    """Every validation score of a trial's best epoch, whichever metric chose that epoch (`row`:
    a summary row, or a trial record)."""
    get = row.get if isinstance(row, Mapping) else lambda key: getattr(row, key, None)
    history, epoch = get("history") or [], get("best_epoch") or 0
    # by its number: a history resumed from an older record may lack an epoch
    found = [h for h in history if isinstance(h, Mapping) and h.get("epoch") == epoch]
    if not epoch or not found:
        return {}
    return {k: found[0][k] for k in SCORE_NAMES if k in found[0]}


def no_better_than_majority(row: Mapping[str, Any], val_labels: Sequence[int]) -> str | None:
    """Why the exported trial is no model worth using: its best epoch's validation accuracy
    is no better than always answering the validation split's commonest class (a search
    space whose ranges do not fit the data: every smoke trial on a small CSV). None else."""
    scores = best_epoch_scores(row)
    accuracy, balanced = scores.get("val_accuracy"), scores.get("val_balanced_accuracy")
    if accuracy is None or not len(val_labels):
        return None
    counts = Counter(int(x) for x in val_labels)
    majority = max(counts.values()) / len(val_labels)
    # by both: weighted classes or a balanced metric trade accuracy for the small classes
    if accuracy > majority + 1e-9 or (balanced is not None and balanced > 1 / len(counts) + 1e-9):
        return None
    return (
        f"the exported trial's validation accuracy ({accuracy:.4f}) is no better than always "
        f"answering the commonest class ({majority:.4f}): the search space's ranges may not "
        "fit this data (a wider learning-rate range, more epochs)"
    )


def describe_scores(scores: Mapping[str, float]) -> str:
    """`accuracy 0.8150, macro-F1 0.2800, ...` (empty when there are none)."""
    return ", ".join(f"{SCORE_NAMES[k]} {v:.4f}" for k, v in scores.items() if k in SCORE_NAMES)


# Where the export went when the best trial's checkpoint was deleted before the export
CHECKPOINT_GONE = "nothing (its checkpoint is gone)"


def print_table(summary: dict[str, Any], stream: Any) -> None:
    """The end-of-sweep table: one row per trial, the best marked."""
    metric = summary["metric"]
    head = (
        f"{'trial':<14}{'status':<16}{'best ' + metric:>18}{'epoch':>7}{'epochs':>8}"
        f"{'wall s':>9}  params"
    )
    print("\n" + head, file=stream)
    for row in summary["trials"]:
        mark = " *" if row["trial_id"] == summary["best_trial"] else ""
        value = f"{row['best_value']:.4f}" if row["best_value"] is not None else "-"
        params = ", ".join(
            f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
            for k, v in row["params"].items()
        )
        print(
            f"{row['trial_id']:<14}{row['status']:<16}{value:>18}{row['best_epoch']:>7}"
            f"{row['epochs_run']:>8}{row['wall_s']:>9.1f}  {params}{mark}",
            file=stream,
        )
    rows = [r for r in summary["trials"] if r["trial_id"] == summary["best_trial"]]
    best_row: dict[str, Any] = rows[0] if rows else {}
    if scores := describe_scores(best_epoch_scores(best_row)):
        print(f"\nbest trial's best epoch, validation: {scores}", file=stream)
    counts = (
        f"{counted(summary['num_trials'], 'trial')} {summary['statuses']}; {summary['wall_s']} s"
    )
    if summary["best_trial"] is None:  # the one-line error after it says why
        print(f"\nno best {metric}: {counts}; nothing exported", file=stream)
        return
    exported = f"exported to {summary['export_dir'] or CHECKPOINT_GONE}"
    if summary.get("export_blocked") and not summary["export_dir"]:  # the error above says why
        exported = "not exported (its folder is in the way; the checkpoint is kept)"
    print(
        f"\nbest {metric}: {summary['best_value']} (trial {summary['best_trial']}); "
        f"{counts}; {exported}",
        file=stream,
    )


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return counts
