"""What the terminal shows: progress on stderr, library chatter silenced (driver and trials)."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Sequence


def counted(n: int, noun: str) -> str:
    """``1 epoch``, ``3 epochs``, ``2 classes``: a count with its noun, for messages people
    read."""
    if n == 1:
        return f"{n} {noun}"
    return f"{n} {noun}es" if noun.endswith(("s", "x", "sh")) else f"{n} {noun}s"


def listed(names: Sequence[str], most: int = 5) -> str:
    """``a, b, c and 4 more``: the first few names of a list in a message, and how many more."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def first_line(err: BaseException, limit: int | None = None) -> str:
    """An exception's first line (its type's name when it has no text), cut at `limit`
    characters: libraries' errors run to many lines, and the house error is one line."""
    line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return line if limit is None else line[:limit]


def setup_logging(debug: bool = False) -> None:
    """Progress goes to stderr so stdout stays machine-readable (the final JSON line)."""
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    quiet_libraries()


def quiet_libraries() -> None:
    """Silence chatter that is not progress: deprecation notes, progress bars, Ray banners.

    Called in the driver and in every trial process."""
    for noisy in (
        "urllib3",
        "filelock",
        "alembic",
        "httpx",
        "git",
        "mlflow",
        "ray.train",
        "ray.tune",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # "Failed to fetch metrics" for trials the time budget stopped before their first result:
    # Ray's results table, which the sweep does not read (its records come from the callback)
    logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
    ray_run = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, NoRayRestoreHint) for f in ray_run.filters):
        ray_run.addFilter(NoRayRestoreHint())
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


class NoRayRestoreHint(logging.Filter):
    """After a Ctrl-C Ray suggests `Tuner.restore(...)`, its own API; the sweep says how to go
    on instead (`sweep.resume=true`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()
