"""A trial's MLflow writes run on the tracker's own thread, in order: the driver does not wait on
the store, a failed write is a warning, and the sweep's own calls see every trial write first."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import ray.cloudpickle
from conftest import mlflow_uri
from mlflow.tracking import MlflowClient

from automl.tracking.background import BackgroundWriter
from automl.tracking.runs import SweepTracker


def _tracker(tmp_path: Path) -> SweepTracker:
    tracker = SweepTracker(mlflow_uri(tmp_path), "exp", "sw")
    tracker.start_sweep({}, {}, resume=False)
    return tracker


def test_the_driver_does_not_wait_for_a_slow_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker = _tracker(tmp_path)
    store_free = threading.Event()
    writers: set[str] = set()
    log_batch = tracker.client.log_batch

    def slow_log_batch(*args: Any, **kwargs: Any) -> None:
        writers.add(threading.current_thread().name)
        assert store_free.wait(timeout=30)
        log_batch(*args, **kwargs)

    monkeypatch.setattr(tracker.client, "log_batch", slow_log_batch)
    # the store is stuck on the child's params; every call below still returns
    tracker.child("t1", {"train.learning_rate": 0.01})
    for epoch in (1, 2):
        tracker.log_epoch("t1", {"epoch": epoch, "val_accuracy": 0.5 * epoch, "val_loss": 1.0})
    tracker.end_trial("t1", "completed", {"best_val_accuracy": 1.0}, {"node_ip": "n"})
    assert writers <= {"mlflow-writer"}  # nothing ran on this (the driver's) thread
    store_free.set()
    run_id = tracker.run_id("t1")
    assert run_id is not None
    run = tracker.client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"train.learning_rate": "0.01"}
    steps = [m.step for m in tracker.client.get_metric_history(run_id, "val_accuracy")]
    assert steps == [1, 2]  # in the order they were asked for
    assert run.data.tags["status"] == "completed"


def test_a_failed_write_is_a_warning_and_the_next_ones_still_land(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = _tracker(tmp_path)
    log_batch = tracker.client.log_batch
    calls = {"n": 0}

    def second_write_fails(*args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # the first epoch (the child's params were the first)
            raise ConnectionError("the tracking server went away\nsecond line")
        log_batch(*args, **kwargs)

    monkeypatch.setattr(tracker.client, "log_batch", second_write_fails)
    tracker.child("t1", {"x": 1})
    with caplog.at_level(logging.WARNING):
        for epoch in (1, 2):
            tracker.log_epoch("t1", {"epoch": epoch, "val_loss": 1.0 / epoch})
        tracker.end_sweep("FINISHED", {}, {})
    assert tracker.write_failures == 1
    warned = [r.getMessage() for r in caplog.records if "MLflow write failed" in r.getMessage()]
    assert warned == ["MLflow write failed: ConnectionError: the tracking server went away"]
    run_id = tracker.run_id("t1")
    assert run_id is not None
    history = tracker.client.get_metric_history(run_id, "val_loss")
    assert [m.step for m in history] == [2]
    assert any("1 MLflow trial writes failed" in r.getMessage() for r in caplog.records)


def test_ending_the_sweep_writes_every_trial_first(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path)
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


def test_a_tracker_with_pending_writes_pickles_as_ray_saves_its_callbacks(tmp_path: Path) -> None:
    tracker = _tracker(tmp_path)
    tracker.child("t1", {"x": 1})  # the writer thread is running
    copy = ray.cloudpickle.loads(ray.cloudpickle.dumps(tracker))
    copy.child("t2", {"x": 2})  # the copy writes through a thread of its own
    assert copy.run_id("t2") is not None
    assert tracker.run_id("t1") is not None


def test_writes_run_in_order_and_close_ends_the_thread() -> None:
    writer = BackgroundWriter("test-writer")
    seen: list[int] = []
    for i in range(50):
        writer.submit(seen.append, i)
    writer.close()
    assert seen == list(range(50))
    assert not any(t.name == "test-writer" for t in threading.enumerate())
    writer.submit(seen.append, 50)  # used again after closing: a new thread
    writer.flush()
    assert seen[-1] == 50
    writer.close()
