"""What the sampler optimises: the sweep's metric alone, or with a cost as a second objective.

`sweep.second_objective=trainable_params` makes the Optuna study multi-objective (the metric,
and the trainable parameters minimised), so the sampler itself looks for the trade-off
instead of only the best metric; the Pareto front and `sweep.export_rule` (search/pareto.py)
then choose the export as before. ASHA and the overfit rule still stop trials by the metric
alone: they compare trials by one number, and a trial's parameter count never changes while
it trains. Every trial reports `trainable_params` with each result (train/loop.py).
"""

from __future__ import annotations

from pathlib import Path

from automl.config.schema import Config, ConfigError
from automl.search.study import STUDY_FILE, existing_study, study_storage

# Optuna samplers that optimise one objective only (they raise on a multi-objective study)
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)


def searcher_objectives(conf: Config) -> tuple[str | list[str], str | list[str]]:
    """The metric(s) and mode(s) for Ray's OptunaSearch: a trial counts by its best epoch."""
    s = conf.sweep
    metric = f"best_{s.metric}"
    if not s.searches_cost:
        return metric, s.mode
    return [metric, s.second_objective], [s.mode, "min"]


def n_objectives(conf: Config) -> int:
    return 2 if conf.sweep.searches_cost else 1


def check_objectives(conf: Config, out_dir: Path) -> None:
    """Before any compute: the sampler can optimise two objectives, and a resumed or extended
    sweep keeps the objectives its Optuna study was created with."""
    sampler = conf.sampler.name
    if conf.sweep.searches_cost and sampler in SINGLE_OBJECTIVE_SAMPLERS:
        raise ConfigError(
            f"config: sweep.second_objective: sampler {sampler} optimises one objective; "
            "use sampler=tpe, random, gp or qmc, or sweep.second_objective=none"
        )
    if not conf.sweep.resume or not (out_dir / STUDY_FILE).is_file():
        return
    had = study_objectives(out_dir, conf.sweep.name)
    if had is not None and had != n_objectives(conf):
        was = "none" if had == 1 else "a cost (trainable_params)"
        raise ConfigError(
            f"config: sweep.second_objective: sweep {conf.sweep.name!r} was started with "
            f"{was} as its second objective; resume or extend it with the same setting, "
            "or start a new sweep.name"
        )


def study_objectives(out_dir: Path, study_name: str) -> int | None:
    """How many objectives the sweep's Optuna study has (None: no such study yet)."""
    study = existing_study(study_storage(out_dir), study_name)
    return None if study is None else len(study.directions)
