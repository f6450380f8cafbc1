"""`automl-sweep`: validate -> tokenize once -> Ray Tune + Optuna -> summary -> export -> MLflow.

automl-sweep experiment=default                 # the quick sweep on MiniLM + chatterbot topics
automl-sweep experiment=smoke                   # tiny model, a few seconds per trial
automl-sweep sampler=random pruner=none sweep.num_samples=20 search_space=default
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from automl.config.paths import not_replaceable, write_text_atomic
from automl.config.resolve import as_dict
from automl.config.schema import Config, ConfigError
from automl.config.space_params import MODEL_KEY
from automl.data import quality
from automl.data.prepare import prepare_data_for_models
from automl.data.task import TaskData
from automl.data.tokenized import PreparedData
from automl.export.evaluation import (
    CONFUSION_FILE,
    EVALUATION_FILE,
    evaluate_sweep_export,
    headline,
    table_lines,
)
from automl.export.trained_texts import (
    NO_BASE,
    BaseTexts,
    base_trained_texts,
    write_trained_texts,
)
from automl.model.choices import anchored
from automl.model.load import display_name
from automl.provenance import (
    git_commit,
    masked_line,
    package_versions,
    redact,
    redact_values,
    sweep_provenance,
)
from automl.search.callback import SweepCallback, TrialRecord, track_missing
from automl.search.connect import check_reachable
from automl.search.identity import DATA_KEY, check_same_data, data_identity
from automl.search.objectives import n_objectives
from automl.search.pareto import export_choice, mark_pareto
from automl.search.plan import (
    SweepPlan,
    check_storage_free,
    cluster_address,
    dry_run_checks,
    init_ray,
    plan_sweep,
    searched_anyway,
)
from automl.search.state import (
    OWNER_FILE,
    SweepState,
    check_not_running,
    checkpoint_here,
    experiment_name,
    finish_again,
    mark_owner,
    marked_for,
    own_experiments,
    own_storage,
    remove_experiment,
    restorable,
    round_settings,
    state_text,
    storage_lock_file,
    sweep_lock,
)
from automl.search.stop import SweepInterrupted, during_fit, sigterm_stops
from automl.search.storage import drop_partial_copies
from automl.search.study import STUDY_FILE, fail_stale_trials, study_storage, tell_unreported
from automl.search.summary import _count, best_epoch_scores, no_better_than_majority, print_table
from automl.search.tuner import (
    ended_trials,
    new_tuner,
    restored_tuner,
    stopping_rules,
    use_time_budget,
)
from automl.search.warm_start import warm_points
from automl.tracking.registry import register_export
from automl.tracking.runs import SweepTracker
from automl.tracking.uri import StoreError, store_failure

log = logging.getLogger("automl.sweep")


@dataclass
class SweepOutcome:
    summary: dict[str, Any]
    records: list[TrialRecord] = field(default_factory=list)
    export_dir: Path | None = None


def run_sweep(conf: Config, given: Mapping[str, str] | None = None) -> SweepOutcome:
    """The whole sweep, as a straight line of named steps. `given`: the values set on the
    command line, by key (a warning names those the search space samples over)."""
    started = time.time()
    plan = plan_sweep(conf)
    for warning in searched_anyway(plan.space, given or {}):
        log.warning("%s", warning)
    if conf.sweep.dry_run:
        checks = dry_run_checks(plan)  # may settle gpus_per_trial=auto: before describe()
        lines = [*plan.describe().splitlines(), *checks]
        log.info("%s", "\n".join(lines))
        print(json.dumps({"dry_run": True, "plan": lines}), flush=True)
        return SweepOutcome({"dry_run": True})
    plan = replace(plan, commit=git_commit())
    log.info("%s", plan.describe())
    if plan.replaces:
        log.warning("sweep %s starts afresh and replaces %s", conf.sweep.name, plan.replaces)
    if conf.sweep.resume and not plan.continues:
        log.warning(
            "sweep.resume=true: nothing to resume in %s: sweep %s starts afresh",
            plan.out_dir, conf.sweep.name,
        )  # fmt: skip
    if plan.keeps:
        log.warning(
            "sweep %s resumes its interrupted round as it was started: %s; the new values apply "
            "to rounds added later (sweep.num_samples above its trials)", conf.sweep.name,
            plan.keeps,
        )  # fmt: skip
    check_not_running(plan.out_dir, conf.sweep.name)  # said now, not after the data were read
    if not own_storage(plan.storage, plan.out_dir):  # (`_storage_lock`'s)
        check_not_running(plan.storage, conf.sweep.name, storage_lock_file(conf.sweep.name))
    address = cluster_address(conf)
    if address is not None:  # a wrong address said now, not after the data were tokenized
        import ray

        if not ray.is_initialized():  # (asked again on joining it)
            check_reachable(address)
    # data.quality=fail: a data problem stops the sweep here
    data, model_data = prepare_data_for_models(  # the files may have grown: said before tokenizing
        conf, plan.models,
        (lambda task, fingerprint: check_same_data(
            conf.sweep.name, plan.resumes, data_identity(fingerprint, task.label_names)
        )) if plan.resumes else None,
    )  # fmt: skip
    # the sweep's folder for this driver alone, from its first write (a refusal above wrote
    # nothing) and before Ray starts (a refused driver starts no cluster)
    with sweep_lock(plan.out_dir, conf.sweep.name):
        if state_text(plan.out_dir) != plan.state_seen:  # another driver ran it meanwhile
            raise ConfigError(
                f"config: sweep.name: sweep {conf.sweep.name} changed while this run prepared "
                "it (another process ran it): run the command again"
            )
        return _run_locked(plan, data, model_data, started)


def _storage_lock(plan: SweepPlan) -> contextlib.AbstractContextManager[None]:
    """`sweep_lock` on a `paths.storage` of the user's, which other output folders' sweeps may
    share (the default, `<output folder>/ray`, is held with the folder)."""
    if own_storage(plan.storage, plan.out_dir):
        return contextlib.nullcontext()
    return sweep_lock(plan.storage, plan.conf.sweep.name, storage_lock_file(plan.conf.sweep.name))


def _run_locked(
    plan: SweepPlan, data: PreparedData, model_data: dict[str, PreparedData], started: float
) -> SweepOutcome:
    """The sweep on its prepared data, its folder held (`sweep_lock`): Ray, then its storage
    held too (after Ray: a storage the cluster check refuses is not made), the trials, the
    export, MLflow."""
    import ray

    started_ray = init_ray(plan.conf, plan)
    try:  # SIGTERM: a stop like Ctrl-C from here on (set after ray.init, which puts in its own)
        with sigterm_stops(plan.conf.sweep.name), _storage_lock(plan):
            # asked again, held: a sweep of the name from another output folder may have
            # marked the storage's folders as its own since the plan
            check_storage_free(plan.conf, plan.storage, plan.out_dir)
            with _store_failure_in_one_line(plan):
                return _run_on_ray(plan, data, model_data, started)
    finally:
        if started_ray:
            ray.shutdown()


def _run_on_ray(
    plan: SweepPlan, data: PreparedData, model_data: dict[str, PreparedData], started: float
) -> SweepOutcome:
    """The trials, the export and MLflow, with Ray up and the sweep's folders held."""
    conf = plan.conf
    quality_path = quality.write(data.quality, plan.out_dir)  # once the cluster is known good
    tracker = _start_tracking(plan) if plan.tracking_uri else None
    status = "FAILED"
    try:
        if tracker is not None:  # a write that fails here still ends the run below
            tracker.log_artifact_dict(as_dict(conf), "config.json")
            tracker.log_artifact(plan.space.path, "search_space")
            if quality_path is not None:
                tracker.log_artifact(quality_path)
                tracker.log_metrics(quality.metrics(data.quality))
        identity = {DATA_KEY: data_identity(data.fingerprint, data.label_names)}
        run_id = tracker.parent_id if tracker is not None else ""  # "": untracked
        state = _starting_state(plan, {**plan.started_with, **identity}, run_id)
        earlier_s = state.sitting_started(started)  # a resume's wall_s is the sweep's
        if state.phase in ("new", "running"):
            records = _fit(plan, data, model_data, tracker, state)
            state.phase, state.records = "exporting", [asdict(r) for r in records]
            state.save(plan.out_dir)
        else:  # killed during the export, or nothing to add: finish again (idempotent)
            records = [TrialRecord(**r) for r in state.records]
            if tracker is not None:  # a new parent run (untracked so far, or deleted)
                track_missing(tracker, records, conf.sweep.metric)
        # the round's own budget: a restored round keeps the one it was started with
        budget_s = state.round_budget_s(conf.sweep.time_budget_s)
        outcome = _finish(plan, records, data, tracker, started - earlier_s, budget_s, model_data)
        state.phase = "finished"
        state.save(plan.out_dir)
        status = "FINISHED"
        return outcome
    except KeyboardInterrupt:
        status = "KILLED"
        log.warning(
            "sweep %s stopped: run the same command with sweep.resume=true to continue it",
            conf.sweep.name,
        )
        raise
    finally:
        if tracker is not None and status != "FINISHED":
            try:  # an error inside the fit: its trials too
                tracker.end_running_trials(status)
                tracker.end_sweep(status, {}, {"status": status.lower()})
            except Exception as err:  # the store failed too: the error above stands
                log.warning(
                    "MLflow: the sweep's runs were not ended (%s); a resume ends them",
                    masked_line(err),
                )


def _starting_state(
    plan: SweepPlan, identity: Mapping[str, Any] | None = None, run_id: str | None = None
) -> SweepState:
    """Fresh, resumed (same round), or extended (a new round on the same Optuna study).
    `identity`: what the trials learn from, recorded by a fresh sweep for its resumes;
    `run_id`: this sitting's MLflow parent run ("" untracked: a recorded one is kept, for a
    later tracked resume), recorded from the state's first save (a driver killed while the
    stale folders went left the run RUNNING, unknown to the next fresh start that ends it)."""
    s = plan.conf.sweep
    if not s.resume:
        # the new state replaces the stale one first, so a kill below leaves a folder still
        # known as the sweep's; then the study and Ray experiments go
        stale = SweepState.load(plan.out_dir)  # the stale sweep's, before it is replaced
        # it keeps the stale id and round count until the stale folders are gone: a kill
        # midway leaves every one of them still this sweep's to delete (OWNER_FILE: that id)
        state = SweepState(
            started_with=dict(identity or {}),
            sweep_id=stale.sweep_id,
            round=stale.round,
            mlflow_run_id=run_id,
        )
        state.save(plan.out_dir)
        (plan.out_dir / STUDY_FILE).unlink(missing_ok=True)
        return _cleared(plan, state)
    state = SweepState.load(plan.out_dir)
    state.records = _records_here(plan.storage, state.records)
    if run_id:  # this sitting's parent run (reopened, or new where the recorded one is gone)
        state.mlflow_run_id = run_id
    elif run_id is not None and state.mlflow_run_id is None:  # untracked: a later tracked
        state.mlflow_run_id = ""  # resume starts a run of its own
    if state.phase == "new":  # resume=true with nothing to resume: a fresh start after all
        state.started_with = dict(identity or {})
        # a study left by a sweep killed as it started afresh, or whose state file was deleted:
        # the sampler and the importance plot would learn from its trials (Ray loads it)
        study_file = plan.out_dir / STUDY_FILE
        if study_file.is_file() and study_file.stat().st_size:
            log.warning(
                "sweep.resume=true found nothing to resume in %s: its %s holds another start's "
                "trials; removed, as a fresh start does", plan.out_dir, STUDY_FILE,
            )  # fmt: skip
        study_file.unlink(missing_ok=True)
        if state.round:  # a fresh start killed while deleting the stale rounds
            return _cleared(plan, state)
    if not state.sweep_id:  # a state from before 2026-12-06: its rounds marked now, as its
        state.sweep_id = uuid.uuid4().hex  # own (else the next start found them unmarked)
        state.save(plan.out_dir)  # first: a mark without the id saved would be another's
        for folder in own_experiments(plan.storage, s.name, state.round):
            if not (folder / OWNER_FILE).is_file():
                mark_owner(folder, state.sweep_id, plan.out_dir)
    if state.extends(s.num_samples):
        state.round += 1
        state.phase = "running"
        log.info("extending sweep %s to %d trials (round %d)", s.name, s.num_samples, state.round)
    elif state.phase == "finished":
        log.info("sweep %s already has %d trials; exporting again", s.name, len(state.records))
    return state


def _start_tracking(plan: SweepPlan) -> SweepTracker:
    """The sweep's MLflow parent run, new or reopened (`plan.recorded_run`)."""
    conf = plan.conf
    assert plan.tracking_uri
    tracker = SweepTracker(
        plan.tracking_uri, conf.tracking.experiment or conf.sweep.name, conf.sweep.name
    )
    if not plan.continues:  # a fresh start: the run of the sweep it replaces, if killed
        tracker.end_abandoned(plan.recorded_run)
    tracker.start_sweep(_sweep_params(plan), _sweep_tags(plan), plan.continues, plan.recorded_run)
    return tracker


@contextlib.contextmanager
def _store_failure_in_one_line(plan: SweepPlan) -> Iterator[None]:
    """An MLflow store that failed during the sweep, as the run opened or later: one line (a
    traceback of MLflow's REST client otherwise); any other error as it is."""
    try:
        yield
    except Exception as err:
        failure = store_failure(err) if plan.tracking_uri else None
        if failure is None:
            raise
        raise StoreError(
            f"MLflow (store {redact(str(plan.tracking_uri))}) failed: "
            f"{masked_line(failure)}; what the sweep did is kept in "
            f"{plan.out_dir}: once the store works again, run the same command with "
            "sweep.resume=true (debug=true shows the traceback)"
        ) from err


def _record_spent(state: SweepState, spent_s: float, out_dir: Path) -> None:
    """The round's time budget spent so far, saved: on a stop, and every 30 s while it runs
    (a SIGKILL, which no handler sees, then loses at most that)."""
    state.round_spent_s = spent_s
    try:
        state.save(out_dir)
    except OSError as err:  # a full disk must not end the sweep over a bookkeeping figure
        log.warning("could not record the time budget spent (%s): a resume may get it again", err)


def _cleared(plan: SweepPlan, state: SweepState) -> SweepState:
    """A fresh start's state once the stale rounds' Ray experiments are deleted: round 0
    under an id of its own."""
    for old in own_experiments(plan.storage, plan.conf.sweep.name, state.round):
        remove_experiment(old)  # a fresh sweep under the same name starts clean
    state.round, state.sweep_id = 0, uuid.uuid4().hex
    state.save(plan.out_dir)
    return state


def _fit(
    plan: SweepPlan,
    data: Any,
    model_data: dict[str, Any],
    tracker: SweepTracker | None,
    state: SweepState,
) -> list[TrialRecord]:
    """Run (or continue) the current round; returns the records of every trial so far."""

    s = plan.conf.sweep
    rules = stopping_rules(plan)
    name = experiment_name(s.name, state.round)
    experiment_dir = plan.storage / name
    study = study_storage(plan.out_dir)
    # plan.continues: a resume with nothing recorded starts afresh, never in a folder it found
    restoring = plan.continues and restorable(experiment_dir)
    if not restoring:
        state.round_settings = round_settings(plan.conf)  # what Ray saves with the experiment
        state.round_spent_s = 0.0
    state.storage = str(plan.storage.resolve())  # a restored round is there too (a moved folder)
    # a restored round runs to the budget it was started with
    budget_s = state.round_budget_s(s.time_budget_s)
    callback = SweepCallback(
        metric=s.metric,
        mode=s.mode,
        default_epochs=plan.conf.train.epochs,
        tracker=tracker,
        stopper=rules[0],
        previous=[TrialRecord(**r) for r in state.records],
        scheduler=None if restoring else rules[1],  # a restored round's: Ray's pickled one
        warm=plan.warm_start,
        budget_s=budget_s,
        budget_spent_s=state.round_spent_s,  # 0 for a round not restored (set above)
        on_budget_spent=lambda spent: _record_spent(state, spent, plan.out_dir),
        train_examples=len(data.train),
    )
    state.phase = "running"
    state.save(plan.out_dir)
    if restoring:
        log.info("resuming %s: ended trials stay, unfinished ones continue from checkpoints", name)
        drop_partial_copies(experiment_dir)  # copies the kill cut short
        tuner = restored_tuner(
            experiment_dir, _trainable(plan, data, model_data, experiment_dir), callback,
            rules[0], study,
        )  # fmt: skip
        if budget_s:  # Ray restores the whole budget: each stop and resume would add another
            left = max(budget_s - state.round_spent_s, 1.0)
            use_time_budget(tuner, left)
            log.info("%s: %.0f s of its %g s time budget left", name, left, budget_s)
    elif s.num_samples <= len(state.records):
        # a round killed before Ray saved it, resumed with no more trials than it has: Ray
        # reads num_samples -1 as "no limit" (and 0 as an error)
        log.info("sweep %s already has %d trials; nothing to add", s.name, len(state.records))
        return [TrialRecord(**r) for r in state.records]
    else:
        remove_experiment(experiment_dir)  # a killed attempt's (a link: the link alone)
        mark_owner(experiment_dir, state.sweep_id, plan.out_dir)
        points = warm_points(plan.warm_start, state.round, state.records)
        # a point the killed attempt took goes back in the queue, unless the round enqueues
        # its warm points itself (a first round: those the attempt left waiting go instead)
        fail_stale_trials(
            study, s.name, requeue_points=points is None, drop_waiting=points is not None
        )
        tuner = new_tuner(
            plan, _trainable(plan, data, model_data, experiment_dir), name=name, study=study,
            callback=callback,
            rules=rules,
            num_samples=s.num_samples - len(state.records),
            points=points,
            round_index=state.round,
        )  # fmt: skip
    try:
        with during_fit(callback.stop):
            results = tuner.fit()
    finally:
        if callback.stop.signum is not None:  # a second Ctrl-C/SIGTERM raises out of fit
            _record_spent(state, callback.spent_s(), plan.out_dir)
    if callback.stop.signum is not None:  # unfinished trials keep their checkpoints to resume
        if tracker is not None:
            tracker.pause_trials(
                r.trial_id for r in callback.records.values() if r.status == "running"
            )
        raise SweepInterrupted(s.name, callback.stop.signum)
    callback.close_unfinished(ended_trials(results), budget_s)
    unreported = [callback.records[trial_id] for trial_id in callback.unreported]
    tell_unreported(study, s.name, _objective_values(plan, unreported))
    fail_stale_trials(study, s.name, requeue_points=True)
    for record in callback.records.values():  # Ray restores the records with their paths as
        record.checkpoint = checkpoint_here(record.checkpoint, plan.storage)  # saved
    return sorted(callback.records.values(), key=lambda r: r.started)


def _objective_values(
    plan: SweepPlan, records: Iterable[TrialRecord]
) -> list[tuple[dict[str, Any], list[float]]]:
    """For the Optuna study, of trials Ray stopped without telling it (the time budget): each
    scored one's parameters and its best epoch's metric (and its trainable parameters, with
    sweep.second_objective). Ray told it of every other ended trial; a pending trial with the
    same parameters must not take their values."""
    return [
        (r.params, [r.best_value, float(r.trainable_params)][: n_objectives(plan.conf)])
        for r in records
        if r.best_value is not None and r.status != "failed"
    ]


def _trainable(plan: SweepPlan, data: Any, model_data: dict[str, Any], experiment_dir: Path) -> Any:
    """The trial function with the tokenized data (shared once; one tokenization per distinct
    tokenizer when the model is searched), the Ray experiment's folder and the resources of a
    trial."""
    from ray import tune

    from automl.search.trial import run_sweep_trial

    conf = plan.conf
    return tune.with_resources(
        tune.with_parameters(
            run_sweep_trial,
            data=data.without_test(),
            # a relative model folder made absolute: Ray runs trials in folders of their own
            base=as_dict(replace(conf, model=anchored(conf.model))),
            model_data=_without_test(model_data) or None,
            models={choice: anchored(m) for choice, m in plan.models.items()} or None,
            experiment=str(experiment_dir.resolve()),
        ),  # fmt: skip
        {"cpu": conf.resources.cpus_per_trial, "gpu": plan.gpus_per_trial},
    )


def _without_test(model_data: dict[str, Any]) -> dict[str, Any]:
    """Each choice's data less its test split; choices that share a tokenization share one
    object, which Ray then stores once."""
    stripped: dict[int, Any] = {}
    return {c: stripped.setdefault(id(d), d.without_test()) for c, d in model_data.items()}


def _finish(
    plan: SweepPlan,
    records: list[TrialRecord],
    data: Any,
    tracker: SweepTracker | None,
    started: float,
    budget_s: float | None,
    model_data: Mapping[str, Any] | None = None,
) -> SweepOutcome:
    conf = plan.conf
    s = conf.sweep
    # the best metric, or the smallest trial near it (sweep.export_rule; search/pareto.py)
    best, choice = export_choice(
        records, s.mode, s.export_rule, s.export_tolerance, exportable=_has_checkpoint
    )
    from automl.search.trial import trial_config

    # the trial's own config: its base model for the export and the card's licence (the model
    # may be searched)
    trial_conf = trial_config(as_dict(conf), best.params) if best is not None else conf
    export_dir = None
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    # checked at the start too; a file put into best/ since (an evaluation's --out, a copy)
    # failed the whole sweep here, with a traceback and no summary
    blocked = not_replaceable(plan.out_dir / "best") if best is not None else None
    base = NO_BASE  # the texts the base model trained on, where it is an earlier export
    if blocked:
        log.error(
            "%s: nothing exported; move it, then run the same command with %s to export",
            blocked, finish_again(len(records)),
        )  # fmt: skip
    elif best is not None and _has_checkpoint(best):
        base = base_trained_texts(trial_conf.model.name_or_path)
        export_dir = _export_best(plan, best, trial_conf, data, len(records), choice, base)
    if export_dir is None and (plan.out_dir / "best").is_dir():  # read as this sweep's model
        log.warning(
            "%s is not this sweep's export (an earlier one, or files put there): this sweep "
            "exported nothing",
            plan.out_dir / "best",
        )
    # only now, with the best trial chosen and exported, is the held-out test split read;
    # tokenized as the exported model's (a searched model): which test texts training holds
    # is judged by its token ids, as `automl-export` judges it again
    picked_model = best.params.get(MODEL_KEY) if best is not None else None
    trial_data = (model_data or {}).get(picked_model, data) if picked_model else data
    test = evaluate_sweep_export(export_dir, plan.out_dir, trial_data, trial_conf, base)
    outcome = _outcome(records, best, budget_s)
    summary = {
        "sweep": s.name,
        "outcome": outcome,  # finished | all_trials_failed | no_trial_scored | time_budget_ran_out
        "metric": s.metric,
        "mode": s.mode,
        "second_objective": s.second_objective,  # what the sampler minimised beside the metric
        "best_value": best.best_value if best else None,
        "test_accuracy": test["accuracy"] if test else None,
        "test_f1": test["macro_f1"] if test else None,
        "test_accuracy_unseen": headline(test).get("test_accuracy_unseen") if test else None,
        "best_trial": best.trial_id if best else None,
        "best_epoch": best.best_epoch if best else None,
        "best_config": best.params if best else None,
        "export_dir": str(export_dir) if export_dir else None,
        **({"export_blocked": blocked} if blocked else {}),
        "num_trials": len(records),
        "statuses": _count(r.status for r in records),
        "trial_epochs": sum(r.epochs_run for r in records),
        "wall_s": round(time.time() - started, 1),
        "label_names": data.label_names,
        "data": data.description,
        "trials": [r.row() for r in records],
        "export_rule": choice,
        # the parent run this sweep logged to: `automl-report --tracking-uri` logs beside it
        "mlflow_run_id": tracker.parent_id if tracker is not None else None,
    }
    mark_pareto(summary["trials"], s.mode)  # metric vs trainable parameters
    summary_path = plan.out_dir / "summary.json"
    write_text_atomic(summary_path, json.dumps(summary, indent=2))
    # redacted as MLflow's copy and the export's are: a tracking URI may carry a password
    write_text_atomic(
        plan.out_dir / "config.json", json.dumps(redact_values(as_dict(conf)), indent=2)
    )
    if not s.keep_checkpoints:  # keep the best one: `automl-export` can rebuild the export from it
        _drop_checkpoints((r.checkpoint for r in records if best is None or r is not best), plan)
    unregistered = (
        _register(tracker, trial_conf, export_dir, data.task, len(records))
        if tracker is not None and export_dir is not None
        else None
    )
    if unregistered:  # the summary and the report say it; the command exits 1 on it
        summary["registration_error"] = unregistered
        write_text_atomic(summary_path, json.dumps(summary, indent=2))
    _write_report(plan.out_dir, tracker)
    if tracker is not None:
        registered = export_dir is not None and not unregistered
        _close_parent_run(tracker, plan, summary, test, registered)
    _print_results(summary, test)
    chance = no_better_than_majority(best.row(), data.val.labels) if best is not None else None
    if chance:
        log.warning("%s", chance)
    return SweepOutcome(summary, records, export_dir)


def _register(
    tracker: SweepTracker, trial_conf: Config, export_dir: Path, task: TaskData | None,
    trials: int,
) -> str | None:  # fmt: skip
    """The export registered in MLflow (tracking/registry.py; `trial_conf`: the exported
    trial's own config, whose `trust_remote_code` loads it, `task`'s splits the run's dataset
    inputs). Returns why it is not, where that failed outside the store (a pipeline that would
    not build, a full temp disk): the export and its test score stand, where failing here
    failed the sweep, and every resume alike. The store's own failures stay one line, and
    resumable (`_store_failure_in_one_line`)."""
    try:
        register_export(tracker, trial_conf, export_dir, task)
    except Exception as err:
        if store_failure(err) is not None:
            raise
        log.debug("the registration's traceback", exc_info=True)  # debug=true shows it
        why = (
            f"the export {export_dir} was not registered in MLflow ({masked_line(err)}); once "
            f"mended, run the same command with {finish_again(trials)} to register it"
        )
        log.error("%s", why)
        return why
    return None


def _close_parent_run(
    tracker: SweepTracker,
    plan: SweepPlan,
    summary: dict[str, Any],
    test: dict[str, Any] | None,
    registered: bool,
) -> None:
    """The sweep's results into its MLflow parent run, then end it."""
    tracker.log_artifact(plan.out_dir / "summary.json")
    if test is not None:
        tracker.log_metrics(headline(test))
        tracker.log_artifact(plan.out_dir / EVALUATION_FILE)
        tracker.log_artifact(plan.out_dir / CONFUSION_FILE)
    tracker.end_sweep(
        "FINISHED" if summary["best_trial"] is not None else "FAILED",
        {f"best_{summary['metric']}": summary["best_value"], "num_trials": summary["num_trials"],
         "trial_epochs": summary["trial_epochs"], "wall_s": summary["wall_s"]},
        # whose test scores the run's test_* metrics are: an extended sweep whose new best was
        # not exported (blocked, no checkpoint) still shows an earlier round's, of another trial
        {"status": summary["outcome"], "best_trial": summary["best_trial"] or "",
         "test_trial": summary["best_trial"] if test is not None else "",
         "registered": str(registered).lower()},
    )  # fmt: skip


def _print_results(summary: dict[str, Any], test: dict[str, Any] | None) -> None:
    """The table and the test score on stderr; one JSON line on stdout."""
    print_table(summary, sys.stderr)
    if test is not None:
        print("\n".join(table_lines(test)), file=sys.stderr)
    print(
        json.dumps({k: v for k, v in summary.items() if k not in ("trials", "label_names")}),
        flush=True,
    )


def _outcome(records: list[TrialRecord], best: TrialRecord | None, budget_s: float | None) -> str:
    """How the sweep ended, for the summary and the parent run; says so when nothing to export,
    and what to change when the time budget ended it before any trial finished an epoch."""
    if best is not None:
        return "finished"
    all_failed = bool(records) and all(r.status == "failed" for r in records)
    outcome = "all_trials_failed" if all_failed else "no_trial_scored"
    cut_by_budget = all(r.status == "stopped_budget" for r in records)  # (or none started)
    if budget_s and cut_by_budget and not any(r.epochs_run for r in records):
        outcome = "time_budget_ran_out"
        log.warning(
            "sweep.time_budget_s=%g ran out before any trial finished an epoch: raise it, or "
            "make an epoch shorter (data.max_examples, a smaller model)", budget_s,
        )  # fmt: skip
    log.warning("sweep ended with no best trial (%s): nothing exported", outcome.replace("_", " "))
    return outcome


def _write_report(out_dir: Path, tracker: SweepTracker | None) -> None:
    """The HTML report (and its plots) beside the summary, and in the sweep's MLflow run.
    A report that fails to draw is a warning: the sweep's results are already saved."""
    from automl.report.page import build_report

    try:
        build_report(out_dir, tracker)  # logs where it went
    except Exception as err:  # never lose a finished sweep to a plot
        log.warning("report: not written (%s: %s)", type(err).__name__, masked_line(err))


def _export_best(
    plan: SweepPlan,
    best: TrialRecord,
    trial_conf: Config,
    data: Any,
    n: int,
    choice: dict[str, Any],
    base: BaseTexts,
) -> Path:
    """The best trial's checkpoint as `best/` (`trial_conf`: the config it trained with), with
    which texts it trained on, its base model's (`base`) too: a later sweep fine-tuning it
    again tells its test texts apart by them."""
    from automl.export.model_dir import export_checkpoint

    conf = plan.conf
    log.info("exporting trial %s (best %s %.4f)", best.trial_id, conf.sweep.metric, best.best_value)
    provenance = sweep_provenance(
        conf, best.trial_id, best.best_value, best.params, n, data.description, data.fingerprint,
        plan.commit,
    )  # fmt: skip
    provenance["search_space"] = str(plan.space.path)
    # where the trial trained (as it reported; a GPU share may have found no CUDA): automl-
    # reproduce says when it re-trains elsewhere
    provenance["trained_on"] = best.device or plan.trial_device
    provenance["best_scores"] = best_epoch_scores(best.row())  # every metric, for the card
    if choice.get("outside_rule"):  # the trials the rule named had lost their checkpoints
        provenance["export_rule"]["outside_rule"] = True
    task = data.task

    def trained_texts(folder: Path) -> None:
        if task is not None:
            write_trained_texts(folder, task.train.texts, base)

    return export_checkpoint(
        trial_conf, Path(best.checkpoint), plan.out_dir / "best", label_names=data.label_names,
        provenance=provenance, records=trained_texts,
    )  # fmt: skip


def _has_checkpoint(record: TrialRecord) -> bool:
    return bool(record.checkpoint) and Path(record.checkpoint).is_dir()


def _drop_checkpoints(checkpoints: Any, plan: SweepPlan) -> None:
    """Disk stays bounded: after the export, other trials' checkpoints go (unless kept); only
    this sweep's (a copied sweep's records may still name the original's): under its Ray
    folder, or in an experiment folder marked with its output folder (an earlier round's, in
    the `paths.storage` it had then)."""
    for checkpoint in checkpoints:
        folder = Path(checkpoint) if checkpoint else None
        if folder is None or not folder.is_dir():
            continue
        if _under(folder, plan.storage) or marked_for(folder.parent.parent, plan.out_dir):
            shutil.rmtree(folder, ignore_errors=True)


def _under(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _records_here(storage: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Recorded trials with their checkpoints where this sweep's Ray folder is now."""
    return [
        {**r, "checkpoint": checkpoint_here(r.get("checkpoint") or "", storage)} for r in records
    ]


def _sweep_params(plan: SweepPlan) -> dict[str, Any]:
    c = plan.conf
    return {
        "sampler": c.sampler.name,
        "sampler_seed": c.sampler.seed,
        "pruner": c.pruner.name,
        "search_space": plan.space.path.name,
        "num_samples": c.sweep.num_samples,
        "max_concurrent": c.sweep.max_concurrent,
        "metric": c.sweep.metric,
        "second_objective": c.sweep.second_objective,
        "model": "|".join(plan.models) if plan.models else display_name(c.model),
        "data": c.data.source,
        "cpus_per_trial": c.resources.cpus_per_trial,
        "gpus_per_trial": plan.gpus_per_trial,
    }


def _sweep_tags(plan: SweepPlan) -> dict[str, str]:
    versions = package_versions()
    return {"git_commit": plan.commit, **{f"version.{k}": v for k, v in versions.items()}}
