"""Driver-side Ray Tune callback: trial records, live progress, statuses, and MLflow writes.

Every trial ends with a status saying why: `completed`, `pruned_overfit` (the overfit stopper),
`stopped_early` (ASHA stopped it before its last epoch), `stopped_budget` (the sweep's time budget
ran out while it ran; its best epoch still counts), or `failed`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ray.tune import Callback

from automl.search.stop import FitStop, forward_to_ray
from automl.search.stopping import OverfitStopper
from automl.search.trial import overrides_from_trial
from automl.tracking.runs import SweepTracker
from automl.train import checkpoint
from automl.train.loop import is_better

log = logging.getLogger("automl.sweep")

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
        origin_of: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        self.metric, self.mode = metric, mode
        self.default_epochs = default_epochs
        self.tracker = tracker
        self.stopper = stopper
        self.origin_of = origin_of  # which trials run a warm-start configuration
        # trials of earlier rounds of the same sweep (an extended sweep) come first
        self.records: dict[str, TrialRecord] = {r.trial_id: r for r in previous or []}
        self.stop = FitStop()  # the signal that stopped the sweep, if one did (search/stop.py)
        self._restored: set[str] = set()  # trials a resumed sweep goes on with (set_state)

    def setup(
        self, stop: Any = None, num_samples: Any = None, total_num_samples: Any = None, **info: Any
    ) -> None:
        """Ray has just put in its Ctrl-C handler: SIGTERM is sent the same way from here on."""
        forward_to_ray(self.stop)

    # Ray calls these in the driver ------------------------------------------------------------
    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        record = self._record(trial)
        if record.trial_id in self._restored and self.tracker is not None:
            self.tracker.reopen_trial(record.trial_id)  # KILLED while the sweep was stopped
        self._count_pause(record)
        log.info("trial %s started: %s", trial.trial_id, _fmt_params(record.params))

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        record = self._record(trial)
        record.last_seen = time.time()
        epoch = int(result.get("epoch", len(record.history) + 1))
        record.history = [h for h in record.history if h["epoch"] < epoch]  # a retry replays
        record.history.append({k: float(result[k]) for k in EPOCH_KEYS if k in result})
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
        if is_better(value, record.best_value, self.mode):
            record.best_value, record.best_epoch = value, epoch
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
        record.checkpoint = _slim_checkpoint(trial)
        overfit = self.stopper.reason(trial.trial_id) if self.stopper else None
        record.status, record.reason = final_status(
            record.epochs_run, self._planned_epochs(record), overfit
        )
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
        record.checkpoint = _slim_checkpoint(trial)
        record.status, record.reason = "failed", _error_line(trial)
        self._finish(record)

    def close_unfinished(self, ended: dict[str, tuple[str, str]], budget_s: float | None) -> None:
        """Trials still running when the experiment ended (Ray stops them when the time budget
        runs out, without a callback) get a final status too, and their MLflow runs end.
        `ended`: per trial id, its latest checkpoint folder and error line (from Ray's results)."""
        for record in self.records.values():
            if record.status != "running":
                continue
            path, error = ended.get(record.trial_id, ("", ""))
            if path and Path(path).is_dir():
                checkpoint.slim(Path(path))
                record.checkpoint = path
            if error:
                record.status, record.reason = "failed", error
            elif budget_s:
                record.status = "stopped_budget"
                record.reason = f"time budget {budget_s:g} s ran out at epoch {record.epochs_run}"
            else:
                record.status = "stopped"
                record.reason = f"the sweep ended after {record.epochs_run} epochs"
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
        if self.stopper is not None and "stopper" in state:
            self.stopper.set_state(state["stopper"])

    # helpers ----------------------------------------------------------------------------------
    def _record(self, trial: Any) -> TrialRecord:
        record = self.records.get(trial.trial_id)
        if record is None:
            params = overrides_from_trial(dict(trial.config))
            record = self.records[trial.trial_id] = TrialRecord(trial.trial_id, params)
            if self.origin_of is not None:
                record.origin = self.origin_of(params)
            if self.tracker is not None:
                self.tracker.child(trial.trial_id, params, {"origin": record.origin})
        return record

    def _planned_epochs(self, record: TrialRecord) -> int:
        return int(record.params.get("train.epochs", self.default_epochs))

    def _count_pause(self, record: TrialRecord) -> None:
        """A trial a resumed sweep goes on with: the time since its last result (or its start)
        was the sweep's stop, not its own (once, at its first start or end since the resume)."""
        if record.trial_id in self._restored:
            self._restored.discard(record.trial_id)
            record.paused_s += time.time() - (record.last_seen or record.started)
            record.last_seen = time.time()

    def _finish(self, record: TrialRecord) -> None:
        self._count_pause(record)  # ended without starting again (the time budget was spent)
        record.wall_s = round(time.time() - record.started - record.paused_s, 2)
        log.info(
            "trial %s %s: best %s %s at epoch %d, %d epochs, %.1f s%s",
            record.trial_id, record.status, self.metric,
            f"{record.best_value:.4f}" if record.best_value is not None else "-",
            record.best_epoch, record.epochs_run, record.wall_s,
            f" ({record.reason})" if record.reason else "",
        )  # fmt: skip
        if self.tracker is None:
            return
        summary = {
            f"best_{self.metric}": record.best_value,
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
        self.tracker.end_trial(record.trial_id, record.status, summary, tags)


def final_status(epochs_run: int, planned: int, overfit_reason: str | None) -> tuple[str, str]:
    """(status, reason) of a trial that ended without error. Pruning means it saved epochs: a
    trial that ran all its planned epochs is `completed`, even if the overfit rule fired at the
    last one (a stopper's verdict on the final epoch stops nothing)."""
    if epochs_run >= planned:
        return "completed", ""
    if overfit_reason:
        return "pruned_overfit", overfit_reason
    return "stopped_early", f"stopped after {epochs_run} of {planned} epochs"


def _slim_checkpoint(trial: Any) -> str:
    """A finished trial keeps only its best weights; returns the checkpoint folder ("" if none)."""
    latest = getattr(trial, "checkpoint", None)
    if latest is None or not Path(latest.path).is_dir():
        return ""
    checkpoint.slim(Path(latest.path))
    return str(latest.path)


def _fmt_params(params: dict[str, Any]) -> str:
    return ", ".join(
        f"{k.split('.')[-1]}={v:.3g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
        for k, v in params.items()
    )


def _error_line(trial: Any) -> str:
    """The last line of the trial's error (the exception), for statuses and MLflow tags."""
    path = getattr(trial, "error_file", None)
    text = ""
    if path and Path(path).is_file():
        text = Path(path).read_text(errors="replace")
    text = text or str(getattr(trial, "error_msg", "") or "")
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else "error"
