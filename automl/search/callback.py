"""Driver-side Ray Tune callback: trial records, live progress, statuses, and MLflow writes.

Every trial ends with a status saying why: `completed`, `pruned_overfit` (the overfit stopper),
`stopped_early` (ASHA stopped it before its last epoch), `stopped_budget` (the sweep's time budget
ran out while it ran; its best epoch still counts), `stopped` (Ray ended the round while it ran,
with no time budget), `diverged` (a non-finite loss after at least one scored epoch: that best
epoch still counts, as a stopped trial's does), or `failed`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import TrialScheduler

from automl.console import counted
from automl.provenance import masked_line, redact
from automl.search.stop import FitStop, forward_to_ray
from automl.search.stopping import OverfitStopper, catch_up_asha
from automl.search.trial import overrides_from_trial
from automl.search.warm_start import WarmStart
from automl.tracking.runs import SweepTracker
from automl.train import checkpoint
from automl.train.loop import improves

log = logging.getLogger("automl.sweep")

# every status a trial ends with (the module's docstring says when); the report draws each
STATUSES = (
    "completed", "pruned_overfit", "stopped_early", "stopped_budget", "stopped", "diverged",
    "failed",
)  # fmt: skip

EPOCH_KEYS = (
    "epoch",
    "train_loss",
    "val_loss",
    "val_accuracy",
    "val_f1",
    "val_balanced_accuracy",
    "train_samples_per_s",
)


@dataclass
class TrialRecord:
    trial_id: str
    params: dict[str, Any]
    status: str = "running"
    reason: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = 0
    started: float = field(default_factory=time.time)
    last_seen: float = 0.0  # its last result; a resumed sweep restarts it from there ...
    paused_s: float = 0.0  # ... so the time the sweep was stopped is not in its wall time
    wall_s: float = 0.0
    node_ip: str = ""
    node_id: str = ""  # Ray's node id: tells apart nodes that share an IP
    gpu_ids: str = ""
    device: str = ""  # where it trained: "cuda", or "cpu" (also when a GPU share found no CUDA)
    trainable_params: int = 0
    checkpoint: str = ""  # folder of its latest checkpoint (which holds its best weights)
    retries: int = 0  # times it failed and was restarted from its checkpoint
    origin: str = "sampler"  # or "warm_start:<sweep>/<trial_id>", "first_trials[i]" (warm_start.py)

    @property
    def epochs_run(self) -> int:
        return len(self.history)

    def row(self) -> dict[str, Any]:
        """One row of summary.json."""
        out = asdict(self)
        out.pop("started")
        out.pop("last_seen")
        out["epochs_run"] = self.epochs_run
        return out


@dataclass
class RayTrialEnd:
    """What Ray's results hold of a trial when its experiment ends."""

    trial_id: str
    config: dict[str, Any]
    checkpoint: str = ""  # its latest checkpoint folder
    error: str = ""  # the last line of its error
    metrics: dict[str, Any] = field(default_factory=dict)  # its last result


BUDGET_TOLD_EVERY_S = 30.0  # a killed driver's resume may get this much of the budget again


class SweepCallback(Callback):
    """Keeps a record per trial and mirrors it to MLflow (the driver is the only writer)."""

    def __init__(
        self,
        *,
        metric: str,
        mode: str,
        default_epochs: int,
        tracker: SweepTracker | None,
        stopper: OverfitStopper | None,
        previous: list[TrialRecord] | None = None,
        scheduler: TrialScheduler | None = None,
        warm: WarmStart | None = None,
        budget_s: float | None = None,
        budget_spent_s: float = 0.0,
        on_budget_spent: Callable[[float], None] | None = None,
        train_examples: int = 0,
    ) -> None:
        self.metric, self.mode = metric, mode
        self.default_epochs = default_epochs
        self.tracker = tracker
        self.stopper = stopper
        # the round's ASHA (a restored round's: use_driver_objects)
        self.scheduler: TrialScheduler | None = scheduler
        self.warm = warm  # labels the trials that run a warm-start configuration
        # trials of earlier rounds of the same sweep (an extended sweep) come first
        self.records: dict[str, TrialRecord] = {r.trial_id: r for r in previous or []}
        self._previous_ids = set(self.records)  # earlier rounds' trials
        # an extension is one study: its ASHA judges a trial against the earlier rounds' too
        # (from empty rungs, the first trial at each rung set its own cut-off, however weak)
        catch_up_asha(scheduler, {r.trial_id: r.history for r in self.records.values()})
        if warm is not None:
            warm.claim(_ran_origins(self.records.values()))
        self._track_missing(self.records.values())
        self.stop = FitStop()  # the signal that stopped the sweep, if one did (search/stop.py)
        self._restored: set[str] = set()  # trials a resumed sweep goes on with (set_state)
        # trials Ray stopped without telling anyone (the time budget): closed here, and the
        # Optuna study must be told their scores (close_unfinished)
        self.unreported: list[str] = []
        # the round's time budget: half of it gone with no epoch finished is worth a warning
        self.budget_s, self.train_examples = budget_s, train_examples
        self._budget_spent_s = budget_spent_s  # by earlier sittings of a resumed round
        # told the round's spent seconds now and then, so a SIGKILL loses little of the count
        self._on_budget_spent, self._budget_told = on_budget_spent, time.monotonic()
        self._fit_started = time.monotonic()
        self._epochs_this_fit = 0
        self._watching_budget = True  # until the warning is due (or an epoch makes it moot)

    def setup(
        self, stop: Any = None, num_samples: Any = None, total_num_samples: Any = None, **info: Any
    ) -> None:
        """Ray has just put in its Ctrl-C handler: SIGTERM is sent the same way from here on."""
        forward_to_ray(self.stop)
        self._fit_started = time.monotonic()

    def spent_s(self) -> float:
        """Seconds of the round's time budget gone, earlier sittings included."""
        return self._budget_spent_s + time.monotonic() - self._fit_started

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        """Half the time budget gone and no trial has finished an epoch: say so while there is
        still time to stop the sweep and change it (the end would only say it ran out). And
        tell the sweep the budget spent, every BUDGET_TOLD_EVERY_S, with or without a budget
        (its save records the sitting's wall time too, which a SIGKILL would lose)."""
        spent = self.spent_s()
        now = time.monotonic()
        if self._on_budget_spent is not None and now - self._budget_told >= BUDGET_TOLD_EVERY_S:
            self._budget_told = now
            self._on_budget_spent(spent)
        if not self.budget_s or not self._watching_budget or spent < self.budget_s / 2:
            return
        self._watching_budget = False
        if self._epochs_this_fit == 0:
            log.warning(
                "half of sweep.time_budget_s=%g has gone and no trial has finished an epoch of "
                "%s training examples: the budget may run out before any does (raise it, or "
                "make an epoch shorter: data.max_examples, a smaller model)",
                self.budget_s, f"{self.train_examples:,}",
            )  # fmt: skip

    # Ray calls these in the driver ------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        if record.status != "running":  # its end came after Ray's last save: it ends at once
            return
        _catch_up(record, _latest_folder(trial))  # records saved before its latest epochs
        if self.stopper is not None:  # saved with them, or empty (a pruner added on resume)
            self.stopper.catch_up(record.trial_id, record.history)
        if record.trial_id in self._restored and self.tracker is not None:
            self.tracker.reopen_trial(record.trial_id)  # KILLED while the sweep was stopped
        self._count_pause(record)
        log.info("trial %s started: %s", trial.trial_id, _fmt_params(record.params))

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        record = self._record(trial)
        record.last_seen = time.time()
        self._epochs_this_fit += 1
        epoch = int(result.get("epoch", len(record.history) + 1))
        record.history = [h for h in record.history if h["epoch"] < epoch]  # a retry replays
        record.history.append({k: float(result[k]) for k in EPOCH_KEYS if k in result})
        # the trial's own best epoch (whose weights it keeps and exports; a checkpoint written
        # before 2026-12-07 kept the earlier of two equal epochs), else judged over the epochs
        # kept: a replayed epoch's first run may have been the best
        kept = next((h for h in record.history if h["epoch"] == result.get("best_epoch")), None)
        if kept is not None and kept.get(self.metric) is not None:
            record.best_value, record.best_epoch = kept[self.metric], int(kept["epoch"])
        else:
            record.best_value, record.best_epoch = self._best_of(record.history)
        record.node_ip = str(result.get("node_ip", record.node_ip))
        record.node_id = str(result.get("node_id", record.node_id))
        record.gpu_ids = str(result.get("gpu_ids", record.gpu_ids))
        fell_back = result.get("device") == "cpu" and result.get("requested_device") != "cpu"
        if not record.device and fell_back and record.gpu_ids != "none":
            log.warning(
                "trial %s was given GPU %s on node %s but trains on the CPU: torch sees no "
                "CUDA device there (driver or CUDA build?)",
                trial.trial_id, record.gpu_ids, result.get("node_ip", "?"),
            )  # fmt: skip
        record.device = str(result.get("device", record.device))
        record.trainable_params = int(result.get("trainable_params", record.trainable_params))
        value = float(result[self.metric])
        if self.tracker is not None:
            self.tracker.log_epoch(trial.trial_id, result)
        log.info(
            "trial %s epoch %d/%d: %s %.4f (best %.4f)  train_loss %.4f  val_loss %.4f",
            trial.trial_id, epoch, self._planned_epochs(record), self.metric, value,
            record.best_value if record.best_value is not None else float("nan"),
            result.get("train_loss", float("nan")), result.get("val_loss", float("nan")),
        )  # fmt: skip

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        if record.status != "running":  # ended before a kill; Ray restarted it to close it
            return
        record.checkpoint = _checkpoint_path(trial)
        # it had ended before a kill lost its record: its checkpoint says how
        ended = checkpoint.read_outcome(Path(record.checkpoint)) if record.checkpoint else None
        record.status, record.reason = self._end_status(record, ended)
        self._finish(record)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        record.retries += 1
        log.warning(
            "trial %s failed (%s); retry %d from its last checkpoint",
            trial.trial_id, _error_line(trial), record.retries,
        )  # fmt: skip
        if self.tracker is not None:
            self.tracker.tag_trial(trial.trial_id, {"retries": str(record.retries)})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        if record.status != "running":  # ended before a kill; Ray restarted it to close it
            return
        record.checkpoint = _checkpoint_path(trial)
        record.status, record.reason = _error_status(record, _error_line(trial))
        self._finish(record)

    def close_unfinished(self, ended: list[RayTrialEnd], budget_s: float | None) -> None:
        """Every trial gets a final status and its MLflow run ends. Two kinds are left open
        when the experiment ends: trials Ray never finished (the time budget ran out; Ray stops
        them without a callback), and trials that ended before a kill whose records were saved
        too early (Ray writes its trials' states first and this callback's state after them:
        a kill between the two leaves records older than Ray's trials, or none). Both are read
        back from Ray's results and their checkpoints."""
        for end in ended:
            record = self.records.get(end.trial_id)
            if record is None and not _ran(end):
                continue  # pending when the experiment ended: never started, nothing to record
            record = record or self._adopt(end)
            if record.status != "running":
                continue
            folder = Path(end.checkpoint) if end.checkpoint else None
            outcome, ended_before = None, False  # the driver slims a checkpoint when its trial
            if folder is not None and folder.is_dir():  # ends, and only then
                _catch_up(record, folder)
                outcome, ended_before = checkpoint.read_outcome(folder), checkpoint.is_slim(folder)
                record.checkpoint = str(folder)
            if end.error:
                record.status, record.reason = _error_status(record, end.error)
            elif outcome is not None or ended_before:  # (slimmed without an outcome: older)
                record.status, record.reason = self._end_status(record, outcome)
            else:
                continue  # Ray stopped it unfinished (the time budget): below
            self._finish(record, ran_s=float(end.metrics.get("time_total_s", 0.0)))
        for record in self.records.values():
            if record.status != "running":
                continue
            self.unreported.append(record.trial_id)
            if record.epochs_run >= self._planned_epochs(record):  # its last epoch was in
                record.status, record.reason = "completed", ""
            elif budget_s:
                record.status = "stopped_budget"
                record.reason = (  # ("at epoch 3" read as during it, for a trial in its 4th)
                    f"time budget {budget_s:g} s ran out after "
                    f"{counted(record.epochs_run, 'epoch')}"
                )
            else:
                record.status = "stopped"
                record.reason = f"the sweep ended after {counted(record.epochs_run, 'epoch')}"
            self._finish(record)

    # Ray saves this with the experiment, so a resumed sweep keeps the records of ended trials
    # and the overfit stopper's per-trial histories (its patience goes on where it was)
    def get_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"records": [asdict(r) for r in self.records.values()]}
        if self.stopper is not None:
            state["stopper"] = self.stopper.get_state()
        return state

    def set_state(self, state: dict[str, Any]) -> None:
        self.records.update({r["trial_id"]: TrialRecord(**r) for r in state.get("records", [])})
        self._restored = {r.trial_id for r in self.records.values() if r.status == "running"}
        if self.warm is not None:  # a resumed round: the warm points its trials already ran
            self.warm.claim(_ran_origins(self.records.values()))
        earlier_rounds = self._previous_ids
        if any(r.history for r in self.records.values() if r.trial_id not in earlier_rounds):
            self._watching_budget = False  # this round's epochs before the stop count too
        if self.stopper is not None and "stopper" in state:
            self.stopper.set_state(state["stopper"])
        # Ray saves no scheduler: its rungs were empty (the earlier rounds' trials too, as a
        # new round's ASHA holds them: __init__)
        catch_up_asha(self.scheduler, {r.trial_id: r.history for r in self.records.values()})
        try:  # Ray restores inside a try that, on any error, drops the restore and starts over
            self._track_missing(self.records.values())
        except Exception as err:  # a store that stumbles: the sweep goes on, its records kept
            log.warning(  # an HTTP store's error quotes its URL, password and all
                "MLflow: the sweep's earlier trials were not added to its run (%s)",
                masked_line(err),
            )

    # helpers ----------------------------------------------------------------------------------
    def _record(self, trial: Any) -> TrialRecord:
        return self.records.get(trial.trial_id) or self._new_record(
            trial.trial_id, dict(trial.config), trial.last_result or {}
        )

    def _adopt(self, end: RayTrialEnd) -> TrialRecord:
        """A trial Ray holds that the restored records lost (see `close_unfinished`)."""
        log.info("trial %s: its record was lost in a kill; read back from Ray", end.trial_id)
        record = self._new_record(end.trial_id, end.config, end.metrics)
        record.node_ip = str(end.metrics.get("node_ip", ""))
        record.node_id = str(end.metrics.get("node_id", ""))
        record.gpu_ids = str(end.metrics.get("gpu_ids", ""))
        record.device = str(end.metrics.get("device", ""))
        record.trainable_params = int(end.metrics.get("trainable_params", 0))
        return record

    def _new_record(
        self, trial_id: str, config: dict[str, Any], last_result: dict[str, Any]
    ) -> TrialRecord:
        params = overrides_from_trial(config)
        record = self.records[trial_id] = TrialRecord(trial_id, params)
        # a trial Ray already ran (restored with records lost): the time it ran before counts
        record.started -= float(last_result.get("time_total_s", 0.0))
        if self.warm is not None:
            record.origin = self.warm.origin_of(params)
        if self.tracker is not None:
            self.tracker.child(trial_id, params, {"origin": record.origin})
        return record

    def _best_of(self, history: list[dict[str, float]]) -> tuple[float | None, int]:
        """The best value and epoch over `history` (None, 0 when it has none): a trial that
        resumes from a checkpoint older than its record keeps that checkpoint's best weights,
        not those of the epochs it runs again."""
        best: dict[str, float] | None = None
        for h in history:
            if improves(h, best, self.metric, self.mode):
                best = h
        return (best[self.metric], int(best["epoch"])) if best is not None else (None, 0)

    def _track_missing(self, records: Iterable[TrialRecord]) -> None:
        if self.tracker is not None:
            track_missing(self.tracker, records, self.metric)

    def _end_status(self, record: TrialRecord, outcome: dict[str, str] | None) -> tuple[str, str]:
        """(status, reason) of a trial that ended without error: as its checkpoint recorded,
        or judged from its epochs and the overfit stopper."""
        if outcome is not None:
            return outcome["status"], outcome["reason"]
        overfit = self.stopper.reason(record.trial_id) if self.stopper else None
        return final_status(record.epochs_run, self._planned_epochs(record), overfit)

    def _planned_epochs(self, record: TrialRecord) -> int:
        return int(record.params.get("train.epochs", self.default_epochs))

    def _count_pause(self, record: TrialRecord) -> None:
        """A trial a resumed sweep goes on with: the time since its last result (or its start)
        was the sweep's stop, not its own (once, at its first start or end since the resume)."""
        if record.trial_id in self._restored:
            self._restored.discard(record.trial_id)
            record.paused_s += time.time() - (record.last_seen or record.started)
            record.last_seen = time.time()

    def _finish(self, record: TrialRecord, ran_s: float = 0.0) -> None:
        """End the trial's record and MLflow run. `ran_s`: its training time by Ray's count,
        for a record whose last epochs came from its checkpoint (the clock missed them)."""
        self._count_pause(record)  # ended without starting again (the time budget was spent)
        if record.checkpoint and Path(record.checkpoint).is_dir():
            checkpoint.slim(
                Path(record.checkpoint), {"status": record.status, "reason": record.reason}
            )
        record.wall_s = round(max(time.time() - record.started - record.paused_s, ran_s), 2)
        log.info(
            "trial %s %s: best %s %s at epoch %d, %s, %.1f s%s",
            record.trial_id, record.status, self.metric,
            f"{record.best_value:.4f}" if record.best_value is not None else "-",
            record.best_epoch, counted(record.epochs_run, "epoch"), record.wall_s,
            f" ({record.reason})" if record.reason else "",
        )  # fmt: skip
        if self.tracker is not None:
            self._log_end(record)

    def _log_end(self, record: TrialRecord) -> None:
        assert self.tracker is not None
        log_trial_end(self.tracker, record, self.metric)


def track_missing(tracker: SweepTracker, records: Iterable[TrialRecord], metric: str) -> None:
    """A sweep resumed or extended under a new MLflow run (it ran untracked so far, or its run
    was deleted): the trials it already has get their child runs there too, with their epochs
    and ends (their later results were dropped, the parent showed none). Also for a finished
    sweep resumed to export again, which runs no callback."""
    for record in records:
        if tracker.has_child(record.trial_id):
            continue
        tracker.child(record.trial_id, record.params, {"origin": record.origin})
        for epoch in record.history:
            tracker.log_epoch(record.trial_id, epoch)
        if record.status != "running":
            log_trial_end(tracker, record, metric)


def log_trial_end(tracker: SweepTracker, record: TrialRecord, metric: str) -> None:
    """A trial's end in its child run: its best score, epochs, time, size and where it ran."""
    summary = {
        f"best_{metric}": record.best_value,
        "best_epoch": record.best_epoch,
        "epochs_run": record.epochs_run,
        "wall_s": record.wall_s,
        "trainable_params": record.trainable_params,
    }
    tags = {
        "node_ip": record.node_ip, "node_id": record.node_id, "gpu_ids": record.gpu_ids,
        "device": record.device,
    }  # fmt: skip
    if record.reason:
        tags["status_reason"] = record.reason
    tracker.end_trial(record.trial_id, record.status, summary, tags)


def final_status(epochs_run: int, planned: int, overfit_reason: str | None) -> tuple[str, str]:
    """(status, reason) of a trial that ended without error. Pruning means it saved epochs: a
    trial that ran all its planned epochs is `completed`, even if the overfit rule fired at the
    last one (a stopper's verdict on the final epoch stops nothing)."""
    if epochs_run >= planned:
        return "completed", ""
    if overfit_reason:
        return "pruned_overfit", overfit_reason
    return "stopped_early", f"stopped after {epochs_run} of {planned} epochs"


def _ran(end: RayTrialEnd) -> bool:
    """Whether Ray ever started the trial (a pending one has a trial id but nothing else)."""
    return bool(end.checkpoint or end.error or end.metrics.get("training_iteration"))


def _latest_folder(trial: Any) -> Path | None:
    latest = getattr(trial, "checkpoint", None)
    return Path(latest.path) if latest is not None else None


def _catch_up(record: TrialRecord, folder: Path | None) -> None:
    """Take the epochs a trial's checkpoint holds that its record lacks (records restored from
    a save older than the checkpoint, or rebuilt after a kill lost them)."""
    progress = checkpoint.read_progress(folder) if folder is not None and folder.is_dir() else None
    if progress is None or len(progress.history) <= record.epochs_run:
        return
    record.history = [{k: float(h[k]) for k in EPOCH_KEYS if k in h} for h in progress.history]
    record.best_value, record.best_epoch = progress.best_value, progress.best_epoch


def _checkpoint_path(trial: Any) -> str:
    """The folder of the trial's latest checkpoint ("" if none)."""
    folder = _latest_folder(trial)
    return str(folder) if folder is not None and folder.is_dir() else ""


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
        for k, v in params.items()
    )


def _error_status(record: TrialRecord, error: str) -> tuple[str, str]:
    """(status, reason) of a trial that ended in an error: `diverged` where a non-finite loss
    ended it after a scored epoch, whose weights its last checkpoint holds (a learning rate at
    the edge of its range may peak, then diverge: that peak was dropped from the sweep, never
    exported), else `failed`."""
    scored = record.best_value is not None and record.best_epoch > 0
    return ("diverged" if scored and "TrialDiverged" in error else "failed"), error


def _error_line(trial: Any) -> str:
    """The last line of the trial's error (the exception), for statuses and MLflow tags."""
    path = getattr(trial, "error_file", None)
    text = ""
    if path and Path(path).is_file():
        text = Path(path).read_text(errors="replace")
    return error_line(text or str(getattr(trial, "error_msg", "") or ""))


def _ran_origins(records: Iterable[TrialRecord]) -> list[str]:
    """The warm points trials have taken: all but those a round's end cut before their first
    epoch, which are enqueued again (search/study.py) for the trial that runs them (one that
    failed before its first epoch keeps its point: the study was told, nothing requeues it)."""
    cut = ("stopped_budget", "stopped")
    return [r.origin for r in records if r.history or r.status not in cut]


def error_line(text: str, default: str = "error") -> str:
    """An error's last line, as summary.json, sweep_state.json and MLflow keep it: a URI it
    quotes masked, cut to 500 characters."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return redact(lines[-1])[:500] if lines else default
