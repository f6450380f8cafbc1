"""A trial's MLflow child run: created once, one metric batch per epoch, tags, its end.

These writes run in the tracker's writer process (`background.py`), one at a time in the order
the driver asked for them; this object keeps what they need between calls (which child run is
which trial's, the last epoch each has logged).
"""

from __future__ import annotations

import math
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

METRIC_KEYS = (
    "val_accuracy",
    "val_f1",
    "val_balanced_accuracy",
    "val_loss",
    "train_loss",
    "train_samples_per_s",
    "epoch_s",
)


def finite(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers MLflow can store: no bools, strings, NaN or infinities."""
    out = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


class TrialRuns:
    """The child runs of one sweep's parent run. `children` and `last_step` come from the store
    when a sweep resumes, so a trial finds its run again and does not log an epoch twice."""

    def __init__(
        self,
        uri: str,
        experiment_id: str,
        parent_id: str,
        sweep: str,
        children: dict[str, str],
        last_step: dict[str, int],
    ) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment_id, self.parent_id, self.sweep = experiment_id, parent_id, sweep
        self.children = dict(children)
        self.last_step = dict(last_step)

    def child(self, trial_id: str, params: dict[str, Any], tags: dict[str, str]) -> None:
        if trial_id in self.children:
            return
        run = self.client.create_run(
            self.experiment_id,
            run_name=trial_id,
            tags={
                **tags,
                "mlflow.parentRunId": self.parent_id,
                "automl.sweep": self.sweep,
                "automl.role": "trial",
                "automl.trial_id": trial_id,
                "status": "running",
            },
        )
        self.children[trial_id] = run.info.run_id
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])

    def log_epoch(self, trial_id: str, result: dict[str, Any], now_ms: int) -> None:
        run_id = self.children.get(trial_id)
        if run_id is None:
            return
        step = int(result.get("epoch", result.get("training_iteration", 0)))
        if step <= self.last_step.get(trial_id, 0):
            return  # a trial resumed from an earlier checkpoint replays epochs already logged
        self.last_step[trial_id] = step
        values = finite({k: result.get(k) for k in METRIC_KEYS})
        self.client.log_batch(
            run_id, metrics=[Metric(k, v, now_ms, step) for k, v in values.items()]
        )

    def tag(self, trial_id: str, tags: dict[str, str]) -> None:
        run_id = self.children.get(trial_id)
        if run_id is not None:
            self.client.log_batch(run_id, tags=[RunTag(k, v[:5000]) for k, v in tags.items()])

    def end(
        self,
        trial_id: str,
        status: str,
        summary: dict[str, Any],
        tags: dict[str, str],
        now_ms: int,
    ) -> None:
        run_id = self.children.get(trial_id)
        if run_id is None:
            return
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now_ms, 0) for k, v in finite(summary).items()],
            tags=[RunTag("status", status), *(RunTag(k, str(v)[:5000]) for k, v in tags.items())],
        )
        self.client.set_terminated(run_id, status="FAILED" if status == "failed" else "FINISHED")
