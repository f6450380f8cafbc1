"""What every command-line entry point shares: Hydra composition and one-line input errors."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from automl.config.resolve import to_config
from automl.config.schema import CONF_DIR, Config, ConfigError, register_configs
from automl.console import setup_logging

log = logging.getLogger("automl")


def user_errors() -> tuple[type[Exception], ...]:
    """Errors caused by input, reported as one line (a traceback only with debug=true)."""
    from automl.config.space_params import SearchSpaceError
    from automl.data.task import DataError
    from automl.model.load import ModelError

    return (ConfigError, DataError, ModelError, SearchSpaceError)


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
