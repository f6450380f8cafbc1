"""The exported model in the MLflow Model Registry, under the sweep's name and an alias."""

from __future__ import annotations

import logging
from pathlib import Path

from automl.config.schema import Config
from automl.tracking.runs import SweepTracker

log = logging.getLogger(__name__)


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
