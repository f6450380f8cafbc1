"""The Ray Tune `Tuner` of one sweep round: a new experiment, or the one a kill interrupted.

Also what Ray leaves undecided when an experiment ends: trials it never finished (the sweep's
time budget ran out), and trials whose records a kill lost, are read back from its results, so
each still gets a final status.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ray.tune.search.optuna import OptunaSearch

from automl.config.schema import PrunerConfig
from automl.search.callback import RayTrialEnd, SweepCallback, error_line
from automl.search.objectives import searcher_objectives
from automl.search.plan import SweepPlan
from automl.search.samplers import DefineByRun, build_sampler
from automl.search.stopping import OverfitRule, OverfitStopper, build_stopping
from automl.search.storage import whole_file_storage


def overfit_rule(pr: PrunerConfig, *, metric: str, mode: str) -> OverfitRule:
    """The overfit rule a pruner config describes, on the sweep's metric."""
    return OverfitRule(
        metric=metric, mode=mode, grace_period=pr.grace_period, patience=pr.patience,
        min_delta=pr.min_delta, signal=pr.signal, max_gap=pr.max_gap,
    )  # fmt: skip


def stopping_rules(plan: SweepPlan) -> tuple[OverfitStopper | None, Any]:
    """The overfit stopper and ASHA scheduler the pruner config asks for (either may be None)."""
    s, pr = plan.conf.sweep, plan.conf.pruner
    rule = overfit_rule(pr, metric=s.metric, mode=s.mode)
    return build_stopping(
        pr.name, rule, max_t=plan.max_epochs, grace_period=pr.asha_grace_period,
        reduction_factor=pr.asha_reduction_factor, asha_metric=f"best_{s.metric}",
    )  # fmt: skip


def new_tuner(
    plan: SweepPlan,
    trainable: Any,
    *,
    name: str,
    study: Any,
    callback: SweepCallback,
    rules: tuple[OverfitStopper | None, Any],
    num_samples: int,
    points: list[dict[str, Any]] | None = None,
    round_index: int = 0,
) -> Any:
    """A fresh Ray experiment whose Optuna study (`study`, a storage) outlives it; an
    extension round (`round_index` > 0) samples from a seed of its own."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter

    s = plan.conf.sweep
    stopper, scheduler = rules
    metric, mode = searcher_objectives(plan.conf)  # best epoch's metric (and a cost, if asked)
    searcher = JournalSafeOptunaSearch(
        space=DefineByRun(plan.space),
        metric=metric,
        mode=mode,
        sampler=build_sampler(plan.conf.sampler, round_index),
        study_name=s.name,
        storage=study,
        points_to_evaluate=points,  # an earlier sweep's best configurations first, if any
    )
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=s.max_concurrent),
            scheduler=scheduler,
            num_samples=num_samples,
            time_budget_s=s.time_budget_s,
            reuse_actors=s.reuse_actors,
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(plan.storage),
            storage_filesystem=whole_file_storage(),  # a kill leaves no half-written state
            stop=stopper,
            callbacks=[callback],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=s.max_failures),
            verbose=0,
        ),
    )


def restored_tuner(
    experiment_dir: Path,
    trainable: Any,
    callback: SweepCallback,
    stopper: OverfitStopper | None,
    study: Any,
) -> Any:
    """The interrupted experiment: ended trials stay, unfinished ones go on from their
    checkpoints, and failed ones stay failed (their resume files are gone: re-running them
    would start them over under the same id). `study`: the sweep folder's Optuna storage."""
    from ray import tune

    tuner = tune.Tuner.restore(
        str(experiment_dir), trainable, resume_unfinished=True, resume_errored=False,
        storage_filesystem=whole_file_storage(),
    )  # fmt: skip
    use_driver_objects(tuner, callback, stopper)
    tune_config = getattr(getattr(tuner, "_local_tuner", None), "_tune_config", None)
    searcher = getattr(getattr(tune_config, "search_alg", None), "searcher", None)
    if not isinstance(searcher, JournalSafeOptunaSearch):
        raise RuntimeError(
            "cannot resume: this Ray version's restored TuneConfig.search_alg is no "
            "ConcurrencyLimiter around the sweep's OptunaSearch (written for Ray 2.60)"
        )
    searcher.use_storage(study)
    return tuner


def use_driver_objects(tuner: Any, callback: SweepCallback, stopper: OverfitStopper | None) -> None:
    """Make a restored tuner report to this driver's callback and stopper.

    The one private use of Ray here: `Tuner.restore` re-reads the `RunConfig` pickled when the
    sweep started (a callback whose MLflow client belonged to the killed driver, a stopper as it
    was then) and, in Ray 2.60, takes no callbacks, stopper or run config. Ray then restores the
    saved callback state (trial records, the stopper's histories) into these objects, and the
    callback replays the records into the restored ASHA (`catch_up_asha`).
    """
    local = getattr(tuner, "_local_tuner", None)
    if local is None or not callable(getattr(local, "get_run_config", None)):
        raise RuntimeError(
            "cannot resume: this Ray version's Tuner has no _local_tuner.get_run_config() "
            "(written for Ray 2.60; a Ray Client connection is not supported)"
        )
    run_config = local.get_run_config()
    run_config.callbacks, run_config.stop = [callback], stopper
    tune_config = getattr(local, "_tune_config", None)
    if tune_config is None or not hasattr(tune_config, "scheduler"):
        raise RuntimeError(
            "cannot resume: this Ray version's Tuner has no _local_tuner._tune_config.scheduler "
            "(written for Ray 2.60)"
        )
    callback.scheduler = tune_config.scheduler  # pickled when the round began: rungs refilled


def use_time_budget(tuner: Any, seconds: float) -> None:
    """A restored tuner's time budget: `Tuner.restore` re-reads the round's whole
    `TuneConfig.time_budget_s` (the private attribute `use_driver_objects` reaches too)."""
    tune_config = getattr(getattr(tuner, "_local_tuner", None), "_tune_config", None)
    if tune_config is None or not hasattr(tune_config, "time_budget_s"):
        raise RuntimeError(
            "cannot resume: this Ray version's Tuner has no _local_tuner._tune_config "
            "(written for Ray 2.60)"
        )
    tune_config.time_budget_s = seconds


def ended_trials(results: Any) -> list[RayTrialEnd]:
    """Each trial in Ray's results: its config, latest checkpoint, error line and last result."""
    out = []
    for result in results:
        metrics = dict(result.metrics or {})
        if not metrics.get("trial_id"):
            continue
        error = ""
        if result.error is not None:
            error = error_line(str(result.error), type(result.error).__name__)
        out.append(
            RayTrialEnd(
                str(metrics["trial_id"]),
                dict(result.config or {}),
                result.checkpoint.path if result.checkpoint is not None else "",
                error,
                metrics,
            )  # fmt: skip
        )
    return out


class JournalSafeOptunaSearch(OptunaSearch):
    """Ray's OptunaSearch, tolerant of news of a trial the study already holds as finished.

    After a driver kill between a trial's end and Ray's next experiment checkpoint, the Optuna
    journal (written first) has the trial COMPLETE while Ray's restored state has it running;
    Ray then restarts it from its last checkpoint, and its repeated last epoch or its end, told
    to a finished Optuna trial, would raise or warn. The study already holds its value.
    """

    def use_storage(self, storage: Any) -> None:
        """Keep the study in `storage` (the sweep folder's journal as this driver sees it),
        now and after Ray restores the searcher's saved state: both were pickled with the
        journal's absolute path, so a sweep folder moved and resumed mid-round wrote into the
        old folder's journal (a copy: into the original's; moved: FileNotFoundError)."""
        self._driver_storage = storage
        self._rebind()

    def restore(self, checkpoint_path: str) -> None:
        storage = self.__dict__.get("_driver_storage")
        super().restore(checkpoint_path)  # the state as saved, the old journal path with it
        if storage is not None:
            self._driver_storage = storage
            self._rebind()

    def _rebind(self) -> None:
        import optuna

        self._storage = self._driver_storage
        if self._ot_study is None:  # set up from `_storage` later
            return
        old = self._ot_study
        study = optuna.load_study(
            study_name=old.study_name, storage=self._storage, sampler=old.sampler,
            pruner=old.pruner,
        )  # fmt: skip
        self._ot_study = study
        # the asked trials, by their ids in the storage (the same in a copied journal)
        self._ot_trials = {
            ray_id: optuna.Trial(study, trial._trial_id)
            for ray_id, trial in self._ot_trials.items()
        }

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        if self._already_finished(trial_id):
            return
        with warnings.catch_warnings():
            # a trial resumed after a kill repeats the epoch Ray had not checkpointed yet: the
            # study keeps the value it was told first (the same epoch's) and warns; the sweep's
            # records take the repeat in place (callback.py), so there is nothing to say
            warnings.filterwarnings("ignore", message="The reported value is ignored because")
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if not self._already_finished(trial_id):
            super().on_trial_complete(trial_id, result, error)

    def _already_finished(self, trial_id: str) -> bool:
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None and _finished(self._ot_study, ot_trial.number):
            self._completed_trials.add(trial_id)
            return True
        return False


def _finished(study: Any, number: int) -> bool:
    trials = study.get_trials(deepcopy=False)
    return number < len(trials) and trials[number].state.is_finished()
