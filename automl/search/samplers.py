"""Optuna samplers choose each trial's hyperparameters; Ray Tune runs the trials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from automl.config.schema import ConfigError, SamplerConfig
from automl.config.search_space import SearchSpace

# Optuna imports these only once a sampler first samples: inside a running sweep, too late.
NEEDS = {"cmaes": "cmaes", "gp": "scipy"}


def check_sampler(cfg: SamplerConfig) -> None:
    """Before any compute: the sampler exists and what it imports is installed."""
    import importlib.util

    build_sampler(cfg)
    module = NEEDS.get(cfg.name)
    if module and importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"config: sampler.name: {cfg.name} needs the {module!r} package (pip install {module})"
        )


# Samplers of one fixed set of parameters: a `when:` branch is a parameter of its own (another
# name), which they never model and hand to their random fallback in every trial
FIXED_SPACE_ONLY = ("cmaes", "gp", "qmc")


def branch_warning(cfg: SamplerConfig, space: SearchSpace) -> str | None:
    """The plan's warning when the sampler would sample a conditional range at random."""
    if cfg.name not in FIXED_SPACE_ONLY:
        return None
    notes = []
    branched = [p.key for p in space.params if p.branches]
    if branched:
        notes.append(
            f"sampler.name={cfg.name} models one fixed set of parameters, not the conditional "
            f"ranges (a `when:` branch, or `blocks` per model choice) of {', '.join(branched)}: "
            "they are sampled at random (qmc: all but its first trial's); sampler=tpe models them"
        )
    categorical = [  # a single choice is no choice: Optuna does not sample it
        p.key for p in space.params if p.type == "categorical" and len(p.choices or ()) > 1
    ]
    if cfg.name == "cmaes" and categorical:  # Optuna's CMA-ES leaves them to random sampling
        notes.append(
            f"sampler.name=cmaes models no categorical parameter: {', '.join(categorical)} "
            "are sampled at random; sampler=tpe models them"
        )
    return "; ".join(notes) or None


def round_seed(cfg: SamplerConfig, round_index: int) -> int:
    """The seed of a sweep's round: `sampler.seed` for the first, and for each extension round
    (`sweep.resume=true` with more trials) a seed of its own derived from it, since the same
    seed would draw the first round's start-up configurations again (a random sampler: every
    one; QMC: the conditional values its random fallback draws; its sequence keeps the
    configured seed and goes on where the study's last round left it)."""
    if round_index == 0:
        return cfg.seed
    import numpy as np

    return int(np.random.SeedSequence([cfg.seed, round_index]).generate_state(1)[0])


def build_sampler(cfg: SamplerConfig, round_index: int = 0) -> Any:
    """The Optuna sampler that chooses each trial's hyperparameters (seeded; `round_seed`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    import warnings

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    seed = round_seed(cfg, round_index)
    samplers = optuna.samplers
    if cfg.name == "tpe":
        # multivariate + group: models parameters jointly, and handles the conditional branches
        return samplers.TPESampler(
            seed=seed, n_startup_trials=cfg.n_startup_trials, multivariate=True, group=True
        )
    if cfg.name == "random":
        return samplers.RandomSampler(seed=seed)
    if cfg.name == "cmaes":
        return samplers.CmaEsSampler(
            seed=seed, n_startup_trials=cfg.n_startup_trials, warn_independent_sampling=False
        )
    if cfg.name == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=cfg.n_startup_trials)
    if cfg.name == "qmc":
        # scrambled, or the seed changes nothing: unscrambled, every seed draws one sequence;
        # the sequence's seed is the sweep's in every round, so an extension round continues
        # it (Optuna keeps its position in the study) rather than starting a second one over
        # the same points' neighbourhood; the round's own seed goes to its random fallback
        return samplers.QMCSampler(
            seed=cfg.seed, scramble=True, warn_independent_sampling=False,
            independent_sampler=samplers.RandomSampler(seed=seed),
        )  # fmt: skip
    raise ConfigError(f"config: sampler.name: unknown sampler {cfg.name!r}")


@dataclass(frozen=True)
class DefineByRun:
    """Optuna define-by-run over the search space; a picklable object, since Ray checkpoints
    the searcher with the experiment state."""

    space: SearchSpace

    def __call__(self, trial: Any) -> None:
        self.space.suggest(trial)  # Ray records the values under their Optuna names
