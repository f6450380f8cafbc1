"""MLflow: one parent run per sweep, one nested child run per trial, all written from the driver.

Trials never talk to MLflow themselves: many small writes from parallel workers lock a SQLite
store, and one writer (a Ray Tune callback in the driver) does not. The driver hands the trials'
writes to a writer process (`background.py`, `trial_runs.py`) that runs them in order, so Ray's
loop neither waits on them nor spends CPU on them; every sweep-level call waits for them first.
Child runs are found again by their trial id, so a resumed sweep reuses them instead of
duplicating them.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from automl.provenance import redact
from automl.tracking.background import BackgroundWriter
from automl.tracking.trial_runs import METRIC_KEYS, TrialRuns, finite
from automl.tracking.uri import artifact_root, create_in_wal_mode

log = logging.getLogger(__name__)


# The MLflow UI opens an experiment with this tag on its runs table (model training) rather
# than on the GenAI overview.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


STEP_KEYS = ("epoch", "training_iteration")  # which epoch a trial's result is


def _now_ms() -> int:
    """MLflow's timestamps: taken when the driver sees the result, not when the write runs."""
    return int(time.time() * 1000)


class SweepTracker:
    """The sweep's MLflow parent run and its children. All calls happen in the driver; a trial's
    writes return at once and run in order in the tracker's writer process."""

    def __init__(self, uri: str, experiment: str, sweep: str) -> None:
        self.uri = uri
        create_in_wal_mode(uri)
        self.client = MlflowClient(tracking_uri=uri)
        self.sweep = sweep
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id = self.client.create_experiment(
                experiment, artifact_location=artifact_root(uri, experiment), tags=EXPERIMENT_KIND
            )
        else:
            self.experiment_id = found.experiment_id
        self.parent_id = ""
        self._writer: BackgroundWriter | None = None  # started with the parent run
        self._failures_before = 0  # of writers already closed

    def flush(self) -> None:
        """Wait until every trial write asked for so far is in the store."""
        if self._writer is not None:
            self._writer.flush()

    @property
    def write_failures(self) -> int:
        """Trial writes that failed (each one a warning), as of the last flush."""
        return self._failures_before + (self._writer.failures if self._writer else 0)

    # -- the sweep ------------------------------------------------------------------------------
    def start_sweep(self, params: dict[str, Any], tags: dict[str, str], resume: bool) -> str:
        """Create the parent run, or reopen the latest one of this sweep when resuming."""
        if resume:
            runs = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.automl.sweep = '{self.sweep}' and tags.automl.role = 'sweep'",
                order_by=["attributes.start_time DESC"],
                max_results=1,
            )
            if runs:
                self.parent_id = runs[0].info.run_id
                self.client.update_run(self.parent_id, status="RUNNING")
                self._start_writer(*self._existing_children())
                return self.parent_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.sweep,
            tags={"automl.sweep": self.sweep, "automl.role": "sweep", **tags},
        )
        self.parent_id = run.info.run_id
        self._start_writer({}, {})
        self.client.log_batch(
            self.parent_id, params=[Param(k, redact(str(v))[:6000]) for k, v in params.items()]
        )
        return self.parent_id

    def _start_writer(self, children: dict[str, str], last_step: dict[str, int]) -> None:
        self._close_writer()
        self._writer = BackgroundWriter(
            TrialRuns, self.uri, self.experiment_id, self.parent_id, self.sweep, children, last_step
        )
        self._writer.start()

    def log_artifact_dict(self, payload: Any, name: str, run_id: str | None = None) -> None:
        self.flush()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            text = (
                json.dumps(payload, indent=2, default=str)
                if name.endswith(".json")
                else str(payload)
            )
            path.write_text(redact(text))
            self.client.log_artifact(run_id or self.parent_id, str(path))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.flush()
        if path.is_dir():
            self.client.log_artifacts(self.parent_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.parent_id, str(path), artifact_path)

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        """Numbers on the sweep's parent run (data quality, the test score) as they come."""
        self.flush()
        now = _now_ms()
        values = finite(metrics)
        self.client.log_batch(
            self.parent_id, metrics=[Metric(k, v, now, 0) for k, v in values.items()]
        )

    def end_sweep(self, status: str, metrics: dict[str, Any], tags: dict[str, str]) -> None:
        self._close_writer()  # the trials' last writes first; the writer ends with the sweep
        self.client.log_batch(
            self.parent_id,
            metrics=[Metric(k, v, _now_ms(), 0) for k, v in finite(metrics).items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        self.client.set_terminated(self.parent_id, status=status)

    # -- trials ---------------------------------------------------------------------------------
    def _close_writer(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        if self._writer.failures:
            log.warning("%d MLflow trial writes failed (see above)", self._writer.failures)
        self._failures_before += self._writer.failures
        self._writer = None

    def _existing_children(self) -> tuple[dict[str, str], dict[str, int]]:
        """The reopened sweep's child runs by trial id, and the last epoch each has logged."""
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}'"
        )
        children = {
            r.data.tags["automl.trial_id"]: r.info.run_id
            for r in runs
            if "automl.trial_id" in r.data.tags
        }
        last_step = {}
        for trial_id, run_id in children.items():  # once per child, on reopening the sweep
            history = self.client.get_metric_history(run_id, "val_loss")  # every epoch has one
            last_step[trial_id] = max((m.step for m in history), default=0)
        return children, last_step

    def child(
        self, trial_id: str, params: dict[str, Any], tags: dict[str, str] | None = None
    ) -> None:
        """The trial's child run: created once, found again after a resume or a retry. `tags`
        go in with the run (one write fewer per trial than tagging it afterwards)."""
        self._trial_writer().submit("child", trial_id, dict(params), dict(tags or {}))

    def run_id(self, trial_id: str) -> str | None:
        """The trial's child run id, once its writes so far are in."""
        self.flush()
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}' "
            f"and tags.automl.trial_id = '{trial_id}'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def log_epoch(self, trial_id: str, result: dict[str, Any]) -> None:
        wanted = {k: result[k] for k in (*METRIC_KEYS, *STEP_KEYS) if k in result}
        self._trial_writer().submit("log_epoch", trial_id, wanted, _now_ms())

    def tag_trial(self, trial_id: str, tags: dict[str, str]) -> None:
        self._trial_writer().submit("tag", trial_id, dict(tags))

    def end_trial(
        self, trial_id: str, status: str, summary: dict[str, Any], tags: dict[str, str]
    ) -> None:
        self._trial_writer().submit("end", trial_id, status, dict(summary), dict(tags), _now_ms())

    def _trial_writer(self) -> BackgroundWriter:
        if self._writer is None:
            raise RuntimeError("SweepTracker: start_sweep comes before any trial's writes")
        return self._writer
