"""sweep.second_objective: the sampler minimises trainable parameters beside the metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import compose_sweep_config

from automl.config.schema import ConfigError
from automl.search.objectives import searcher_objectives, study_objectives
from automl.search.plan import plan_sweep
from automl.search.study import study_storage


@pytest.mark.parametrize(
    ("overrides", "metric", "mode"),
    [
        ([], "best_val_accuracy", "max"),
        (["sweep.second_objective=trainable_params"],
         ["best_val_accuracy", "trainable_params"], ["max", "min"]),
        (["sweep.second_objective=trainable_params", "sweep.metric=val_loss", "sweep.mode=min"],
         ["best_val_loss", "trainable_params"], ["min", "min"]),
    ],
)  # fmt: skip
def test_searcher_objectives(tmp_path: Path, overrides: list[str], metric: Any, mode: Any) -> None:
    conf = compose_sweep_config(tmp_path, "experiment=smoke", *overrides)
    assert searcher_objectives(conf) == (metric, mode)


def test_a_single_objective_sampler_is_refused_before_compute(tmp_path: Path) -> None:
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", "sampler=cmaes", "sweep.second_objective=trainable_params"
    )
    with pytest.raises(ConfigError, match=r"^config: sweep.second_objective: sampler cmaes"):
        plan_sweep(conf)
    assert not (tmp_path / "outputs").exists()


def test_two_objective_sweep_then_a_resume_that_changes_them_is_refused(
    tmp_path: Path, shared_ray: Any
) -> None:
    from automl.search.sweep import run_sweep

    shared_ray()
    # coarse random buckets: with them the 3 smoke trials differ, so importance can be ranked
    overrides = ("experiment=smoke", "tracking.enabled=false", "sampler=random",
                 "train.batching=buckets", "train.bucket_edges=pow2")  # fmt: skip
    conf = compose_sweep_config(tmp_path, *overrides, "sweep.second_objective=trainable_params")
    summary = run_sweep(conf).summary
    out = tmp_path / "outputs" / "smoke"
    assert summary["second_objective"] == "trainable_params"
    study = optuna.load_study(study_name="smoke", storage=study_storage(out))
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    # each complete Optuna trial holds the trial's best metric and its trainable parameters
    told = sorted(tuple(t.values) for t in study.trials if t.values is not None)
    rows = [r for r in summary["trials"] if r["status"] != "failed"]
    assert told and told == sorted((r["best_value"], r["trainable_params"]) for r in rows)
    assert study_objectives(out, "smoke") == 2
    assert "then min trainable_params" in plan_sweep(conf).describe()
    # the report ranks the hyperparameters for the metric, a two-objective study or not
    page = (out / "report" / "index.html").read_text()
    assert "sampler searched for this front" in page
    assert "Optuna could not rank" not in page

    before = (out / "summary.json").read_text()
    extend = compose_sweep_config(tmp_path, *overrides, "sweep.resume=true",
                                  "sweep.num_samples=5")  # fmt: skip
    with pytest.raises(ConfigError, match=r"^config: sweep.second_objective: sweep 'smoke' was"):
        plan_sweep(extend)
    assert (out / "summary.json").read_text() == before  # nothing recorded is lost
    assert json.loads(before)["num_trials"] == 3
