"""`automl-sweep`: validate -> tokenize once -> Ray Tune + Optuna -> summary -> export -> MLflow.

automl-sweep experiment=default                 # the quick sweep on MiniLM + chatterbot topics
automl-sweep experiment=smoke                   # tiny model, a few seconds per trial
automl-sweep sampler=random pruner=none sweep.num_samples=20 search_space=default
"""

from __future__ import annotations

from automl.cli.app import hydra_app
from automl.search.sweep import run_sweep

main = hydra_app(run_sweep)


if __name__ == "__main__":
    main()
