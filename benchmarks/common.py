"""What every benchmark shares: composing configs, temp folders, timers, machine facts."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from automl.config.schema import Config

log = logging.getLogger("benchmarks")


def seed_list(text: str) -> list[int]:
    """`--seeds 0,1,2` as ints; anything else is argparse's one-line usage error."""
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"seeds must be integers like 0,1,2, got {text!r}"
        ) from None


def progress(message: str) -> None:
    """One progress line on stderr, with the time."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def compose(*overrides: str) -> Config:
    """The project's Hydra config with `overrides` (as on the command line), validated."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from automl.config.resolve import to_config
    from automl.config.schema import CONF_DIR, register_configs

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = hydra_compose("config", overrides=list(overrides))
    return to_config(cfg)


def sweep_overrides(tmp: Path, name: str) -> list[str]:
    """Outputs, Ray results and the MLflow store of a benchmark sweep, all under `tmp`."""
    return [
        f"paths.output_dir={tmp / 'outputs'}",
        f"tracking.uri=sqlite:///{tmp / 'mlflow.db'}",
        "ray.num_cpus=2",
        f"sweep.name={name}",
        "sweep.time_budget_s=null",
    ]


class Timers:
    """Wall time spent inside named functions of a module, by wrapping them for a while."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def wrap(self, module: Any, *names: str) -> Iterator[Timers]:
        originals = {name: getattr(module, name) for name in names}

        def timed(name: str, fn: Any) -> Any:
            def inner(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    self.seconds[name] = self.seconds.get(name, 0.0) + (
                        time.perf_counter() - started
                    )

            return inner

        for name, fn in originals.items():
            setattr(module, name, timed(name, fn))
        try:
            yield self
        finally:
            for name, fn in originals.items():
                setattr(module, name, fn)


def machine() -> dict[str, Any]:
    import torch
    import transformers

    from automl.provenance import git_commit, package_versions

    return {
        "cpus": os.cpu_count(),
        "gpu": torch.cuda.is_available(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d"),
        "versions": package_versions(),  # ray, optuna, mlflow, peft, ...
        "git_commit": git_commit(),  # "unknown" outside a git checkout
    }


def measured_on(m: dict[str, Any]) -> str:
    """The machine sentence every results page opens with (from `machine()`)."""
    versions = m.get("versions") or {}
    others = ", ".join(
        f"{k} {versions[k]}" for k in ("ray", "optuna", "peft", "mlflow") if k in versions
    )
    commit = m.get("git_commit")
    return (
        f"Measured {m['date']} on {m['cpus']} CPU cores, GPU {m['gpu']}, torch {m['torch']}, "
        f"transformers {m['transformers']}, Python {m['python']}"
        + (f", {others}" if others else "")
        + (f"; commit {short_commit(commit)}" if commit else "")
        + "."
    )


def quiet() -> None:
    from automl.console import setup_logging

    setup_logging()
    logging.getLogger("automl").setLevel(logging.WARNING)
    logging.getLogger("automl.sweep").setLevel(logging.WARNING)


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def saving(ours: float, baseline: float) -> float:
    """Fraction of `baseline` saved by `ours` (0.4 = 40 % less)."""
    return 1.0 - ours / baseline if baseline else 0.0


def short_commit(commit: object) -> str:
    """A recorded commit as a page shows it: the hash's first 7 characters, and `-dirty` (code
    changed since the commit) or `-unverified` after it where recorded: cut to 7, it was lost."""
    text = str(commit or "?")
    sha, _, state = text.partition("-")
    return sha[:7] + (f"-{state}" if state else "")
