"""Every shipped sampler (conf/sampler/*.yaml) runs a small sweep end to end, and `sweep.mode=min`
picks the trial with the lowest score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT, compose_sweep_config

from automl.config.schema import ConfigError, SamplerConfig
from automl.search.samplers import check_sampler
from automl.search.sweep import run_sweep

SAMPLERS = sorted(p.stem for p in (REPO_ROOT / "conf" / "sampler").glob("*.yaml"))
SPACE = """\
train.learning_rate: {type: float, low: 5.0e-3, high: 2.0e-2, log: true}
peft.frozen_layers: {type: int, low: 0, high: 1}
"""


@pytest.fixture
def ray_session(shared_ray: Any) -> None:
    """The session's local Ray (conftest.py): a sweep joins it instead of starting its own."""
    shared_ray()


def _sweep(tmp: Path, *overrides: str) -> dict:
    space = tmp / "space.yaml"
    space.write_text(SPACE)
    conf = compose_sweep_config(
        tmp, "experiment=smoke", "train.epochs=1", "sweep.num_samples=3", "pruner=none",
        "sweep.max_concurrent=2", "sampler.n_startup_trials=1", "tracking.enabled=false",
        f"search_space={space}", *overrides,
    )  # fmt: skip
    run_sweep(conf)
    return json.loads((tmp / "outputs" / "smoke" / "summary.json").read_text())


@pytest.mark.parametrize("group", ["sampler", "pruner"])
def test_every_accepted_choice_is_shipped_and_every_shipped_one_accepted(group: str) -> None:
    """`sampler=gp` composes from conf/sampler/gp.yaml; `sampler.name` is checked against
    CHOICES: an option in one and not the other fails at composition or at validation."""
    from automl.config.values import CHOICES

    shipped = sorted(p.stem for p in (REPO_ROOT / "conf" / group).glob("*.yaml"))
    assert shipped == sorted(CHOICES[f"{group}.name"])
    for name in shipped:
        text = (REPO_ROOT / "conf" / group / f"{name}.yaml").read_text()
        assert f"name: {name}" in text, name  # the file sets the name it is chosen by


def test_a_sampler_whose_package_is_missing_is_refused_before_compute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "cmaes" else find_spec(name)
    )
    with pytest.raises(ConfigError, match=r"sampler.name: cmaes needs the 'cmaes' package"):
        check_sampler(SamplerConfig(name="cmaes"))
    check_sampler(SamplerConfig(name="tpe"))


@pytest.mark.slow  # one Ray sweep each (three 1-epoch trials)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_sampler_runs_a_sweep(tmp_path: Path, sampler: str, ray_session: None) -> None:
    summary = _sweep(tmp_path, f"sampler={sampler}")
    assert summary["num_trials"] == 3 and summary["statuses"] == {"completed": 3}
    configs = [tuple(sorted(row["params"].items())) for row in summary["trials"]]
    assert len(set(configs)) == 3  # the sampler chose, and never repeated itself
    assert summary["best_value"] == max(row["best_value"] for row in summary["trials"])
    assert summary["export_dir"]


@pytest.mark.slow
def test_min_mode_picks_the_lowest(tmp_path: Path, ray_session: None) -> None:
    summary = _sweep(tmp_path, "sweep.metric=val_loss", "sweep.mode=min", "sampler=random")
    rows = summary["trials"]
    for row in rows:  # each trial scored by its lowest val_loss
        assert row["best_value"] == min(h["val_loss"] for h in row["history"])
    lowest = min(rows, key=lambda r: r["best_value"])
    assert summary["best_trial"] == lowest["trial_id"]
    assert summary["best_value"] == lowest["best_value"] < max(r["best_value"] for r in rows)


def _continued(name: str, rounds: list[int]) -> list[list[dict[str, Any]]]:
    """One Optuna study, continued round after round by a new sampler each time (as a sweep's
    extension rounds are): the parameters each round drew."""
    import optuna

    from automl.search.samplers import build_sampler

    study = optuna.create_study(direction="maximize")
    drawn = []
    for round_index in rounds:
        study.sampler = build_sampler(SamplerConfig(name=name, seed=0), round_index)
        before = len(study.trials)
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)
        drawn.append([t.params for t in study.trials[before:]])
    return drawn


@pytest.mark.parametrize("name", ["random", "tpe"])
def test_an_extension_round_does_not_draw_the_first_rounds_configurations_again(
    name: str,
) -> None:
    first, again = _continued(name, [0, 0])  # the same seed in a new sampler: repeats
    assert again[0] == first[0]
    first, extension = _continued(name, [0, 1])
    assert not any(p in first for p in extension), (first, extension)
    assert _continued(name, [0, 1]) == [first, extension]  # still reproducible


@pytest.mark.parametrize("name", SAMPLERS)
def test_every_round_has_its_own_seed_and_the_first_keeps_the_configured_one(name: str) -> None:
    from automl.search.samplers import round_seed

    seeds = [round_seed(SamplerConfig(name=name, seed=3), r) for r in range(4)]
    assert seeds[0] == 3 and len(set(seeds)) == 4


@pytest.mark.parametrize("name", ["cmaes", "qmc", "gp"])
def test_a_sampler_of_fixed_parameters_is_said_to_leave_when_branches_random(name: str) -> None:
    """The branch names (`train.learning_rate[peft.lora_rank=0]`) come and go between trials:
    these samplers never model them, and the plan says so."""
    import optuna

    from automl.config.search_space import load_search_space
    from automl.search.samplers import branch_warning, build_sampler

    space = load_search_space(
        "quick", config=_QUICK_CONFIG, num_blocks=6, search_dir=REPO_ROOT / "search_spaces"
    )
    sampler = build_sampler(SamplerConfig(name=name, seed=0, n_startup_trials=2))
    study = optuna.create_study(sampler=sampler)
    study.enqueue_trial({"peft.lora_rank": 0})  # each branch of the learning rate once
    study.enqueue_trial({"peft.lora_rank": 8})
    for i in range(6):
        trial = study.ask()
        space.suggest(trial)
        study.tell(trial, float(i))
    modelled = sampler.infer_relative_search_space(study, study.ask())
    # cmaes and gp model neither name, qmc only the first trial's: a branch is left random
    assert len([n for n in modelled if n.startswith("train.learning_rate")]) < 2
    warning = branch_warning(SamplerConfig(name=name), space)
    assert warning is not None and "of train.learning_rate: they are sampled at random" in warning
    assert branch_warning(SamplerConfig(name="tpe"), space) is None


_QUICK_CONFIG: dict[str, Any] = {
    "train": {"learning_rate": 2e-3, "epochs": 3}, "peft": {"lora_rank": 8, "frozen_layers": 0},
}  # fmt: skip


def _drawn(cfg: SamplerConfig, n: int) -> list[dict[str, Any]]:
    import optuna

    from automl.search.samplers import build_sampler

    study = optuna.create_study(sampler=build_sampler(cfg))
    for i in range(n):
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        trial.suggest_float("y", 0.0, 1.0)
        study.tell(trial, float(i % 3))
    return [t.params for t in study.trials]


def test_a_qmc_extension_round_continues_the_first_rounds_sequence() -> None:
    """Each round's own seed started a new scrambled sequence at its first point: the rounds'
    points together were several short sequences, not one low-discrepancy set."""
    import optuna

    from automl.search.samplers import build_sampler

    study = optuna.create_study(direction="maximize")
    one_round = optuna.create_study(direction="maximize")
    one_round.sampler = build_sampler(SamplerConfig(name="qmc", seed=0), 0)
    one_round.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=6)
    for round_index in (0, 1):
        study.sampler = build_sampler(SamplerConfig(name="qmc", seed=0), round_index)
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=3)
    assert [t.params for t in study.trials] == [t.params for t in one_round.trials]


def test_qmcs_seed_changes_its_sequence() -> None:
    """Unscrambled, seeds 0 and 1 drew the same points after the first: sampler.seed did
    nothing."""
    zero, one = (_drawn(SamplerConfig(name="qmc", seed=s), 5) for s in (0, 1))
    assert zero[1:] != one[1:]
    assert _drawn(SamplerConfig(name="qmc", seed=0), 5) == zero


def test_cmaes_takes_its_start_up_trials_from_the_config() -> None:
    import optuna

    from automl.search.samplers import build_sampler

    sampler = build_sampler(SamplerConfig(name="cmaes", seed=0, n_startup_trials=7))
    assert isinstance(sampler, optuna.samplers.CmaEsSampler)
    assert sampler._n_startup_trials == 7  # was Optuna's default (1) whatever the config said


def test_cmaes_says_it_samples_categorical_parameters_at_random() -> None:
    from automl.config.search_space import load_search_space
    from automl.search.samplers import branch_warning

    space = load_search_space(
        "quick", config=_QUICK_CONFIG, num_blocks=6, search_dir=REPO_ROOT / "search_spaces"
    )
    warning = branch_warning(SamplerConfig(name="cmaes"), space)
    assert warning is not None
    assert "cmaes models no categorical parameter: peft.lora_rank are sampled at random" in warning
    assert "categorical" not in (branch_warning(SamplerConfig(name="gp"), space) or "")
