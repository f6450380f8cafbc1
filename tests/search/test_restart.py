"""Restart bookkeeping without a sweep: what a fresh sweep may delete, the overfit stopper's
state across a driver restart, and MLflow steps a resumed trial must not log twice."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from conftest import mlflow_uri
from ray.tune.callback import CallbackList

from automl.config.schema import ConfigError
from automl.search.callback import SweepCallback
from automl.search.state import SweepState
from automl.search.stopping import OverfitRule, OverfitStopper
from automl.search.sweep import _starting_state
from automl.tracking.runs import SweepTracker


def _plan(tmp: Path, name: str) -> Any:
    sweep = SimpleNamespace(name=name, resume=False, num_samples=2)
    return SimpleNamespace(
        conf=SimpleNamespace(sweep=sweep), out_dir=tmp / "out" / name, storage=tmp / "ray"
    )


def test_fresh_sweep_removes_only_its_own_experiments(tmp_path: Path) -> None:
    from automl.search.state import SweepState

    storage = tmp_path / "ray"
    names = ["default", "default-r1", "default-r12", "default-roberta", "default-r2x", "defaults"]
    for name in names:
        (storage / name).mkdir(parents=True)
    plan = _plan(tmp_path, "default")
    SweepState(phase="finished", round=1).save(plan.out_dir)  # the earlier run: rounds 0 and 1
    _starting_state(plan)
    left = sorted(p.name for p in storage.iterdir())
    # round 12 was never this sweep's: a sweep named `default-r12` may share the storage
    assert left == ["default-r12", "default-r2x", "default-roberta", "defaults"]
    assert SweepState.load(plan.out_dir).round == 0
    _starting_state(plan)  # no rounds recorded now: only `default` would go
    assert sorted(p.name for p in storage.iterdir()) == left


def test_a_sweep_refuses_folders_it_did_not_write(tmp_path: Path) -> None:
    """What `_starting_state` deletes and what the sweep overwrites must be the sweep's own:
    empty, written by a sweep (its state file) or, for Ray's folders, by Ray Tune (tuner.pkl)."""
    from automl.search.state import not_a_sweep_folder, not_ray_experiments

    out, storage = tmp_path / "out" / "default", tmp_path / "ray"
    assert not_a_sweep_folder(out) is None and not_ray_experiments(storage, "default") is None
    out.mkdir(parents=True)
    (storage / "default-roberta").mkdir(parents=True)  # another sweep's: never deleted anyway
    (storage / "default-roberta" / "data.csv").write_text("a,b\n")
    (storage / "default-r1").mkdir()  # empty: nothing to lose
    assert not_a_sweep_folder(out) is None and not_ray_experiments(storage, "default") is None
    (out / "summary.json").write_text("{}")  # a user's project folder
    assert not_a_sweep_folder(out) == (
        f"{out} holds files and is not a sweep's folder "
        "(none of sweep_state.json, optuna.journal, data_quality.json)"
    )
    (out / "sweep_state.json").write_text("{}")
    assert not_a_sweep_folder(out) is None
    (storage / "default").mkdir()
    (storage / "default" / "data.csv").write_text("a,b\n")
    assert not_ray_experiments(storage, "default") == (
        f"{storage / 'default'} holds files Ray Tune did not write (no tuner.pkl); "
        "sweep 'default' would delete it"
    )
    (storage / "default" / "tuner.pkl").write_bytes(b"")
    # Ray Tune's, but marked by no sweep: another tool's run in a storage of the user's (a
    # fresh start deleted it), unless the storage is the sweep's own (inside its folder)
    assert not_ray_experiments(storage, "default") == (
        f"{storage / 'default'} is a Ray Tune experiment no sweep marked as its own (another "
        "tool's run, or a sweep's from before 2026-12-06); sweep 'default' would delete it: "
        "move it, name this sweep differently (sweep.name=...), or give it its own paths.storage"
    )
    assert not_ray_experiments(storage, "default", unmarked_ours=True) is None


@pytest.mark.parametrize(
    ("saved", "said"),
    [
        ({"phase": "running", "round": "2"}, 'round: "2" is not what a sweep\'s state holds'),
        ({"phase": "finished", "records": [1, 2]}, "records: [1, 2] is not what"),
        ({"phase": "finished", "records": {}}, "records: {} is not what"),
        ({"phase": "running", "wall_s": True}, "wall_s: true is not what"),
        ({"phase": "done"}, "phase: 'done' is not one of ['new', 'running', 'exporting',"),
    ],
)
def test_a_state_file_edited_into_other_types_is_one_line(
    tmp_path: Path, saved: dict[str, Any], said: str
) -> None:
    """A hand-edited sweep_state.json of the right keys and other types was a TypeError (or
    an AttributeError) traceback mid-resume."""
    (tmp_path / "sweep_state.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError) as err:
        SweepState.load(tmp_path)
    assert said in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "sweep_state.json").write_text(json.dumps({"phase": "finished", "round": 1}))
    assert SweepState.load(tmp_path).round == 1
    # every field has its type checked (a field added later and left out was not)
    from dataclasses import fields

    from automl.search.state import _STATE_TYPES

    assert set(_STATE_TYPES) == {f.name for f in fields(SweepState)}


def test_a_sweep_owns_only_its_own_rounds_in_a_shared_storage(tmp_path: Path) -> None:
    """`bert-r1` is round 1 of sweep `bert` or a sweep of its own: `bert` deletes it only if it
    ran a round 1, and neither may share the folder with the other."""
    from automl.search.state import own_experiments, round_clash

    storage = tmp_path / "ray"
    for name in ("bert", "bert-r1", "bert-r2"):
        (storage / name).mkdir(parents=True)
    assert own_experiments(storage, "bert", 0) == [storage / "bert"]
    assert own_experiments(storage, "bert", 1) == [storage / "bert", storage / "bert-r1"]
    assert round_clash(storage, "bert-r1") == (
        "'bert-r1' is also the Ray experiment of round 1 of sweep 'bert' there"
    )
    assert round_clash(storage, "bert") is None
    assert round_clash(storage, "bert", next_round=2) == (
        f"{storage / 'bert-r2'} is not a round of this sweep (another sweep's?); move it away"
    )
    assert round_clash(storage, "bert", next_round=3) is None
    assert round_clash(tmp_path / "outputs" / "bert-r1" / "ray", "bert-r1") is None  # its own


def test_a_fresh_start_killed_midway_leaves_folders_the_next_one_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deleting the old experiment is cut short by a kill: what is left is still the sweep's."""
    import shutil

    from automl.search.state import STATE_FILE, not_a_sweep_folder, not_ray_experiments

    plan = _plan(tmp_path, "default")
    plan.out_dir.mkdir(parents=True)
    (plan.out_dir / STATE_FILE).write_text('{"phase": "finished", "round": 0, "records": []}')
    experiment = plan.storage / "default"
    for trial in ("trial_a", "trial_b", "trial_c"):
        (experiment / trial).mkdir(parents=True)
        (experiment / trial / "result.json").write_text("{}")
    (experiment / "tuner.pkl").write_bytes(b"")
    real_rmtree, removed = shutil.rmtree, []

    def killed_after_one(path: Any, *args: Any, **kwargs: Any) -> None:
        if removed:
            raise KeyboardInterrupt
        removed.append(path)
        real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        _starting_state(plan, run_id="parent-run")
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert len(removed) == 1 and (experiment / "tuner.pkl").is_file()
    # its MLflow run, recorded by the first save: the next fresh start ends it (a kill here
    # left it RUNNING for ever)
    assert SweepState.load(plan.out_dir).mlflow_run_id == "parent-run"
    assert not_a_sweep_folder(plan.out_dir) is None
    # unmarked, and its state without an id, as before the marks: still the sweep's own
    assert SweepState.load(plan.out_dir).sweep_id == ""
    assert not_ray_experiments(plan.storage, "default", unmarked_ours=True) is None
    _starting_state(plan)  # the next fresh start finishes the job
    assert not experiment.exists()


def _callback(stopper: OverfitStopper) -> SweepCallback:
    return SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=6, tracker=None, stopper=stopper
    )


def test_overfit_stopper_history_survives_a_driver_restart(tmp_path: Path) -> None:
    rule = OverfitRule(grace_period=1, patience=2)
    before = OverfitStopper(rule)
    epochs = [
        {"epoch": 1, "training_iteration": 1, "val_accuracy": 0.8, "train_loss": 1.0},
        {"epoch": 2, "training_iteration": 2, "val_accuracy": 0.7, "train_loss": 0.8},
    ]
    for result in epochs:
        assert not before("t1", result)
    # Ray saves the callbacks' state with the experiment and hands it to fresh objects on restore
    CallbackList([_callback(before)]).save_to_dir(str(tmp_path))
    after = OverfitStopper(rule)
    CallbackList([_callback(after)]).restore_from_dir(str(tmp_path))
    assert after.history("t1") == before.history("t1")
    # patience carries on: one more epoch without improvement (loss still falling) prunes
    third = {"epoch": 3, "training_iteration": 3, "val_accuracy": 0.7, "train_loss": 0.6}
    assert after("t1", third)
    assert "not improved for 2 epochs" in (after.reason("t1") or "")


@pytest.mark.slow  # a sweep, a cluster or a CLI process
def test_resumed_trial_does_not_log_an_epoch_twice(tmp_path: Path) -> None:
    uri = mlflow_uri(tmp_path)
    first = SweepTracker(uri, "exp", "sw")
    first.start_sweep({}, {}, resume=False)
    first.child("t1", {"train.learning_rate": 0.01})
    for epoch in (1, 2, 3):
        first.log_epoch("t1", {"epoch": epoch, "val_accuracy": 0.1 * epoch, "val_loss": 1.0})
    # the driver was killed; the trial resumes from its epoch-2 checkpoint and replays epoch 3
    again = SweepTracker(uri, "exp", "sw")
    again.start_sweep({}, {}, resume=True)
    again.child("t1", {"train.learning_rate": 0.01})
    for epoch in (3, 4):
        again.log_epoch("t1", {"epoch": epoch, "val_accuracy": 0.1 * epoch, "val_loss": 1.0})
    run_id = again.child("t1", {})
    for key in ("val_accuracy", "val_loss"):
        steps = sorted(m.step for m in again.client.get_metric_history(run_id, key))
        assert steps == [1, 2, 3, 4], key


def test_an_epoch_whose_loss_was_nan_is_not_logged_again_after_a_resume(tmp_path: Path) -> None:
    """The last logged epoch was read from val_loss alone: an epoch with a NaN loss (not
    logged) but an accuracy (logged) had its accuracy logged a second time after a resume."""
    uri = mlflow_uri(tmp_path)
    first = SweepTracker(uri, "exp", "sw")
    first.start_sweep({}, {}, resume=False)
    first.child("t1", {"train.learning_rate": 0.01})
    first.log_epoch("t1", {"epoch": 1, "val_accuracy": 0.5, "val_loss": 1.0})
    first.log_epoch("t1", {"epoch": 2, "val_accuracy": 0.4, "val_loss": float("nan")})
    again = SweepTracker(uri, "exp", "sw")
    again.start_sweep({}, {}, resume=True)
    again.child("t1", {"train.learning_rate": 0.01})
    for epoch in (2, 3):  # resumed from its epoch-1 checkpoint
        again.log_epoch("t1", {"epoch": epoch, "val_accuracy": 0.4, "val_loss": float("nan")})
    history = again.client.get_metric_history(again.child("t1", {}), "val_accuracy")
    assert sorted(m.step for m in history) == [1, 2, 3]


def test_a_shared_storage_keeps_each_output_folders_sweep_its_own(tmp_path: Path) -> None:
    """Two sweeps named `default` from two output folders on one `paths.storage`: the second
    deleted the first's Ray experiment on a fresh start, or resumed its trials as its own."""
    from automl.search.state import (
        SweepState,
        holds_output,
        mark_owner,
        not_ray_experiments,
    )

    first = _plan(tmp_path / "a", "default")
    first.storage = tmp_path / "ray"
    state = _starting_state(first)
    assert state.sweep_id and SweepState.load(first.out_dir).sweep_id == state.sweep_id
    experiment = first.storage / "default"
    mark_owner(experiment, state.sweep_id, first.out_dir)
    assert not_ray_experiments(first.storage, "default", 0, state.sweep_id) is None  # killed
    (experiment / "tuner.pkl").write_bytes(b"")  # before Ray wrote, or after: its own
    assert not_ray_experiments(first.storage, "default", 0, state.sweep_id) is None
    for other_id in ("", "0" * 32):  # a new sweep elsewhere, another one's state
        assert not_ray_experiments(first.storage, "default", 0, other_id) == (
            f"{experiment} is the Ray experiment of the sweep 'default' in {first.out_dir}, "
            "not this one's; name this sweep differently (sweep.name=...), give it its own "
            "paths.storage, or delete that folder if its sweep is gone"
        )
    # its owner's output folder is here but records no sweep, or a later one: abandoned
    (first.out_dir / "sweep_state.json").unlink()
    assert not_ray_experiments(first.storage, "default", 0, "0" * 32) is None
    SweepState(sweep_id="later").save(first.out_dir)
    assert not_ray_experiments(first.storage, "default", 0, "0" * 32) is None
    # ... but the same path on another machine (a shared storage's other driver) is not this
    # machine's folder: its sweep is not provably gone
    owner = experiment / "automl_sweep.json"
    owner.write_text(owner.read_text().replace(socket.gethostname(), "another-machine"))
    assert not_ray_experiments(first.storage, "default", 0, "0" * 32) is not None
    SweepState(sweep_id=state.sweep_id).save(first.out_dir)
    (experiment / "automl_sweep.json").unlink()  # unmarked: another tool's, or from before
    assert "no sweep marked as its own" in str(
        not_ray_experiments(first.storage, "default", 0, "0" * 32)
    )  # the marks (the plan says which: `check_storage_free`)
    assert not_ray_experiments(first.storage, "default", 0, "0" * 32, unmarked_ours=True) is None
    # the storage folder itself as the outputs: its experiment folder is the sweep's own
    out = tmp_path / "outputs" / "default"
    assert holds_output(tmp_path / "outputs", "default", 0, out) is not None
    assert holds_output(tmp_path / "outputs" / "default" / "..", "default", 1, out) is not None
    assert holds_output(out / "ray", "default", 0, out) is None  # the default: inside it


def test_the_hint_to_export_again_adds_no_trials_to_a_sweep_the_budget_cut() -> None:
    """`sweep.resume=true` alone ran a new round: 4 of 11 trials, `num_samples` 11."""
    from automl.search.state import finish_again

    cut = SweepState(phase="finished", records=[{"trial_id": t} for t in "abcd"])
    assert cut.extends(11)  # what the plain resume did
    hint = finish_again(len(cut.records))
    assert hint == "sweep.resume=true sweep.num_samples=4" and not cut.extends(4)


def test_a_fresh_start_removes_a_linked_round_folder_not_what_it_points_to(
    tmp_path: Path,
) -> None:
    """A round folder that is a link (to a bigger disk, say): a fresh start emptied its
    target, then failed on the link with a traceback."""
    from automl.search.state import mark_owner

    plan = _plan(tmp_path, "default")
    SweepState(phase="finished", sweep_id="ours").save(plan.out_dir)
    target = tmp_path / "big-disk" / "default"
    (target / "trial_a").mkdir(parents=True)
    (target / "tuner.pkl").write_bytes(b"")
    mark_owner(target, "ours", plan.out_dir)
    plan.storage.mkdir()
    (plan.storage / "default").symlink_to(target)
    _starting_state(plan)
    assert not (plan.storage / "default").exists() and (target / "trial_a").is_dir()


def test_a_sweep_from_before_the_marks_marks_its_folders_when_resumed(tmp_path: Path) -> None:
    """Its first resume gave its state an id but left its unmarked Ray folders as they were:
    every later start refused its own folder (unmarked, in a storage of the user's)."""
    from automl.search.state import OWNER_FILE, not_ray_experiments

    plan = _plan(tmp_path, "default")
    plan.conf.sweep.resume = True
    SweepState(phase="running", round=1).save(plan.out_dir)  # no sweep_id: before the marks
    for name in ("default", "default-r1"):
        (plan.storage / name / "trial_a").mkdir(parents=True)
        (plan.storage / name / "tuner.pkl").write_bytes(b"")
    state = _starting_state(plan)
    assert state.sweep_id and SweepState.load(plan.out_dir).sweep_id == state.sweep_id
    for name in ("default", "default-r1"):
        assert (plan.storage / name / OWNER_FILE).is_file()
    assert not_ray_experiments(plan.storage, "default", 1, state.sweep_id) is None


def test_a_fresh_start_killed_midway_keeps_the_ids_its_folders_carry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new state is saved before the stale experiment is deleted; it keeps the stale id
    until the deletion ends, so the next start still finds the folder its own."""
    import shutil

    from automl.search.state import SweepState, mark_owner, not_ray_experiments

    plan = _plan(tmp_path, "default")
    SweepState(phase="finished", round=2, sweep_id="stale").save(plan.out_dir)
    for name in ("default", "default-r1", "default-r2"):  # two extension rounds
        (plan.storage / name / "trial_a").mkdir(parents=True)
        (plan.storage / name / "tuner.pkl").write_bytes(b"")
        mark_owner(plan.storage / name, "stale", plan.out_dir)
    experiment = plan.storage / "default"
    real_rmtree = shutil.rmtree

    def killed(path: Any, *args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        _starting_state(plan)
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    kept = SweepState.load(plan.out_dir)
    assert kept.sweep_id == "stale" and kept.phase == "new" and kept.round == 2
    assert (experiment / "automl_sweep.json").is_file()  # deleted last, with tuner.pkl
    assert not_ray_experiments(plan.storage, "default", 2, kept.sweep_id) is None
    plan.conf.sweep.resume = True  # resumed: a fresh start after all, which finishes the job
    fresh = _starting_state(plan)
    assert not experiment.exists() and not (plan.storage / "default-r2").exists()
    assert fresh.sweep_id not in ("", "stale") and fresh.round == 0


def test_a_failed_save_of_the_spent_budget_does_not_end_the_sweep(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ray does not catch a callback's error: a full disk at a 30-s save ended the whole fit."""
    from automl.search.state import SweepState
    from automl.search.sweep import _record_spent

    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    state = SweepState()
    with caplog.at_level("WARNING"):
        _record_spent(state, 12.5, blocked)  # mkdir of a file's path: an OSError
    assert state.round_spent_s == 12.5 and "could not record the time budget" in caplog.text


@pytest.mark.slow  # a sweep, a cluster or a CLI process
def test_a_sweep_resumed_under_a_new_mlflow_run_gets_its_earlier_trials_there(
    tmp_path: Path,
) -> None:
    """Resumed with tracking on after running untracked (or after its run was deleted), the
    new parent run had no children: the restored trials' later epochs and ends were dropped,
    and the trials that had ended were missing from it."""
    from dataclasses import asdict

    from automl.search.callback import TrialRecord

    epochs = [{"epoch": 1.0, "val_accuracy": 0.6, "val_loss": 1.1, "train_loss": 1.3},
              {"epoch": 2.0, "val_accuracy": 0.7, "val_loss": 0.9, "train_loss": 1.0}]  # fmt: skip
    ended = TrialRecord("t1", {"train.learning_rate": 0.01}, status="completed", history=epochs)
    ended.best_value, ended.best_epoch = 0.7, 2
    running = TrialRecord("t2", {"train.learning_rate": 0.02}, history=epochs[:1])
    tracker = SweepTracker(mlflow_uri(tmp_path), "exp", "sw")
    tracker.start_sweep({}, {}, resume=True, run_id="")  # it ran untracked: a new run
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=2, tracker=tracker, stopper=None,
        previous=[ended],
    )  # fmt: skip
    callback.set_state({"records": [asdict(ended), asdict(running)]})
    again = SweepTracker(mlflow_uri(tmp_path), "exp", "sw")
    again.start_sweep({}, {}, resume=True, run_id=tracker.parent_id)
    assert again.has_child("t1") and again.has_child("t2")
    runs = {t: again.client.get_run(again.child(t, {})) for t in ("t1", "t2")}
    assert runs["t1"].info.status == "FINISHED" and runs["t1"].data.tags["status"] == "completed"
    assert runs["t1"].data.metrics["best_val_accuracy"] == 0.7
    assert runs["t2"].info.status == "RUNNING"
    steps = [m.step for m in again.client.get_metric_history(runs["t1"].info.run_id, "val_loss")]
    assert sorted(steps) == [1, 2]


def test_a_store_failing_on_restore_is_warned_in_one_line_without_its_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An HTTP store's error quotes the request's URL: the restore's warning printed it,
    password and all, over several lines."""
    from dataclasses import asdict

    from automl.search.callback import TrialRecord

    tracker = SweepTracker(mlflow_uri(tmp_path), "exp", "sw")
    tracker.start_sweep({}, {}, resume=False)
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=2, tracker=tracker, stopper=None
    )

    def refused(*args: object) -> None:
        raise RuntimeError(
            "API request to http://alice:s3cr3t@mlflow.example:5000/api/2.0/mlflow/runs/get "
            "failed\nResponse body: '<html>'"
        )

    monkeypatch.setattr(callback, "_track_missing", refused)
    with caplog.at_level("WARNING", logger="automl"):
        callback.set_state({"records": [asdict(TrialRecord("t1", {}))]})
    warned = [r.getMessage() for r in caplog.records if "not added to its run" in r.getMessage()]
    assert len(warned) == 1 and "s3cr3t" not in warned[0] and "\n" not in warned[0]
    assert "alice:***@mlflow.example" in warned[0]
    assert "t1" in callback.records  # the sweep goes on, its records kept


def test_an_epoch_run_again_from_an_older_checkpoint_is_judged_again() -> None:
    """Resumed from its epoch-2 checkpoint, a trial ran epoch 3 again and scored lower: its
    record kept the first run's best (epoch 3, 0.8), weights its checkpoint no longer held,
    and the summary and the export reported that score."""
    callback = _callback(OverfitStopper(OverfitRule()))
    trial = SimpleNamespace(trial_id="t1", config={}, last_result={}, checkpoint=None)
    for epoch, accuracy in ((1, 0.6), (2, 0.7), (3, 0.8), (3, 0.65)):
        result = {"epoch": epoch, "val_accuracy": accuracy, "train_loss": 1.0, "val_loss": 1.0}
        callback.on_trial_result(epoch, [], trial, result)
    record = callback.records["t1"]
    assert (record.best_value, record.best_epoch) == (0.7, 2)
    assert [h["val_accuracy"] for h in record.history] == [0.6, 0.7, 0.65]


def test_the_record_takes_the_best_epoch_the_trial_reports() -> None:
    """A trial resumed from a checkpoint written before 2026-12-07 keeps the earlier of two
    equal epochs (epoch 2); the record, judging the history by today's tie rule, named epoch
    3: the summary and the card described an epoch whose weights were not exported."""
    callback = _callback(OverfitStopper(OverfitRule()))
    trial = SimpleNamespace(trial_id="t1", config={}, last_result={}, checkpoint=None)
    for epoch, accuracy, loss, best in ((1, 0.6, 1.0, 1), (2, 0.8, 0.6, 2), (3, 0.8, 0.5, 2)):
        result = {"epoch": epoch, "val_accuracy": accuracy, "train_loss": 1.0, "val_loss": loss,
                  "best_epoch": float(best)}  # fmt: skip
        callback.on_trial_result(epoch, [], trial, result)
    assert (callback.records["t1"].best_value, callback.records["t1"].best_epoch) == (0.8, 2)
    result = {"epoch": 4, "val_accuracy": 0.9, "train_loss": 1.0, "val_loss": 0.5}
    callback.on_trial_result(4, [], trial, result)  # no best_epoch reported: judged here
    assert callback.records["t1"].best_epoch == 4


def test_a_trial_diverging_after_a_scored_epoch_keeps_it() -> None:
    """A learning rate at the edge of its range peaked, then diverged: the trial was `failed`
    and its best epoch, whose weights its last checkpoint holds, was never exported."""
    from automl.search.pareto import choose_export

    callback = _callback(OverfitStopper(OverfitRule()))
    error = "automl.search.trial.TrialDiverged: non-finite training loss (nan) in epoch 3"
    peaked = SimpleNamespace(trial_id="t1", config={}, last_result={}, checkpoint=None,
                             error_file=None, error_msg=error)  # fmt: skip
    steady = SimpleNamespace(trial_id="t2", config={}, last_result={}, checkpoint=None)
    for trial, accuracies in ((peaked, (0.6, 0.9)), (steady, (0.7, 0.8))):
        for epoch, accuracy in enumerate(accuracies, start=1):
            result = {"epoch": epoch, "val_accuracy": accuracy, "train_loss": 1.0, "val_loss": 1.0}
            callback.on_trial_result(epoch, [], trial, result)
    callback.on_trial_error(3, [], peaked)
    record = callback.records["t1"]
    assert (record.status, record.best_value, record.best_epoch) == ("diverged", 0.9, 2)
    assert record.reason == error
    assert choose_export([r for r in callback.records.values()], "max").trial_id == "t1"
    # diverged in its first epoch: nothing scored, failed
    early = error.replace("epoch 3", "epoch 1")
    first = SimpleNamespace(trial_id="t3", config={}, last_result={}, checkpoint=None,
                            error_file=None, error_msg=early)  # fmt: skip
    callback.on_trial_start(0, [], first)
    callback.on_trial_error(1, [], first)
    assert callback.records["t3"].status == "failed"
    other = SimpleNamespace(trial_id="t4", config={}, last_result={}, checkpoint=None,
                            error_file=None, error_msg="RuntimeError: CUDA error")  # fmt: skip
    callback.on_trial_result(1, [], other, {"epoch": 1, "val_accuracy": 0.95, "val_loss": 1.0})
    callback.on_trial_error(2, [], other)  # another error after a scored epoch: failed
    assert callback.records["t4"].status == "failed"


def test_a_resumed_sweeps_wall_time_counts_every_sitting(tmp_path: Path) -> None:
    """summary.json's and MLflow's wall_s covered the last sitting only: a 3-hour sweep
    resumed to export again said 40 s beside all its trial-epochs."""
    import time

    from automl.search.state import SweepState

    first = SweepState(phase="running")
    first.sitting_started(time.time() - 100)  # a sitting that ran 100 s, then was stopped
    first.save(tmp_path)
    again = SweepState.load(tmp_path)
    assert 99 <= again.wall_s <= 102
    assert again.sitting_started(time.time() - 5) == again.wall_s  # what _finish counts from
    again.save(tmp_path)
    assert 104 <= SweepState.load(tmp_path).wall_s <= 108
    fresh = SweepState()  # a fresh start under the name begins at 0
    assert fresh.wall_s == 0.0


def test_a_second_driver_on_a_running_sweep_is_refused(tmp_path: Path) -> None:
    """The same command started twice (a requeued job while the first still runs): the second
    deleted the first's study and live Ray experiment as a fresh start, and both wrote the
    summary, the export and the MLflow runs. The folder is now one driver's at a time."""
    import os

    from automl.config.schema import ConfigError
    from automl.search.state import LOCK_FILE, not_a_sweep_folder, sweep_lock

    out = tmp_path / "outputs" / "smoke"
    with sweep_lock(out, "smoke"):
        with pytest.raises(ConfigError) as refused, sweep_lock(out, "smoke"):
            pass
        message = str(refused.value)
        assert f"sweep smoke is running in process {os.getpid()} on {socket.gethostname()}" in (
            message
        )
        assert "another sweep.name" in message and "\n" not in message
    with sweep_lock(out, "smoke"):  # released when its driver ended
        pass
    assert [p.name for p in out.iterdir()] == [LOCK_FILE]
    assert not_a_sweep_folder(out) is None  # the lock alone does not make it someone else's


def test_a_second_driver_is_refused_before_it_reads_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock was taken after the data were read and tokenized (a large Hub dataset:
    minutes) before the same command started twice was refused; a probe says it first."""
    from conftest import compose_sweep_config

    import automl.search.sweep as sweep_module
    from automl.search.state import sweep_lock

    def read_first(*args: object, **kwargs: object) -> None:
        raise AssertionError("the data were read before the lock was tried")

    monkeypatch.setattr(sweep_module, "prepare_data_for_models", read_first)
    conf = compose_sweep_config(tmp_path, "experiment=smoke", "tracking.enabled=false")
    with sweep_lock(tmp_path / "outputs" / "smoke", "smoke"):
        with pytest.raises(ConfigError, match=r"^config: sweep.name: sweep smoke is running in"):
            sweep_module.run_sweep(conf)
    with pytest.raises(AssertionError, match="the data were read"):  # released: it goes on
        sweep_module.run_sweep(conf)


def test_another_users_lock_file_in_a_shared_storage_is_locked_read_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a shared `paths.storage`, the lock file another user's sweep made (mode 0644) could
    not be opened for writing: a PermissionError traceback. flock needs no write access."""
    import builtins

    from automl.config.schema import ConfigError
    from automl.search import state

    lock = state.storage_lock_file("smoke")
    (tmp_path / lock).write_text("process 1 on another-host")

    def read_only(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if set(mode) & set("wa+x"):
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, mode, *args, **kwargs)

    monkeypatch.setattr(state, "open", read_only, raising=False)
    with state.sweep_lock(tmp_path, "smoke", lock):
        monkeypatch.undo()  # the other user's next sweep, which may write it
        with pytest.raises(ConfigError, match="running in process 1 on another-host"):
            with state.sweep_lock(tmp_path, "smoke", lock):
                pass


def test_a_folder_that_cannot_be_locked_is_not_taken_for_a_running_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A filesystem without flock (Lustre without -o flock, some FUSE mounts) fails the call
    with ENOLCK: every sweep there was refused as "running in another process"."""
    import errno
    import fcntl

    from automl.search.state import sweep_lock

    def no_locks(*args: object) -> None:
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    ran = []
    with sweep_lock(tmp_path / "smoke", "smoke"):
        ran.append(True)
    assert ran and "cannot be locked (No locks available)" in caplog.text
