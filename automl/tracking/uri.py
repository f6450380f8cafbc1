"""Which MLflow tracking store a sweep writes to, checked before any compute."""

from __future__ import annotations

import os

from automl.config.schema import ConfigError
from automl.provenance import redact

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


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
