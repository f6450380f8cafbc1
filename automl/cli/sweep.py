"""`automl-sweep`: validate -> tokenize once -> Ray Tune + Optuna -> summary -> export -> MLflow.

automl-sweep experiment=default                 # the quick sweep on MiniLM + chatterbot topics
automl-sweep experiment=smoke                   # tiny model, a few seconds per trial
automl-sweep sampler=random pruner=none sweep.num_samples=20 search_space=default
automl-sweep -m experiment=smoke data.max_examples=500,1000   # one sweep each: smoke-0, smoke-1
"""

from __future__ import annotations

import sys

from automl.cli.app import command_line_values, hydra_app, multirun_job
from automl.config.schema import Config
from automl.search.sweep import SweepOutcome, run_sweep

# sweeps of this command that ended without a model to export (every trial failed or none
# scored): the command then exits 1, after the last job of a multirun
_unexported: list[str] = []


def sweep_job(conf: Config) -> SweepOutcome:
    """Hydra's multirun (`-m`) runs one sweep per combination of values, one after another;
    each is named `<sweep.name>-<job number>`, since a sweep under a name already used starts
    fresh over that sweep's folder, study and MLflow runs, and the second job would wipe the
    first. The same command with `sweep.resume=true` finds each one again."""
    job = multirun_job()
    if job is not None:
        conf.sweep.name = f"{conf.sweep.name}-{job}"
    outcome = run_sweep(conf, given=command_line_values())
    if outcome.export_dir is None and not outcome.summary.get("dry_run"):
        ended = str(outcome.summary.get("outcome", ""))
        why = "the best trial's checkpoint is gone" if ended == "finished" else ended
        _unexported.append(f"{conf.sweep.name} ({why.replace('_', ' ')})")
    return outcome


def main() -> None:
    """`automl-sweep`: exit 0 when every sweep exported a model, 1 when one ended without
    (so a script or a CI job notices), 2 on bad input."""
    _unexported.clear()
    hydra_app(sweep_job)()
    if _unexported:
        print(f"error: nothing exported: {', '.join(_unexported)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
