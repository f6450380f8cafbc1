"""When an experiment ends, every trial Ray ran gets a final status, also those whose records a
kill lost or left behind (Ray saves its trials and this sweep's records in separate files)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from automl.search.callback import RayTrialEnd, SweepCallback, TrialRecord
from automl.train import checkpoint

CONFIG = {"train.learning_rate": 0.01, "train.epochs": 3}


def _checkpoint(tmp: Path, name: str, accuracies: list[float], *, ended: bool) -> str:
    """A trial's latest checkpoint after len(accuracies) epochs; `ended`: slimmed, as the
    driver leaves it once the trial has ended."""
    folder = tmp / name
    folder.mkdir()
    history = [{"epoch": i + 1, "val_accuracy": a} for i, a in enumerate(accuracies)]
    best = max(range(len(accuracies)), key=lambda i: accuracies[i])
    progress = checkpoint.Progress(len(accuracies), history, accuracies[best], best + 1)
    (folder / checkpoint.PROGRESS_FILE).write_text(json.dumps(asdict(progress)))
    (folder / checkpoint.BEST_FILE).write_bytes(b"weights")
    if not ended:
        (folder / checkpoint.LAST_FILE).write_bytes(b"weights")
    return str(folder)


def _end(trial_id: str, folder: str = "", epochs: int = 0, error: str = "") -> RayTrialEnd:
    metrics = {"trial_id": trial_id, "training_iteration": epochs, "time_total_s": 12.5}
    return RayTrialEnd(
        trial_id, dict(CONFIG), folder, error, metrics if epochs else {"trial_id": trial_id}
    )


def _callback() -> SweepCallback:
    return SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=3, tracker=None, stopper=None
    )


def test_a_trial_whose_record_was_lost_is_rebuilt_from_its_checkpoint(tmp_path: Path) -> None:
    callback = _callback()
    folder = _checkpoint(tmp_path, "a", [0.5, 0.7, 0.6], ended=True)
    callback.close_unfinished([_end("a", folder, epochs=3)], budget_s=None)
    record = callback.records["a"]
    assert (record.status, record.epochs_run, record.best_value, record.best_epoch) == (
        "completed", 3, 0.7, 2,
    )  # fmt: skip
    assert record.params == CONFIG and record.checkpoint == folder
    assert record.wall_s >= 12.5  # Ray's count of the time it trained


def test_a_record_left_behind_takes_the_epochs_of_its_checkpoint(tmp_path: Path) -> None:
    """Records saved after epoch 1; the trial had been stopped after 2 of 3 epochs."""
    callback = _callback()
    behind = TrialRecord("b", dict(CONFIG), history=[{"epoch": 1, "val_accuracy": 0.5}])
    callback.set_state({"records": [asdict(behind)]})
    folder = _checkpoint(tmp_path, "b", [0.5, 0.6], ended=True)
    callback.close_unfinished([_end("b", folder, epochs=2)], budget_s=300)
    record = callback.records["b"]
    assert (record.status, record.epochs_run) == ("stopped_early", 2)
    assert record.reason == "stopped after 2 of 3 epochs"  # not the budget: it had ended


def test_a_trial_the_budget_stopped_is_not_taken_for_one_that_ended(tmp_path: Path) -> None:
    callback = _callback()
    callback.set_state({"records": [asdict(TrialRecord("c", dict(CONFIG)))]})
    folder = _checkpoint(tmp_path, "c", [0.4, 0.5], ended=False)
    callback.close_unfinished([_end("c", folder, epochs=2)], budget_s=300)
    record = callback.records["c"]
    assert (record.status, record.epochs_run) == ("stopped_budget", 2)
    assert record.reason == "time budget 300 s ran out after 2 epochs"  # (in its third)
    assert checkpoint.is_slim(Path(folder))  # only its best weights kept


def test_a_trial_whose_last_epoch_was_in_when_the_budget_ran_out_completed(
    tmp_path: Path,
) -> None:
    """All 3 planned epochs reported, the trial's own end not yet: it is `completed`, not
    `stopped_budget` (it lost nothing to the budget)."""
    callback = _callback()
    callback.set_state({"records": [asdict(TrialRecord("d", dict(CONFIG)))]})
    folder = _checkpoint(tmp_path, "d", [0.4, 0.6, 0.5], ended=False)
    callback.close_unfinished([_end("d", folder, epochs=3)], budget_s=300)
    record = callback.records["d"]
    assert (record.status, record.reason, record.epochs_run) == ("completed", "", 3)


def test_pending_trials_get_no_record_and_failed_ones_fail(tmp_path: Path) -> None:
    callback = _callback()
    folder = _checkpoint(tmp_path, "e", [0.3], ended=False)
    ended = [_end("p"), _end("e", folder, epochs=1, error="RuntimeError: boom")]
    callback.close_unfinished(ended, budget_s=300)
    assert "p" not in callback.records  # never started: nothing to record
    assert (callback.records["e"].status, callback.records["e"].reason) == (
        "failed", "RuntimeError: boom",
    )  # fmt: skip


def test_a_trial_that_ended_keeps_how_it_ended(tmp_path: Path) -> None:
    """The checkpoint records how its trial ended when it is slimmed: a failed trial, or one
    the overfit rule pruned (the restored stopper may be older), stays so after a kill lost
    its record, whether Ray leaves it ended or restarts it (it then ends at once)."""
    from types import SimpleNamespace

    failed = _checkpoint(tmp_path, "f", [0.5, 0.4], ended=False)
    checkpoint.slim(Path(failed), {"status": "failed", "reason": "RuntimeError: boom"})
    pruned = _checkpoint(tmp_path, "o", [0.5, 0.4], ended=False)
    checkpoint.slim(Path(pruned), {"status": "pruned_overfit", "reason": "val_loss rose"})
    callback = _callback()
    callback.close_unfinished([_end("f", failed, epochs=2)], budget_s=300)
    restarted = SimpleNamespace(
        trial_id="o", config=dict(CONFIG), last_result={},
        checkpoint=SimpleNamespace(path=pruned),
    )  # fmt: skip
    callback.on_trial_start(0, [], restarted)
    callback.on_trial_complete(0, [], restarted)
    assert [(r.status, r.reason, r.epochs_run) for r in callback.records.values()] == [
        ("failed", "RuntimeError: boom", 2), ("pruned_overfit", "val_loss rose", 2),
    ]  # fmt: skip


def test_only_trials_ray_stopped_unreported_are_left_for_the_study(tmp_path: Path) -> None:
    """Ray tells the searcher of trials that end (ASHA, the overfit rule, their last epoch), not
    of those the time budget cuts off: only the latter are the driver's to tell (a pending
    trial with the same parameters took an ended one's value when every scored trial was)."""
    callback = _callback()
    records = [TrialRecord(t, dict(CONFIG)) for t in ("ended", "cut", "last")]
    callback.set_state({"records": [asdict(r) for r in records]})
    ended = _checkpoint(tmp_path, "ended", [0.5, 0.6], ended=True)
    cut = _checkpoint(tmp_path, "cut", [0.4, 0.5], ended=False)
    last = _checkpoint(tmp_path, "last", [0.4, 0.6, 0.5], ended=False)
    callback.close_unfinished(
        [_end("ended", ended, epochs=2), _end("cut", cut, epochs=2), _end("last", last, 3)],
        budget_s=300,
    )
    assert [callback.records[t].status for t in ("ended", "cut", "last")] == [
        "stopped_early", "stopped_budget", "completed",
    ]  # fmt: skip
    assert callback.unreported == ["cut", "last"]
