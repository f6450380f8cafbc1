"""What every command-line entry point shares: Hydra composition, logging, one-line errors."""

from __future__ import annotations

import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from automl.config import CONF_DIR, Config, ConfigError, register_configs, to_config

log = logging.getLogger("automl")


def user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by input, reported as one line (a traceback only with debug=true)."""
    from automl.data import DataError
    from automl.modeling import ModelError
    from automl.search_space import SearchSpaceError

    return (ConfigError, DataError, ModelError, SearchSpaceError)


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
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")
    warnings.filterwarnings("ignore", message=".*fan_in_fan_out.*")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()


def hydra_app(run: Callable[[Config], Any]) -> Callable[[], None]:
    """Wrap `run(conf)` as a Hydra app whose input errors exit 2 with one line on stderr."""
    register_configs()

    @hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
    def _main(cfg: DictConfig) -> None:
        debug = bool(cfg.get("debug", False))
        setup_logging(debug)
        try:
            run(to_config(cfg))
        except user_errors() as err:
            if debug:
                raise
            print(f"error: {err}", file=sys.stderr)
            sys.exit(2)

    @functools.wraps(run)
    def main() -> None:
        _main()

    return main
