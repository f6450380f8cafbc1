"""`automl-sweep`: validate -> tokenize once -> Ray Tune + Optuna -> summary -> export -> MLflow.

automl-sweep experiment=default                 # the quick sweep on MiniLM + chatterbot topics
automl-sweep experiment=smoke                   # tiny model, a few seconds per trial
automl-sweep sampler=random pruner=none sweep.num_samples=20 search_space=default
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from automl.config.resolve import as_dict
from automl.config.schema import Config
from automl.data.prepare import prepare_data
from automl.provenance import git_commit, package_versions, sweep_provenance
from automl.search.callback import SweepCallback, TrialRecord
from automl.search.plan import SweepPlan, init_ray, model_name, plan_sweep
from automl.search.samplers import DefineByRun, build_sampler
from automl.search.state import STATE_FILE, SweepState, experiment_name
from automl.search.study import STUDY_FILE, fail_stale_trials, study_storage
from automl.search.summary import _count, print_table
from automl.tracking.registry import register_export
from automl.tracking.runs import SweepTracker

log = logging.getLogger("automl.sweep")


@dataclass
class SweepOutcome:
    summary: dict[str, Any]
    records: list[TrialRecord] = field(default_factory=list)
    export_dir: Path | None = None


def run_sweep(conf: Config) -> SweepOutcome:
    """The whole sweep, as a straight line of named steps."""
    started = time.time()
    plan = plan_sweep(conf)
    log.info("%s", plan.describe())
    if conf.sweep.dry_run:
        print(json.dumps({"dry_run": True, "plan": plan.describe().splitlines()}), flush=True)
        return SweepOutcome({"dry_run": True})
    data = prepare_data(conf)

    import ray

    started_ray = init_ray(conf, plan)
    tracker = None
    if plan.tracking_uri:
        tracker = SweepTracker(
            plan.tracking_uri, conf.tracking.experiment or conf.sweep.name, conf.sweep.name
        )
        tracker.start_sweep(_sweep_params(plan), _sweep_tags(plan), resume=conf.sweep.resume)
        tracker.log_artifact_dict(as_dict(conf), "config.json")
        tracker.log_artifact(plan.space.path, "search_space")
    status = "FAILED"
    try:
        state = _starting_state(plan)
        if state.phase in ("new", "running"):
            records = _fit(plan, data, tracker, state)
            state.phase, state.records = "exporting", [asdict(r) for r in records]
            state.save(plan.out_dir)
        else:  # killed during the export, or nothing to add: finish again (idempotent)
            records = [TrialRecord(**r) for r in state.records]
        outcome = _finish(plan, records, data, tracker, started)
        state.phase = "finished"
        state.save(plan.out_dir)
        status = "FINISHED"
        return outcome
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        if tracker is not None and status != "FINISHED":
            tracker.end_sweep(status, {}, {"status": status.lower()})
        if started_ray:
            ray.shutdown()


def _starting_state(plan: SweepPlan) -> SweepState:
    """Fresh, resumed (same round), or extended (a new round on the same Optuna study)."""
    s = plan.conf.sweep
    if not s.resume:
        for stale in (plan.out_dir / STATE_FILE, plan.out_dir / STUDY_FILE):
            stale.unlink(missing_ok=True)
        for old in plan.storage.glob(f"{s.name}*"):
            if old.is_dir() and (old.name == s.name or old.name.startswith(f"{s.name}-r")):
                shutil.rmtree(old)  # a fresh sweep under the same name starts clean
        return SweepState()
    state = SweepState.load(plan.out_dir)
    if state.phase == "finished" and s.num_samples > len(state.records):
        state.round += 1
        state.phase = "running"
        log.info("extending sweep %s to %d trials (round %d)", s.name, s.num_samples, state.round)
    elif state.phase == "finished":
        log.info("sweep %s already has %d trials; exporting again", s.name, len(state.records))
    return state


def _fit(
    plan: SweepPlan, data: Any, tracker: SweepTracker | None, state: SweepState
) -> list[TrialRecord]:
    """Run (or continue) the current round; returns the records of every trial so far."""
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from automl.search.stopping import OverfitRule, build_stopping
    from automl.search.trial import run_sweep_trial

    conf = plan.conf
    s, pr = conf.sweep, conf.pruner
    rule = OverfitRule(
        metric=s.metric, mode=s.mode, grace_period=pr.grace_period, patience=pr.patience,
        min_delta=pr.min_delta, max_gap=pr.max_gap,
    )  # fmt: skip
    stopper, scheduler = build_stopping(
        pr.name, rule, max_t=plan.max_epochs, grace_period=pr.asha_grace_period,
        reduction_factor=pr.asha_reduction_factor, asha_metric=f"best_{s.metric}",
    )  # fmt: skip
    callback = SweepCallback(
        metric=s.metric,
        mode=s.mode,
        default_epochs=conf.train.epochs,
        tracker=tracker,
        stopper=stopper,
        previous=[TrialRecord(**r) for r in state.records],
    )
    trainable = tune.with_resources(
        tune.with_parameters(run_sweep_trial, data=data, base=as_dict(conf)),
        {"cpu": conf.resources.cpus_per_trial, "gpu": plan.gpus_per_trial},
    )
    name = experiment_name(s.name, state.round)
    experiment_dir = plan.storage / name
    storage = study_storage(plan.out_dir)
    state.phase = "running"
    state.save(plan.out_dir)
    if s.resume and tune.Tuner.can_restore(str(experiment_dir)):
        log.info("resuming %s: ended trials stay, unfinished ones continue from checkpoints", name)
        tuner = tune.Tuner.restore(
            str(experiment_dir), trainable, resume_unfinished=True, resume_errored=True
        )
        # Ray re-reads the callback's records from its experiment state into these fresh objects
        assert tuner._local_tuner is not None  # a local (not Ray Client) run
        run_config = tuner._local_tuner.get_run_config()  # no public setter
        run_config.callbacks, run_config.stop = [callback], stopper
    else:
        shutil.rmtree(experiment_dir, ignore_errors=True)
        fail_stale_trials(storage, s.name)
        searcher = OptunaSearch(
            space=DefineByRun(plan.space),
            metric=f"best_{s.metric}",  # a trial counts by its best epoch, not its last
            mode=s.mode,
            sampler=build_sampler(conf.sampler),
            study_name=s.name,
            storage=storage,
        )
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, max_concurrent=s.max_concurrent),
                scheduler=scheduler,
                num_samples=s.num_samples - len(state.records),
                time_budget_s=s.time_budget_s,
                reuse_actors=s.reuse_actors,
            ),
            run_config=tune.RunConfig(
                name=name,
                storage_path=str(plan.storage),
                stop=stopper,
                callbacks=[callback],
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                failure_config=tune.FailureConfig(max_failures=s.max_failures),
                verbose=0,
            ),
        )
    tuner.fit()
    fail_stale_trials(storage, s.name)
    return sorted(callback.records.values(), key=lambda r: r.started)


def _finish(
    plan: SweepPlan,
    records: list[TrialRecord],
    data: Any,
    tracker: SweepTracker | None,
    started: float,
) -> SweepOutcome:
    conf = plan.conf
    s = conf.sweep
    scored = [r for r in records if r.best_value is not None and r.status != "failed"]
    best = None
    if scored:
        pick = max if s.mode == "max" else min
        best = pick(scored, key=lambda r: r.best_value)  # type: ignore[arg-type, return-value]
    export_dir = None
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    if best is not None and best.checkpoint and Path(best.checkpoint).is_dir():
        export_dir = _export_best(plan, best, Path(best.checkpoint), data, len(records))
    summary = {
        "sweep": s.name,
        "metric": s.metric,
        "mode": s.mode,
        "best_value": best.best_value if best else None,
        "best_trial": best.trial_id if best else None,
        "best_epoch": best.best_epoch if best else None,
        "best_config": best.params if best else None,
        "export_dir": str(export_dir) if export_dir else None,
        "num_trials": len(records),
        "statuses": _count(r.status for r in records),
        "trial_epochs": sum(r.epochs_run for r in records),
        "wall_s": round(time.time() - started, 1),
        "label_names": data.label_names,
        "data": data.description,
        "trials": [r.row() for r in records],
    }
    summary_path = plan.out_dir / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2))
    (plan.out_dir / "config.json").write_text(json.dumps(as_dict(conf), indent=2))
    if not s.keep_checkpoints:  # keep the best one: `automl-export` can rebuild the export from it
        _drop_checkpoints(r.checkpoint for r in records if best is None or r is not best)
    _write_report(plan.out_dir, tracker)
    if tracker is not None:
        tracker.log_artifact(summary_path)
        if export_dir is not None:
            register_export(tracker, conf, export_dir)
        tracker.end_sweep(
            "FINISHED",
            {f"best_{s.metric}": summary["best_value"], "num_trials": len(records),
             "trial_epochs": summary["trial_epochs"], "wall_s": summary["wall_s"]},
            {"status": "finished", "best_trial": summary["best_trial"] or ""},
        )  # fmt: skip
    print_table(summary, sys.stderr)
    print(
        json.dumps({k: v for k, v in summary.items() if k not in ("trials", "label_names")}),
        flush=True,
    )
    return SweepOutcome(summary, records, export_dir)


def _write_report(out_dir: Path, tracker: SweepTracker | None) -> None:
    """The HTML report (and its plots) beside the summary, and in the sweep's MLflow run.
    A report that fails to draw is a warning: the sweep's results are already saved."""
    from automl.report.page import build_report

    try:
        build_report(out_dir, tracker)  # logs where it went
    except Exception as err:  # never lose a finished sweep to a plot
        log.warning("report: not written (%s: %s)", type(err).__name__, err)


def _export_best(plan: SweepPlan, best: TrialRecord, checkpoint: Path, data: Any, n: int) -> Path:
    from automl.export.model_dir import export_checkpoint
    from automl.search.trial import trial_config

    conf = plan.conf
    log.info("exporting trial %s (best %s %.4f)", best.trial_id, conf.sweep.metric, best.best_value)
    trial_conf = trial_config(as_dict(conf), best.params)
    provenance = sweep_provenance(
        conf, best.trial_id, best.best_value, best.params, n, data.description
    )
    provenance["search_space"] = str(plan.space.path)
    return export_checkpoint(
        trial_conf, checkpoint, plan.out_dir / "best", label_names=data.label_names,
        provenance=provenance,
    )  # fmt: skip


def _drop_checkpoints(checkpoints: Any) -> None:
    """Disk stays bounded: after the export, other trials' checkpoints go (unless kept)."""
    for checkpoint in checkpoints:
        if checkpoint and Path(checkpoint).is_dir():
            shutil.rmtree(checkpoint, ignore_errors=True)


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
        "model": model_name(c),
        "data": c.data.source,
        "cpus_per_trial": c.resources.cpus_per_trial,
        "gpus_per_trial": plan.gpus_per_trial,
    }


def _sweep_tags(plan: SweepPlan) -> dict[str, str]:
    versions = package_versions()
    return {"git_commit": git_commit(), **{f"version.{k}": v for k, v in versions.items()}}
