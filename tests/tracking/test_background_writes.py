"""A trial's MLflow writes run in the tracker's writer process, in order: the driver does not wait
on the store, a failed write is a warning, and the sweep's own calls see every trial write first."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
import ray.cloudpickle
from conftest import mlflow_uri
from mlflow.tracking import MlflowClient

from automl.tracking.background import BackgroundWriter
from automl.tracking.runs import SweepTracker
from automl.tracking.uri import sqlite_path


@pytest.fixture
def tracker(tmp_path: Path) -> Iterator[SweepTracker]:
    """A started sweep; its writer process is closed after the test."""
    tracker = SweepTracker(mlflow_uri(tmp_path), "exp", "sw")
    tracker.start_sweep({}, {}, resume=False)
    yield tracker
    tracker.end_sweep("FINISHED", {}, {})


def _writers() -> list[multiprocessing.Process]:
    return [p for p in multiprocessing.active_children() if p.name == "mlflow-writer"]


def test_the_driver_does_not_wait_for_a_locked_store(tracker: SweepTracker) -> None:
    tracker.flush()  # the writer is up
    with closing(sqlite3.connect(sqlite_path(tracker.uri), isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")  # another program holds the store for writing
        # each call returns while the store is locked: a write made here would wait on the
        # lock, then fail with "database is locked"
        tracker.child("t1", {"train.learning_rate": 0.01})
        for epoch in (1, 2):
            result = {"epoch": epoch, "val_accuracy": 0.5 * epoch, "val_loss": 1.0, "x": "y"}
            tracker.log_epoch("t1", result)
        tracker.end_trial("t1", "completed", {"best_val_accuracy": 1.0}, {"node_ip": "n"})
        other.execute("COMMIT")
    run_id = tracker.run_id("t1")
    assert run_id is not None
    assert tracker.write_failures == 0
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"train.learning_rate": "0.01"}
    steps = [m.step for m in tracker.client.get_metric_history(run_id, "val_accuracy")]
    assert steps == [1, 2]  # in the order they were asked for
    assert run.data.tags["status"] == "completed"


def test_a_failed_write_is_a_warning_and_the_next_ones_still_land(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    # started here, inside the test, the writer process writes to the stderr capfd reads
    tracker = SweepTracker(mlflow_uri(tmp_path), "exp", "sw")
    tracker.start_sweep({}, {}, resume=False)
    tracker.child("t1", {"x": 1})
    tracker.log_epoch("t1", {"epoch": 1, "val_loss": 1.0})
    tracker.tag_trial("t1", {"bad key!": "MLflow refuses this name"})
    tracker.log_epoch("t1", {"epoch": 2, "val_loss": 0.5})
    with caplog.at_level(logging.WARNING):
        tracker.end_sweep("FINISHED", {}, {})
    assert tracker.write_failures == 1
    warned = [ln for ln in capfd.readouterr().err.splitlines() if "MLflow write failed" in ln]
    assert len(warned) == 1
    assert warned[0].startswith("MLflow write failed (tag): MlflowException: Invalid value")
    run_id = tracker.run_id("t1")
    assert run_id is not None
    history = tracker.client.get_metric_history(run_id, "val_loss")
    assert sorted(m.step for m in history) == [1, 2]
    assert any("1 MLflow trial writes failed" in r.getMessage() for r in caplog.records)


def test_ending_the_sweep_writes_every_trial_first(tracker: SweepTracker) -> None:
    for trial in ("t1", "t2", "t3"):
        tracker.child(trial, {"x": trial})
        tracker.log_epoch(trial, {"epoch": 1, "val_accuracy": 0.5})
        tracker.end_trial(trial, "completed", {"best_val_accuracy": 0.5}, {})
    tracker.end_sweep("FINISHED", {"num_trials": 3}, {"status": "finished"})
    client = MlflowClient(tracking_uri=tracker.uri)  # another reader, as the MLflow UI
    runs = client.search_runs([tracker.experiment_id], "tags.automl.role = 'trial'")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 3
    assert all(r.data.metrics["val_accuracy"] == 0.5 for r in runs)
    assert client.get_run(tracker.parent_id).info.status == "FINISHED"
    assert not _writers()


def test_a_tracker_pickles_as_ray_saves_its_callbacks_and_the_copy_writes(
    tracker: SweepTracker,
) -> None:
    tracker.child("t1", {"x": 1})  # the writer process is running
    copy = ray.cloudpickle.loads(ray.cloudpickle.dumps(tracker))
    copy.child("t2", {"x": 2})  # the copy writes through a process of its own
    assert copy.run_id("t2") is not None
    assert tracker.run_id("t1") is not None
    copy.end_sweep("FINISHED", {}, {})


def test_writes_run_in_order_and_a_bad_call_does_not_stop_the_next(tmp_path: Path) -> None:
    log = tmp_path / "calls.txt"
    writer = BackgroundWriter(open, str(log), "a", 1)  # a line-buffered file in the writer
    for i in range(50):
        writer.submit("write", f"{i}\n")
    writer.submit("no_such_method")
    writer.submit("write", "after\n")
    writer.flush()
    assert log.read_text().splitlines() == [*map(str, range(50)), "after"]
    assert writer.failures == 1
    writer.close()
    assert not _writers()


def test_a_writer_that_died_is_a_warning_not_a_wait_forever(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = BackgroundWriter(open, str(tmp_path / "calls.txt"), "a", 1)
    writer.submit("write", "1\n")
    writer.flush()
    [process] = _writers()
    process.kill()
    process.join()
    writer.submit("write", "2\n")
    with caplog.at_level(logging.WARNING):
        writer.flush()
    assert any("MLflow writer process ended" in r.getMessage() for r in caplog.records)
    writer.submit("write", "3\n")  # the next write starts a new writer
    writer.close()
    assert (tmp_path / "calls.txt").read_text().splitlines() == ["1", "3"]
