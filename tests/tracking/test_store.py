"""A sweep's MLflow artifacts live beside its SQLite database, not in whatever folder the sweep
was started from (MLflow's default `./mlruns`, which every store opened there would share)."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl.tracking.runs import SweepTracker
from automl.tracking.uri import artifact_root


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
