"""MLflow: one parent run per sweep, one nested child run per trial, all written from the driver.

Trials never talk to MLflow themselves: many small writes from parallel workers lock a SQLite
store, and one writer (a Ray Tune callback in the driver) does not. Child runs are found again by
their trial id, so a resumed sweep reuses them instead of duplicating them.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import subprocess
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from automl.config import PROJECT_ROOT, Config, ConfigError

log = logging.getLogger(__name__)

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# The MLflow UI opens an experiment with this tag on its runs table (model training) rather
# than on the GenAI overview.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "optuna",
    "ray",
    "mlflow",
    "hydra-core",
    "finetune-automl",
)
_SECRET = re.compile(r"(?<=://)([^/@:]+):([^/@]+)@")


def tracking_uri(configured: str | None) -> str:
    """The configured URI, else $MLFLOW_TRACKING_URI, else a SQLite file in the working dir."""
    uri = configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    scheme = uri.split("://", 1)[0] if "://" in uri else "file"
    allowed = ("sqlite", "http", "https", "file", "postgresql", "mysql", "databricks")
    if not any(scheme.startswith(a) for a in allowed):
        raise ConfigError(f"config: tracking.uri: unsupported scheme {scheme!r} in {redact(uri)}")
    return uri


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """An HTTP tracking server must answer before any compute is spent on a sweep."""
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s).close()
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ConfigError(
            f"config: tracking.uri: {redact(uri)} does not answer ({reason})"
        ) from None


def redact(text: str) -> str:
    """Hide passwords inside URIs (user:password@host) before anything is logged."""
    return _SECRET.sub(r"\1:***@", text)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def _finite(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


class SweepTracker:
    """The sweep's MLflow parent run and its children. All calls happen in the driver."""

    METRIC_KEYS = (
        "val_accuracy",
        "val_f1",
        "val_loss",
        "train_loss",
        "train_samples_per_s",
        "epoch_s",
    )

    def __init__(self, uri: str, experiment: str, sweep: str) -> None:
        self.uri = uri
        self.client = MlflowClient(tracking_uri=uri)
        self.sweep = sweep
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            self.experiment_id = self.client.create_experiment(experiment, tags=EXPERIMENT_KIND)
        else:
            self.experiment_id = found.experiment_id
        self.parent_id = ""
        self._children: dict[str, str] = {}

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
                self._children = self._existing_children()
                return self.parent_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.sweep,
            tags={"automl.sweep": self.sweep, "automl.role": "sweep", **tags},
        )
        self.parent_id = run.info.run_id
        self.client.log_batch(
            self.parent_id, params=[Param(k, redact(str(v))[:6000]) for k, v in params.items()]
        )
        return self.parent_id

    def log_artifact_dict(self, payload: Any, name: str, run_id: str | None = None) -> None:
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
        if path.is_dir():
            self.client.log_artifacts(self.parent_id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.parent_id, str(path), artifact_path)

    def end_sweep(self, status: str, metrics: dict[str, Any], tags: dict[str, str]) -> None:
        self.client.log_batch(
            self.parent_id,
            metrics=[Metric(k, v, int(time.time() * 1000), 0) for k, v in _finite(metrics).items()],
            tags=[RunTag(k, str(v)) for k, v in tags.items()],
        )
        self.client.set_terminated(self.parent_id, status=status)

    # -- trials ---------------------------------------------------------------------------------
    def _existing_children(self) -> dict[str, str]:
        runs = self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{self.parent_id}'"
        )
        return {
            r.data.tags["automl.trial_id"]: r.info.run_id
            for r in runs
            if "automl.trial_id" in r.data.tags
        }

    def child(self, trial_id: str, params: dict[str, Any]) -> str:
        """The trial's child run: created once, found again after a resume or a retry."""
        if trial_id in self._children:
            return self._children[trial_id]
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial_id,
            tags={
                "mlflow.parentRunId": self.parent_id,
                "automl.sweep": self.sweep,
                "automl.role": "trial",
                "automl.trial_id": trial_id,
                "status": "running",
            },
        )
        self._children[trial_id] = run.info.run_id
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def log_epoch(self, trial_id: str, result: dict[str, Any]) -> None:
        run_id = self._children.get(trial_id)
        if run_id is None:
            return
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        now = int(time.time() * 1000)
        values = _finite({k: result.get(k) for k in self.METRIC_KEYS})
        self.client.log_batch(run_id, metrics=[Metric(k, v, now, step) for k, v in values.items()])

    def tag_trial(self, trial_id: str, tags: dict[str, str]) -> None:
        run_id = self._children.get(trial_id)
        if run_id is not None:
            self.client.log_batch(run_id, tags=[RunTag(k, v[:5000]) for k, v in tags.items()])

    def end_trial(
        self, trial_id: str, status: str, summary: dict[str, Any], tags: dict[str, str]
    ) -> None:
        run_id = self._children.get(trial_id)
        if run_id is None:
            return
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in _finite(summary).items()],
            tags=[RunTag("status", status), *(RunTag(k, str(v)[:5000]) for k, v in tags.items())],
        )
        mlflow_status = "FAILED" if status == "failed" else "FINISHED"
        self.client.set_terminated(run_id, status=mlflow_status)


def register_export(tracker: SweepTracker, conf: Config, export_dir: Path) -> None:
    """Log the exported folder to the sweep's run and register it in the Model Registry."""
    name = conf.tracking.registered_model or conf.sweep.name
    tracker.log_artifact(export_dir, "best_model")
    client = tracker.client
    try:
        client.get_registered_model(name)
    except Exception:
        client.create_registered_model(name, tags={"automl.sweep": conf.sweep.name})
    version = client.create_model_version(
        name, source=f"runs:/{tracker.parent_id}/best_model", run_id=tracker.parent_id,
        tags={"task": "text-classification"},
    )  # fmt: skip
    client.set_registered_model_alias(name, conf.tracking.alias, version.version)
    log.info("registered %s version %s as @%s", name, version.version, conf.tracking.alias)
