"""`automl-sweep`: validate -> tokenize once -> Ray Tune + Optuna -> summary -> export -> MLflow.

automl-sweep experiment=default                 # the quick sweep on MiniLM + chatterbot topics
automl-sweep experiment=smoke                   # tiny model, a few seconds per trial
automl-sweep sampler=random pruner=none sweep.num_samples=20 search_space=default
automl-sweep -m experiment=smoke data.max_examples=500,1000   # one sweep each: smoke-0, smoke-1
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from automl.cli.app import command_line_values, hydra_app, multirun_job, names_each_job
from automl.config.schema import Config

if TYPE_CHECKING:  # Ray, MLflow and torch load in the run: a Ctrl-C while they do is one line
    from automl.search.sweep import SweepOutcome


def sweep_job(conf: Config) -> SweepOutcome:
    """Hydra's multirun (`-m`) runs one sweep per combination of values, one after another;
    each is named `<sweep.name>-<job number>`, since a sweep under a name already used starts
    fresh over that sweep's folder, study and MLflow runs, and the second job would wipe the
    first. The same command with `sweep.resume=true` finds each one again. A multirun over
    names alone (`sweep.name=a,b`) keeps them: each job has its own."""
    from automl.search.sweep import run_sweep

    job = multirun_job()
    if job is not None and not names_each_job("sweep.name"):
        conf.sweep.name = f"{conf.sweep.name}-{job}"
    return run_sweep(conf, given=command_line_values())


def left_undone(outcome: SweepOutcome) -> str | None:
    """Why a sweep exported no model (every trial failed, none scored, the best trial's
    checkpoint gone), or did not register the one it exported; None when it did both (or
    tracked nothing), or for a dry run."""
    if outcome.summary.get("registration_error"):
        return str(outcome.summary["registration_error"])
    if outcome.export_dir is not None or outcome.summary.get("dry_run"):
        return None
    if outcome.summary.get("export_blocked"):  # the sweep ran; its folder refused the export
        return f"nothing exported: {outcome.summary['export_blocked']}"
    ended = str(outcome.summary.get("outcome", ""))
    why = "the best trial's checkpoint is gone" if ended == "finished" else ended
    return f"nothing exported: {outcome.summary.get('sweep')} ({why.replace('_', ' ')})"


def check_space(conf: Config) -> None:
    """A multirun job's search space against its model (`model=minilm,tiny_bert` with a space
    deeper than tiny_bert), before the first job's sweep runs."""
    from automl.search.plan import load_space

    load_space(conf)


main = hydra_app(sweep_job, left_undone, check_space)


if __name__ == "__main__":
    main()
