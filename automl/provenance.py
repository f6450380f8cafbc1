"""Where a result came from: package versions, git commit, the provenance of an exported model,
and secrets kept out of everything logged."""

from __future__ import annotations

import re
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from automl.config.schema import PROJECT_ROOT, Config
from automl.console import first_line

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


# A database URL (SQLAlchemy's: postgresql, mysql, ...) holds a password up to its first "@",
# whatever it contains ("/", "?", "#", quotes); in other URLs a password ends at "/", "?" or "#"
# (the authority's end) and `host:5000/` is a port. Then a token alone (tok@host), and secrets
# passed as query parameters (?password=..., &token=...).
_DB_PASSWORD = re.compile(
    r"\b((?:postgresql|postgres|mysql|mariadb|mssql|oracle|cockroachdb)(?:\+\w+)?://)"
    r"([^:/\s]*):([^@\s]*)@",  # a user may hold "@" (Azure's user@server), or be empty
    re.IGNORECASE,
)
_PASSWORD = re.compile(r"(?<=://)([^/:\s\"]*):(?!\d+(?:[/?#\s\"']|$))([^\s/?#\"]*)@")
_TOKEN = re.compile(r"(?<=://)([^/@:\s\"]+)@")
_QUERY_SECRET = re.compile(
    r"([?&](?:password|passwd|pwd|token|access_token|secret|api_key|key)=)[^&\s\"']*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """Hide passwords and tokens inside URIs (user:password@host, token@host, ?password=)
    before anything is logged or recorded. JSON is redacted value by value (`redact_values`)
    before it is written: an escaped quote in a password would hide it from a pattern."""
    text = _DB_PASSWORD.sub(r"\1\2:***@", text)
    text = _PASSWORD.sub(r"\1:***@", text)
    text = _TOKEN.sub("***@", text)
    return _QUERY_SECRET.sub(r"\1***", text)


def masked_line(err: BaseException, limit: int = 300) -> str:
    """An error's first line for a log or a one-line error: cut, and any URI it quotes masked
    (an HTTP store's errors quote its URL, password and all)."""
    return redact(first_line(err))[:limit]  # cut after: a cut password escapes the pattern


def redact_values(value: Any) -> Any:
    """`redact` on every string inside dicts and lists (keys kept): before json.dumps."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_values(v) for v in value]
    return value


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(root: Path = PROJECT_ROOT) -> str:
    """The project's commit, `-dirty` after it where tracked files changed since (the code
    that trained a model, which its card names, was not that commit's), `-unverified` where
    git could not tell, "unknown" outside a git checkout."""
    head = _git(root, "rev-parse", "HEAD")
    if head is None:
        return "unknown"
    # no optional locks: a status refreshing the index took .git/index.lock, and a user's
    # `git commit` at that moment failed
    changed = _git(root, "--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    if changed is None:  # timed out (a large or cold repository) or failed: not known clean
        return f"{head}-unverified"
    return f"{head}-dirty" if changed else head


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=5
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def sweep_provenance(
    conf: Config,
    trial_id: str,
    value: float | None,
    params: dict[str, Any],
    n: int,
    data: str,
    fingerprint: dict[str, Any] | None = None,
    commit: str | None = None,
) -> dict[str, Any]:
    """Where an exported model came from (model card + provenance.json).

    `fingerprint`: the data's (data/fingerprint.py), which `automl-reproduce` checks; `commit`:
    the project's as the sweep started (asked now where None)."""
    return {
        "sweep": conf.sweep.name,
        "trial_id": trial_id,
        "metric": conf.sweep.metric,
        "best_value": value,
        "hyperparameters": params,
        "num_trials": n,
        "sampler": conf.sampler.name,
        "pruner": conf.pruner.name,
        "export_rule": {"rule": conf.sweep.export_rule, "tolerance": conf.sweep.export_tolerance},
        "search_space": conf.search_space,
        "data": data,
        "data_fingerprint": fingerprint or {},
        "git_commit": commit if commit is not None else git_commit(),
        "versions": package_versions(),
    }
