"""A sweep's MLflow artifacts live beside its SQLite database, not in whatever folder the sweep
was started from (MLflow's default `./mlruns`, which every store opened there would share)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from automl.tracking.runs import SweepTracker
from automl.tracking.uri import artifact_root, create_in_wal_mode


def test_artifacts_go_beside_the_database_not_into_the_working_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, elsewhere = tmp_path / "store", tmp_path / "elsewhere"
    store.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    tracker = SweepTracker(f"sqlite:///{store / 'mlflow.db'}", "exp", "sw")
    tracker.start_sweep({}, {}, resume=False)
    tracker.log_artifact_dict({"a": 1}, "payload.json")
    assert len(list((store / "mlruns" / "exp").rglob("payload.json"))) == 1
    assert not list(elsewhere.iterdir())  # nothing in the folder the sweep ran from
    # the store opened again (a resume) keeps the experiment where it is
    again = SweepTracker(f"sqlite:///{store / 'mlflow.db'}", "exp", "sw")
    assert again.experiment_id == tracker.experiment_id


def test_a_parent_run_whose_params_fail_to_log_is_not_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run is created before its id is recorded anywhere: a store error (or Ctrl-C) while
    logging its params left it RUNNING, and no later resume could find it to end it."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker(uri, "exp", "sw")

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(tracker.client, "log_batch", refuse)
    with pytest.raises(RuntimeError, match="database is locked"):
        tracker.start_sweep({"lr": 0.1}, {}, resume=False)
    runs = MlflowClient(uri).search_runs([tracker.experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_artifact_root_only_for_sqlite_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert artifact_root("sqlite:///mlflow.db", "exp") == (tmp_path / "mlruns" / "exp").as_uri()
    assert (
        artifact_root(f"sqlite:///{tmp_path}/a%20b/m.db?timeout=5", "team/topics v2")
        == (tmp_path / "a b" / "mlruns" / "team_topics_v2").as_uri()
    )  # one folder per experiment, named after it; the path unquoted as MLflow does
    assert artifact_root("sqlite:///mlflow.db", "../..").endswith("/mlruns/experiment")
    for other in ("sqlite:///:memory:", "http://127.0.0.1:5000", "postgresql://u@h/db"):
        assert artifact_root(other, "exp") is None, other


def _journal_mode(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        return str(conn.execute("PRAGMA journal_mode").fetchone()[0])


def test_a_new_store_logs_ahead_and_an_existing_one_is_left_as_it_is(tmp_path: Path) -> None:
    new, users = tmp_path / "new" / "mlflow.db", tmp_path / "users.db"
    SweepTracker(f"sqlite:///{new}", "exp", "sw").start_sweep({}, {}, resume=False)
    assert _journal_mode(new) == "wal"
    MlflowClient(tracking_uri=f"sqlite:///{users}").search_experiments()  # made by MLflow alone
    assert _journal_mode(users) == "delete"
    SweepTracker(f"sqlite:///{users}", "exp", "sw").start_sweep({}, {}, resume=False)
    assert _journal_mode(users) == "delete"


KILLED_MIDWAY = """
import os, sys
from automl.tracking.runs import SweepTracker
tracker = SweepTracker(sys.argv[1], "exp", "sw")
tracker.start_sweep({}, {}, resume=False)
tracker.child("t1", {"train.learning_rate": 0.01}, {"origin": "sampler"})
tracker.log_epoch("t1", {"epoch": 1, "val_loss": 0.5, "val_accuracy": 0.75})
os._exit(0)  # no connection closed: the write-ahead log is not folded back
"""


def test_a_killed_sweep_leaves_its_last_epoch_in_the_log_and_the_next_reader_finds_it(
    tmp_path: Path,
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    subprocess.run([sys.executable, "-c", KILLED_MIDWAY, uri], check=True, timeout=120)
    assert (tmp_path / "mlflow.db-wal").stat().st_size > 0  # the epoch is in the log only
    client = MlflowClient(tracking_uri=uri)
    [run] = client.search_runs(
        [client.get_experiment_by_name("exp").experiment_id], "tags.automl.trial_id = 't1'"
    )
    assert run.data.metrics == {"val_loss": 0.5, "val_accuracy": 0.75}
    assert run.data.tags["origin"] == "sampler"
    assert run.data.params == {"train.learning_rate": "0.01"}


def test_write_ahead_logging_for_every_form_of_sqlite_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    create_in_wal_mode("sqlite:///rel.db")  # relative to the working folder, as SQLAlchemy reads it
    create_in_wal_mode(f"sqlite:///{tmp_path}/a%20b/m.db?timeout=5")  # escaped, with a query
    assert _journal_mode(tmp_path / "rel.db") == "wal"
    assert _journal_mode(tmp_path / "a b" / "m.db") == "wal"
    before = sorted(p.name for p in tmp_path.iterdir())
    for other in ("sqlite:///:memory:", "sqlite://", "sqlite:///", "sqlite:///file:x.db?uri=true",
                  "http://127.0.0.1:5000", "postgresql://u@h/db"):  # fmt: skip
        create_in_wal_mode(other)
    assert sorted(p.name for p in tmp_path.iterdir()) == before == ["a b", "rel.db"]


def test_an_in_memory_store_is_refused_in_one_line() -> None:
    """`sqlite:///:memory:` passed the checks: a sweep's runs and its registered model went
    into a database gone when the command ended, and a resume started a new parent run."""
    from automl.tracking.uri import store_problem

    for uri in (
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:///:memory:?cache=shared",
        "sqlite:///file::memory:?cache=shared",
        "sqlite:///file:x?mode=memory&uri=true",
    ):
        problem = store_problem(uri)
        assert problem and "in-memory SQLite store is gone when the command ends" in problem, uri
    from mlflow.exceptions import MlflowException

    from automl.tracking.uri import store_failure

    looped = RuntimeError("a")
    looped.__context__ = ValueError("b")
    looped.__context__.__context__ = looped  # a cycle ends the walk
    assert store_failure(looped) is None
    store = MlflowException("down")
    assert store_failure(RuntimeError("wrapped")) is None
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = store
    assert store_failure(wrapped) is store


def test_a_store_uri_is_checked_before_anything_is_written(tmp_path: Path) -> None:
    """A two-slash typo, another application's database and a file that is no database are
    refused in one line, and the file is left as it was; an MLflow store and a new file pass."""
    from automl.tracking.uri import scheme_of, store_problem

    other = tmp_path / "app.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.commit()
    before = other.read_bytes()
    problem = store_problem(f"sqlite:///{other}")
    assert problem is not None and "another application (tables notes)" in problem
    assert other.read_bytes() == before  # MLflow would have added its tables

    (tmp_path / "rows.db").write_text("text,label\nhi,a\n")
    assert "not a SQLite database" in (store_problem(f"sqlite:///{tmp_path}/rows.db") or "")
    assert "three or four slashes" in (store_problem("sqlite://mlflow.db") or "")
    assert "three or four slashes" in (store_problem("sqlite:/mlflow.db") or "")  # not a file

    store = f"sqlite:///{tmp_path}/mlflow.db"
    assert store_problem(store) is None  # a new file
    MlflowClient(tracking_uri=store).search_experiments()  # MLflow makes it a store
    create_in_wal_mode(f"sqlite:///{tmp_path}/wal.db")  # as a sweep creates one
    MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/wal.db").search_experiments()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert store_problem(store) is None and store_problem(f"sqlite:///{tmp_path}/wal.db") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no -wal/-shm files left
    assert scheme_of("databricks") == scheme_of("databricks-uc") == "databricks"
    assert scheme_of("mlruns") == "file"


def test_a_file_store_is_checked_where_mlflow_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`file:` URIs were checked at the wrong path (`file:/x` taken as a relative folder
    named `file:`, `%20` left escaped), so an unwritable folder passed the check."""
    from automl.tracking.uri import file_store_path, store_problem

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    assert file_store_path(f"file:{tmp_path}/a%20b") == f"{tmp_path}/a b"
    assert file_store_path(f"file://localhost{tmp_path}/x") == f"{tmp_path}/x"
    assert file_store_path("mlruns") == "mlruns"
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("mine")
    for uri in (f"file:{blocker}/runs", f"file://{blocker}/runs", f"{blocker}/runs"):
        assert "not-a-folder" in (store_problem(uri) or ""), uri


def test_a_sweep_that_fails_mid_fit_ends_its_running_trials_runs_too(tmp_path: Path) -> None:
    """Only a signal paused the running trials' runs: an error inside the fit left them
    RUNNING forever under a FAILED parent."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker(store, "exp", "sw")
    tracker.start_sweep({}, {}, resume=False)
    done, running, paused = (tracker.child(t, {"x": 1}) for t in ("a", "b", "c"))
    tracker.end_trial("a", "completed", {}, {})
    tracker.pause_trials(["c"])
    client = MlflowClient(tracking_uri=store)
    assert client.get_run(paused).data.tags["status"] == "killed"
    tracker.reopen_trial("c")  # a resumed sweep took it back
    assert client.get_run(paused).data.tags["status"] == "running"
    tracker.end_running_trials("FAILED")
    assert [client.get_run(r).info.status for r in (done, running, paused)] == [
        "FINISHED", "FAILED", "FAILED",
    ]  # fmt: skip
    # the `status` tag says it too (a UI filter on tags.status listed them "running")
    assert [client.get_run(r).data.tags["status"] for r in (done, running, paused)] == [
        "completed", "failed", "failed",
    ]  # fmt: skip


def test_an_experiment_deleted_in_the_ui_is_refused_before_compute(tmp_path: Path) -> None:
    """Its name stays taken and MLflow refuses runs in it: the sweep failed with a traceback
    after the data was prepared and Ray started."""
    from automl.config.schema import ConfigError
    from automl.tracking.runs import check_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    check_experiment(uri, "sw")  # no store yet: nothing to find, and none created
    assert not (tmp_path / "mlflow.db").exists()
    client = MlflowClient(uri)
    experiment = client.create_experiment("sw", artifact_location=(tmp_path / "a").as_uri())
    check_experiment(uri, "sw")
    client.delete_experiment(experiment)
    with pytest.raises(ConfigError) as err:
        check_experiment(uri, "sw")
    assert str(err.value) == (
        "config: tracking.experiment: the MLflow experiment 'sw' is deleted (its name stays "
        f"taken): restore it (mlflow experiments restore --experiment-id {experiment}) or set "
        "tracking.experiment to another name"
    )
    check_experiment(uri, "other")


def test_a_resumed_sweep_records_its_changed_settings_and_ends_no_run_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extended sweep's parent run kept `num_samples` 3 beside 4 trials (MLflow keeps a
    param's first value); and a Ctrl-C while a resume read its trials' runs left it RUNNING."""
    from automl.tracking.runs import LATEST

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = SweepTracker(uri, "exp", "sw")
    code = {"git_commit": "aaa", "version.torch": "2.13.0"}
    run = first.start_sweep({"num_samples": 3, "sampler": "tpe"}, code, resume=False)
    first.end_sweep("FINISHED", {}, {})
    again = SweepTracker(uri, "exp", "sw")
    fixed = {**code, "git_commit": "bbb"}  # resumed after a fix: the code of this sitting too
    again.start_sweep({"num_samples": 4, "sampler": "tpe", "new": 1}, fixed, True, run_id=run)
    data = MlflowClient(uri).get_run(run).data
    assert data.params == {"num_samples": "3", "sampler": "tpe", "new": "1"}
    assert {k: v for k, v in data.tags.items() if k.startswith(LATEST)} == {
        f"{LATEST}num_samples": "4",
        f"{LATEST}git_commit": "bbb",
    }
    assert data.tags["git_commit"] == "aaa"  # the first sitting's, as the params keep theirs
    again.end_sweep("FINISHED", {}, {})
    back = SweepTracker(uri, "exp", "sw")
    back.start_sweep({"num_samples": 3, "sampler": "tpe", "new": 1}, {}, True, run_id=run)
    assert MlflowClient(uri).get_run(run).data.tags[f"{LATEST}num_samples"] == "3"
    back.end_sweep("KILLED", {}, {})

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    stopped = SweepTracker(uri, "exp", "sw")
    monkeypatch.setattr(stopped, "_existing_children", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stopped.start_sweep({}, {}, True, run_id=run)
    assert MlflowClient(uri).get_run(run).info.status == "KILLED"


def test_a_resume_reopens_the_parent_run_its_state_recorded(tmp_path: Path) -> None:
    """Another output folder running a sweep of the same name into the same experiment: the
    resume reopened that folder's run (the latest of the name) and logged its trials there."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ours = SweepTracker(uri, "exp", "sw").start_sweep({}, {}, resume=False)
    time.sleep(0.01)  # start times in milliseconds: "the latest" must be the later one
    theirs = SweepTracker(uri, "exp", "sw").start_sweep({}, {}, resume=False)
    assert ours != theirs
    assert SweepTracker(uri, "exp", "sw").start_sweep({}, {}, resume=True, run_id=ours) == ours
    # a state from before runs were recorded: the latest of the name, as before
    assert SweepTracker(uri, "exp", "sw").start_sweep({}, {}, resume=True) == theirs
    # a run this store does not hold, another sweep's, or none (the sweep ran untracked so
    # far): a new parent run, not a guess
    other = SweepTracker(uri, "exp", "other").start_sweep({}, {}, resume=False)
    for recorded in ("0" * 32, other, ""):
        new = SweepTracker(uri, "exp", "sw").start_sweep({}, {}, resume=True, run_id=recorded)
        assert new not in (ours, theirs, other)


def test_a_store_error_on_resume_is_not_taken_for_a_missing_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Any MLflow error reading the recorded parent run (a refused login, a server error) was
    taken for "no such run": the resume started a second parent run and copied every trial
    under it, while the real one stayed as it was."""
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import PERMISSION_DENIED

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    ours = SweepTracker(uri, "exp", "sw").start_sweep({}, {}, resume=False)
    again = SweepTracker(uri, "exp", "sw")

    def refused(run_id: str) -> Any:
        raise MlflowException("no access", error_code=PERMISSION_DENIED)

    monkeypatch.setattr(again.client, "get_run", refused)
    with pytest.raises(MlflowException, match="no access"):
        again.start_sweep({}, {}, resume=True, run_id=ours)
    # a fresh start's ending of the run it replaces is best effort: it goes on
    with caplog.at_level("WARNING"):
        again.end_abandoned(ours)
    assert f"MLflow: the earlier run {ours} was not ended (no access)" in caplog.text
    # a run this login may read but not end (a colleague's): the fresh start went on no further
    monkeypatch.undo()
    caplog.clear()
    monkeypatch.setattr(again.client, "set_terminated", lambda *args, **kwargs: refused(""))
    with caplog.at_level("WARNING"):
        again.end_abandoned(ours)
    assert f"MLflow: the earlier run {ours} was not ended (no access)" in caplog.text
    parents = MlflowClient(uri).search_runs(
        [again.experiment_id], filter_string="tags.automl.role = 'sweep'"
    )
    assert [r.info.run_id for r in parents] == [ours]


def test_a_fresh_start_ends_the_runs_a_killed_driver_left_running(tmp_path: Path) -> None:
    """SIGKILL or out of memory: no handler ran, and the parent and its trials' runs stayed
    RUNNING for ever. Only the run this folder's state recorded is ended: a sweep of the same
    name elsewhere, really running, is left alone."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = SweepTracker(uri, "exp", "sw")
    parent = killed.start_sweep({}, {}, resume=False)
    trial = killed.child("t1", {})
    elsewhere = SweepTracker(uri, "exp", "sw")
    running = elsewhere.start_sweep({}, {}, resume=False)
    fresh = SweepTracker(uri, "exp", "sw")
    fresh.end_abandoned(parent)
    fresh.start_sweep({}, {}, resume=False)
    client = MlflowClient(uri)
    assert client.get_run(parent).info.status == "KILLED"
    assert client.get_run(trial).info.status == "KILLED"
    assert client.get_run(trial).data.tags["status"] == "killed"
    assert client.get_run(running).info.status == "RUNNING"
    fresh.end_abandoned("")  # nothing recorded (an untracked earlier sweep): nothing to end
    fresh.end_abandoned(parent)  # ended already: left as it is
    assert client.get_run(parent).info.status == "KILLED"


def test_a_resume_ends_the_trial_runs_a_killed_driver_left_running(tmp_path: Path) -> None:
    """A round killed before Ray saved it runs its trials anew under new ids: the resumed
    sweep's parent ended with the old trials' runs RUNNING under it for ever."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    killed = SweepTracker(uri, "exp", "sw")
    parent = killed.start_sweep({}, {}, resume=False)
    lost, resumed = killed.child("t1", {}), killed.child("t2", {})
    again = SweepTracker(uri, "exp", "sw")
    assert again.start_sweep({}, {}, resume=True, run_id=parent) == parent
    again.reopen_trial("t2")  # Ray restored this one
    again.end_trial("t2", "completed", {"best_val_accuracy": 0.5}, {})
    again.end_sweep("FINISHED", {}, {})
    client = MlflowClient(uri)
    assert client.get_run(lost).info.status == "KILLED"
    assert client.get_run(lost).data.tags["status"] == "killed"
    assert client.get_run(resumed).info.status == "FINISHED"
    assert client.get_run(parent).info.status == "FINISHED"


def test_a_database_of_another_application_is_refused_without_writing_to_it(
    tmp_path: Path,
) -> None:
    """MLflow's client adds its ~40 tables (and runs its migrations) in any database it is
    pointed at, even to check it: a mistyped PostgreSQL or MySQL database name got them. The
    check reads table names through SQLAlchemy first (here on SQLite, the same call)."""
    from automl.config.schema import ConfigError
    from automl.tracking.uri import _check_tables

    other = tmp_path / "app.db"
    with closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
        db.commit()
    with pytest.raises(ConfigError) as err:
        _check_tables(f"sqlite:///{other}")
    assert str(err.value).endswith(
        "a database of another application (tables users), not an MLflow store: name another "
        "database"
    )
    with closing(sqlite3.connect(other)) as db:
        assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["users"]
    _check_tables(f"sqlite:///{tmp_path / 'empty.db'}")  # an empty database: MLflow creates one
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    SweepTracker(store, "exp", "sw")
    _check_tables(store)  # an MLflow store


def test_the_plan_says_when_the_sqlite_store_is_new(tmp_path: Path) -> None:
    """`tracking.uri=sqlite:////nonexistent/dir/x.db` (a typo) ran the sweep into a fresh
    store, its registered model out of sight of the real registry, with nothing said."""
    from conftest import compose_sweep_config

    from automl.search.plan import plan_sweep

    fresh = plan_sweep(compose_sweep_config(tmp_path, "experiment=smoke", store=False))
    assert f"(a new store: no file at {tmp_path / 'mlflow.db'} yet)" in fresh.describe()
    known = plan_sweep(compose_sweep_config(tmp_path, "experiment=smoke"))
    assert "a new store" not in known.describe()


def test_a_trials_params_and_tags_are_redacted_as_the_sweeps_are(tmp_path: Path) -> None:
    """The parent run's params were masked and cut; a trial's went in as they were, and its
    end tags (a failed trial's error line, which may quote a URI) too."""
    from conftest import mlflow_uri

    tracker = SweepTracker(mlflow_uri(tmp_path), "exp", "sw")
    tracker.start_sweep({}, {}, resume=False)
    leak = "https://alice:s3cret@mirror.example/model"
    run_id = tracker.child("t1", {"model.name_or_path": leak}, {"origin": leak})
    tracker.tag_trial("t1", {"note": leak})
    tracker.end_trial("t1", "failed", {}, {"status_reason": f"OSError: cannot reach {leak}"})
    run = tracker.client.get_run(run_id)
    written = [*run.data.params.values(), *run.data.tags.values()]
    assert not any("s3cret" in value for value in written)
    assert run.data.params["model.name_or_path"] == "https://alice:***@mirror.example/model"
    assert run.data.tags["status_reason"] == (
        "OSError: cannot reach https://alice:***@mirror.example/model"
    )
    # the error line itself, which summary.json and sweep_state.json hold too
    from types import SimpleNamespace

    from automl.search.callback import _error_line

    failed = SimpleNamespace(error_file=None, error_msg=f"Traceback ...\nOSError: {leak}")
    assert _error_line(failed) == "OSError: https://alice:***@mirror.example/model"
