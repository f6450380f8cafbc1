"""MLflow: one parent run per sweep, one nested child run per trial, all written from the driver.

Trials never talk to MLflow themselves: many small writes from parallel workers lock a SQLite
store, and one writer (a Ray Tune callback in the driver) does not. Child runs are found again by
their trial id, so a resumed sweep reuses them instead of duplicating them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from automl.console import first_line
from automl.provenance import redact, redact_values
from automl.tracking.uri import artifact_root, create_in_wal_mode

log = logging.getLogger(__name__)


# The MLflow UI opens an experiment with this tag on its runs table (model training) rather
# than on the GenAI overview.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
# A parent run's tag: a setting's value in the latest sitting, where it changed since the first
LATEST = "automl.latest."


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def _masked(value: Any, limit: int = 6000) -> str:
    """A value for MLflow: secrets in URIs masked, cut to MLflow's limit (a param's 6,000
    characters; a tag's 5,000)."""
    return redact(str(value))[:limit]


def _now_ms() -> int:
    """MLflow's timestamps: milliseconds since the epoch."""
    return int(time.time() * 1000)


def check_experiment(uri: str, experiment: str) -> None:
    """Before any compute: an experiment of that name deleted in the MLflow UI still holds its
    name, and MLflow refuses runs in it (after the whole data preparation, with a traceback).
    A store not yet created has none: nothing is created to look."""
    from mlflow.exceptions import MlflowException

    from automl.config.schema import ConfigError
    from automl.tracking.uri import sqlite_file

    database = sqlite_file(uri)
    if database is not None and (not database.is_file() or database.stat().st_size == 0):
        return  # the sweep creates the store: nothing in it yet, and nothing written to look
    try:
        found = MlflowClient(tracking_uri=uri).get_experiment_by_name(experiment)
    except (MlflowException, OSError, ImportError) as err:  # an old schema, a login refused
        first = redact(first_line(err))[:200]
        if "Invalid Host header" in str(err):  # MLflow 3's server: localhost, private IPs only
            first = (
                "the server refuses requests addressed to this host name (HTTP 403, Invalid "
                "Host header): start it with --allowed-hosts naming it (`make mlflow-server "
                "MLFLOW_ALLOWED_HOSTS=host:port`)"
            )
        raise ConfigError(f"config: tracking.uri: {redact(uri)}: {first}") from None
    if found is not None and found.lifecycle_stage != "active":
        raise ConfigError(
            f"config: tracking.experiment: the MLflow experiment {experiment!r} is deleted (its "
            f"name stays taken): restore it (mlflow experiments restore --experiment-id "
            f"{found.experiment_id}) or set tracking.experiment to another name"
        )


class SweepTracker:
    """The sweep's MLflow parent run and its children. All calls happen in the driver."""

    METRIC_KEYS = (
        "val_accuracy",
        "val_f1",
        "val_balanced_accuracy",
        "val_loss",
        "train_loss",
        "train_samples_per_s",
        "epoch_s",
    )

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
        self._children: dict[str, str] = {}
        self._running: set[str] = set()  # trials whose runs this driver left RUNNING
        self._last_step: dict[str, int] = {}  # per trial: the last epoch logged to its run

    # -- the sweep ------------------------------------------------------------------------------
    def start_sweep(
        self, params: dict[str, Any], tags: dict[str, str], resume: bool, run_id: str | None = None
    ) -> str:
        """Create the parent run, or reopen this sweep's when resuming: `run_id`, the one its
        state recorded (another output folder may run a sweep of the same name into the same
        experiment); "" (it ran untracked so far): a new one; None (a state from before runs
        were recorded): the latest of that name."""
        if not resume:
            found = None
        elif run_id is None:
            found = self._latest()
        else:
            recorded = self._recorded(run_id) if run_id else None
            found = recorded.info.run_id if recorded is not None else None
        if found:
            self.parent_id = found
            # read before it is marked RUNNING: a Ctrl-C while its trials' runs are read (a
            # round trip each on a server) left the parent RUNNING
            self._children = self._existing_children()
            self._log_changed_params(params, tags)
            self._reopen(self.parent_id)
            return self.parent_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.sweep,
            tags={"automl.sweep": self.sweep, "automl.role": "sweep", **tags},
        )
        self.parent_id = run.info.run_id
        try:
            self.client.log_batch(
                self.parent_id, params=[Param(k, _masked(v)) for k, v in params.items()]
            )
        except BaseException as err:  # the run's id is not recorded yet: nothing would end it
            status = "KILLED" if isinstance(err, KeyboardInterrupt) else "FAILED"
            with contextlib.suppress(Exception):
                self.client.set_terminated(self.parent_id, status)
            raise
        return self.parent_id

    def _log_changed_params(self, params: dict[str, Any], tags: dict[str, str]) -> None:
        """A resumed or extended sweep's settings: MLflow keeps a param's first value, so a
        setting changed since (`sweep.num_samples` raised to extend it) is the tag
        `automl.latest.<name>` beside the param, and a new one a param; so are the code's
        tags (`git_commit`, versions) of this sitting, where they differ from the first's."""
        data = self.client.get_run(self.parent_id).data
        logged, had = data.params, data.tags
        values = {k: _masked(v) for k, v in params.items()}
        new = [Param(k, v) for k, v in values.items() if k not in logged]
        # the params logged before and the code's tags (one the first sitting lacked, a
        # package new since, is this sitting's too), against their first values
        now = {
            **{k: v for k, v in values.items() if k in logged},
            **{k: str(v) for k, v in tags.items()},
        }
        first = {**had, **logged}
        changed = [  # also back to the first value: an earlier sitting's tag said otherwise
            RunTag(f"{LATEST}{k}", v[:5000])
            for k, v in now.items()
            if first.get(k) != v or f"{LATEST}{k}" in had
        ]
        if new or changed:
            self.client.log_batch(self.parent_id, params=new, tags=changed)

    def end_abandoned(self, run_id: str | None) -> None:
        """The parent run of the earlier sweep this fresh start replaces, left RUNNING with its
        trials' runs when its driver was killed (SIGKILL, out of memory): ended as KILLED, so
        the UI does not show them running forever. Only that run, recorded in the sweep's own
        state: a sweep of the same name elsewhere may really be running. Best effort: a run
        this login may not read (a colleague's folder) is left as it is, with a warning."""
        from mlflow.exceptions import MlflowException

        try:  # the reads and the writes: a login may read a run it may not end
            recorded = self._recorded(run_id) if run_id else None
            if recorded is None or recorded.info.status != "RUNNING":
                return
            run = recorded.info.run_id
            children = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{run}' and attributes.status = "
                "'RUNNING'",
            )
            for child in children:
                self._end(child.info.run_id, "KILLED")
            self._end(run, "KILLED")
        except MlflowException as err:
            log.warning(
                "MLflow: the earlier run %s was not ended (%s)", run_id, redact(first_line(err))
            )

    def _recorded(self, run_id: str) -> Any | None:
        """The recorded parent run (MLflow's Run), where this store holds it in this
        experiment."""
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException as err:
            if err.error_code != "RESOURCE_DOES_NOT_EXIST":  # a refused login, a server error:
                raise  # not "no such run", which would start a second parent beside the first
            return None  # another store now: a new parent run, not another sweep's
        ours = (
            run.info.experiment_id == self.experiment_id
            and run.info.lifecycle_stage == "active"  # deleted in the UI: MLflow refuses writes
            and run.data.tags.get("automl.sweep") == self.sweep
        )
        return run if ours else None

    def _latest(self) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.automl.sweep = '{self.sweep}' and tags.automl.role = 'sweep'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
        return str(runs[0].info.run_id) if runs else None

    def log_artifact_dict(self, payload: Any, name: str, run_id: str | None = None) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            text = (
                json.dumps(redact_values(payload), indent=2, default=str)
                if name.endswith(".json")
                else redact(str(payload))
            )
            path.write_text(text)
            self.client.log_artifact(run_id or self.parent_id, str(path))

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir():
            self.client.log_artifacts(self.parent_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.parent_id, str(path), artifact_path)

    def log_metrics(self, metrics: dict[str, Any]) -> None:
        """Numbers on the sweep's parent run (data quality, the test score) as they come."""
        now = _now_ms()
        values = _finite(metrics)
        self.client.log_batch(
            self.parent_id, metrics=[Metric(k, v, now, 0) for k, v in values.items()]
        )

    def end_sweep(self, status: str, metrics: dict[str, Any], tags: dict[str, str]) -> None:
        """The parent run ended, and any trial's still RUNNING under it as KILLED (one an
        earlier, killed driver left that this sitting never ran)."""
        self.pause_trials(sorted(self._running))
        self.client.log_batch(
            self.parent_id,
            metrics=[Metric(k, v, _now_ms(), 0) for k, v in _finite(metrics).items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        self.client.set_terminated(self.parent_id, status=status)

    def _end(self, run_id: str, status: str) -> None:
        """A run ended as `status` (KILLED, FAILED) other than by its own end: its `status` tag
        says so too (it said "running", and a filter on it listed the run as running)."""
        self.client.set_tag(run_id, "status", status.lower())
        self.client.set_terminated(run_id, status=status)

    def _reopen(self, run_id: str) -> None:
        self.client.set_tag(run_id, "status", "running")
        self.client.update_run(run_id, status="RUNNING")

    # -- trials ---------------------------------------------------------------------------------
    def _existing_children(self) -> dict[str, str]:
        runs: list[Any] = []
        token: str | None = None
        while True:  # page by page: one search returns at most 1,000 runs
            page = self.client.search_runs(
                [self.experiment_id],
                filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}'",
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                break
        children = {
            r.data.tags["automl.trial_id"]: r.info.run_id
            for r in runs
            if "automl.trial_id" in r.data.tags
        }
        # left RUNNING by a killed driver (SIGKILL, out of memory): a trial the resume never
        # starts again (its round's unsaved trials run anew under new ids) ends with the sweep
        self._running |= {
            r.data.tags["automl.trial_id"]
            for r in runs
            if "automl.trial_id" in r.data.tags and r.info.status == "RUNNING"
        }
        for trial_id, run_id in children.items():  # once per child, on reopening the sweep
            # accuracy, never NaN, is logged with every epoch (val_loss was read: an epoch
            # whose loss was NaN, dropped, had its accuracy logged again after a resume)
            history = self.client.get_metric_history(run_id, "val_accuracy")
            self._last_step[trial_id] = max((m.step for m in history), default=0)
        return children

    def child(
        self, trial_id: str, params: dict[str, Any], tags: dict[str, str] | None = None
    ) -> str:
        """The trial's child run: created once, found again after a resume or a retry. `tags`
        go in with the run (one write fewer per trial than tagging it afterwards)."""
        if trial_id in self._children:
            return self._children[trial_id]
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial_id,
            tags={
                **{k: _masked(v, 5000) for k, v in (tags or {}).items()},
                "mlflow.parentRunId": self.parent_id,
                "automl.sweep": self.sweep,
                "automl.role": "trial",
                "automl.trial_id": trial_id,
                "status": "running",
            },
        )
        self._children[trial_id] = run.info.run_id
        self._running.add(trial_id)
        self.client.log_batch(
            run.info.run_id, params=[Param(k, _masked(v)) for k, v in params.items()]
        )
        return run.info.run_id

    def has_child(self, trial_id: str) -> bool:
        """Whether the trial has its run under this sweep's run (made or found again)."""
        return trial_id in self._children

    def log_epoch(self, trial_id: str, result: dict[str, Any]) -> None:
        run_id = self._children.get(trial_id)
        if run_id is None:
            return
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        if step <= self._last_step.get(trial_id, 0):
            return  # a trial resumed from an earlier checkpoint replays epochs already logged
        self._last_step[trial_id] = step
        now = _now_ms()
        values = _finite({k: result.get(k) for k in self.METRIC_KEYS})
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def tag_trial(self, trial_id: str, tags: dict[str, str]) -> None:
        run_id = self._children.get(trial_id)
        if run_id is not None:
            self.client.log_batch(
                run_id, tags=[RunTag(k, _masked(v, 5000)) for k, v in tags.items()]
            )

    def pause_trials(self, trial_ids: Iterable[str], status: str = "KILLED") -> None:
        """Trials a stopped sweep will go on with when resumed: KILLED, as the sweep's run is,
        rather than RUNNING with nothing running (`reopen_trial` takes them back); their
        `status` tag says the same."""
        for trial_id in list(trial_ids):
            run_id = self._children.get(trial_id)
            if run_id is not None:
                self._end(run_id, status)
                self._running.discard(trial_id)

    def end_running_trials(self, status: str) -> None:
        """The sweep ended on an error while these trials ran: their runs end as the sweep's
        does (FAILED), not RUNNING forever; a resume takes them back (`reopen_trial`)."""
        self.pause_trials(sorted(self._running), status)

    def reopen_trial(self, trial_id: str) -> None:
        """A trial the resumed sweep starts again runs again."""
        run_id = self._children.get(trial_id)
        if run_id is not None:
            self._reopen(run_id)
            self._running.add(trial_id)

    def end_trial(
        self, trial_id: str, status: str, summary: dict[str, Any], tags: dict[str, str]
    ) -> None:
        run_id = self._children.get(trial_id)
        if run_id is None:
            return
        now = _now_ms()
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in _finite(summary).items()],
            tags=[
                RunTag("status", status),
                *(RunTag(k, _masked(v, 5000)) for k, v in tags.items()),
            ],
        )
        mlflow_status = "FAILED" if status == "failed" else "FINISHED"
        self.client.set_terminated(run_id, status=mlflow_status)
        self._running.discard(trial_id)
