"""Overfit pruning and early stopping, as Ray Tune stoppers and schedulers.

Ray Tune's ``OptunaSearch`` runs Optuna with a no-op pruner, so stopping bad trials is Ray Tune's
job. Two kinds of bad trial are told apart here:

* overfitting (validation stops improving while the training loss keeps falling, or the gap
  ``val_loss - train_loss`` grows too large): :class:`OverfitStopper`, so the sweep can record
  the trial as ``pruned_overfit``. ``OverfitRule.signal`` says what "stops improving" means: the
  metric, the validation loss, or both (``pruner.signal`` defaults to both: on a small
  validation split the metric alone plateaus by chance, and the loss alone can rise while
  accuracy still climbs);
* plainly weak or stalled runs: Ray's ``ASHAScheduler``.

The decision itself is the pure function :func:`overfit_reason`, tested on synthetic histories.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ray.tune import Stopper
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from automl.console import counted

PRUNERS = ("overfit", "asha", "overfit_asha", "none")
SIGNALS = ("metric", "val_loss", "both")

# Keys that order a trial's results; a result that does not move them forward is a replay.
_STEP_KEYS = ("training_iteration", "epoch")


@dataclass(frozen=True)
class OverfitRule:
    """When a trial counts as overfitting; see :func:`overfit_reason` for the exact rules."""

    metric: str = "val_accuracy"
    mode: str = "max"  # "max" | "min"
    grace_period: int = 2  # never prune at or before this many evaluations
    patience: int = 2  # evaluations without improvement of `metric` (by more than min_delta) ...
    min_delta: float = 0.0
    # ... of what: "metric"; "val_loss" (the validation loss has not gone below its lowest); or
    # "both" (the metric stalled and the validation loss rose above its value at the metric's best)
    signal: str = "metric"
    max_gap: float | None = None  # ... or val_loss - train_loss above this (None = off)
    train_loss_key: str = "train_loss"
    val_loss_key: str = "val_loss"

    def __post_init__(self) -> None:
        # Fail where the rule is built, naming the field, not deep inside a running sweep.
        if self.mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min' but got {self.mode!r}.")
        if self.signal not in SIGNALS:
            raise ValueError(f"signal must be one of {', '.join(SIGNALS)} but got {self.signal!r}.")
        if self.grace_period < 0:
            raise ValueError(f"grace_period cannot be negative but got {self.grace_period}.")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1 but got {self.patience}.")
        if not self.min_delta >= 0:  # written so that NaN fails too
            raise ValueError(f"min_delta must be >= 0 but got {self.min_delta}.")
        if self.max_gap is not None and not self.max_gap > 0:
            raise ValueError(f"max_gap must be > 0 (or None) but got {self.max_gap}.")


def _value(result: Mapping[str, Any], key: str) -> float | None:
    """The finite number under ``key``, or None: missing, NaN and inf values make a rule abstain."""
    raw = result.get(key)
    if raw is None or isinstance(raw, bool):
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fmt(x: float, digits: int = 2) -> str:
    # Two decimals read well for accuracies and losses; tiny losses would all print as 0.00.
    return f"{x:.{digits}f}" if x == 0 or abs(x) >= 0.01 else f"{x:.{digits}g}"


def _apart(a: float, b: float) -> tuple[str, str]:
    """Both numbers with the digits that tell them apart (not ``1.10 -> 1.10``)."""
    for digits in range(2, 6):
        if _fmt(a, digits) != _fmt(b, digits):
            break
    return _fmt(a, digits), _fmt(b, digits)


def _change(before: float, after: float) -> str:
    return " -> ".join(_apart(before, after))


def _epoch(history: Sequence[Mapping[str, Any]], i: int) -> int:
    """The epoch number a human saw in the logs (the reported ``epoch``, else the position)."""
    reported = _value(history[i], "epoch")
    return int(reported) if reported is not None else i + 1


def _best_index(values: Sequence[float | None], mode: str, min_delta: float) -> int | None:
    """Index of the value patience counts from: the last one that beat the best counted before
    it by more than ``min_delta`` (the first value to start with; as Keras' EarlyStopping). A
    later value may be better by less than ``min_delta``: an improvement too small to count."""
    best: int | None = None
    best_value = 0.0
    for i, v in enumerate(values):
        if v is None:
            continue
        if (
            best is None
            or (mode == "max" and v > best_value + min_delta)
            or (mode == "min" and v < best_value - min_delta)
        ):
            best, best_value = i, v
    return best


def _kept_index(history: Sequence[Mapping[str, Any]], rule: OverfitRule) -> int:
    """The index of the epoch a trial keeps as its best: as it reports it (`best_epoch`), else
    by train/loop.improves (the metric, then the lower validation loss)."""
    from automl.train.loop import improves

    reported = _value(history[-1], "best_epoch")
    at = [i for i, row in enumerate(history) if reported and _value(row, "epoch") == reported]
    if at:
        return at[-1]
    kept, kept_scores = 0, None
    for i, row in enumerate(history):
        scores = {"val_loss": _value(row, rule.val_loss_key), rule.metric: _value(row, rule.metric)}
        known = {k: v for k, v in scores.items() if v is not None}
        if improves(known, kept_scores, rule.metric, rule.mode):
            kept, kept_scores = i, known
    return kept


def _kept_falling(losses: Sequence[float | None]) -> bool:
    """True if the known losses never rose step to step and the last is below the first."""
    known = [x for x in losses if x is not None]
    return all(b <= a for a, b in zip(known, known[1:], strict=False)) and known[-1] < known[0]


def _gap(result: Mapping[str, Any], rule: OverfitRule) -> float | None:
    """``val_loss - train_loss``: how much worse the model does on data it did not train on."""
    val, train = _value(result, rule.val_loss_key), _value(result, rule.train_loss_key)
    return None if val is None or train is None else val - train


def overfit_reason(history: Sequence[Mapping[str, Any]], rule: OverfitRule) -> str | None:
    """Pure decision on a trial's per-epoch results so far; a one-line reason to prune it now.

    None means keep going. A plateau where the training loss stalled or rose too is not
    overfitting (that is ASHA's job), so the patience rule also needs the training loss to have
    kept falling since the epoch it counts from (the best epoch, or the validation loss's lowest).
    A rule abstains at an epoch whose result lacks (or has NaN for) a value it needs.
    """
    n = len(history)
    if n <= rule.grace_period:
        return None
    metrics = [_value(r, rule.metric) for r in history]
    best = _best_index(metrics, rule.mode, rule.min_delta)
    if best is None:
        return None
    reason = _patience_reason(history, metrics, best, rule)
    if reason is not None:
        return reason

    if rule.max_gap is not None:
        gap_now, gap_best = _gap(history[-1], rule), _gap(history[best], rule)
        if gap_now is not None and gap_best is not None and gap_now > max(rule.max_gap, gap_best):
            return (
                f"generalization gap {_fmt(gap_now)} > max_gap {_fmt(rule.max_gap)} "
                f"({rule.val_loss_key} - {rule.train_loss_key}; "
                f"{_fmt(gap_best)} at best epoch {_epoch(history, best)})"
            )
    return None


def _patience_reason(
    history: Sequence[Mapping[str, Any]],
    metrics: Sequence[float | None],
    best: int,
    rule: OverfitRule,
) -> str | None:
    """The patience rule on the signal the rule watches (see :class:`OverfitRule`)."""
    n = len(history)
    train = [_value(r, rule.train_loss_key) for r in history]
    val_loss = [_value(r, rule.val_loss_key) for r in history]
    margin = f" by more than {rule.min_delta:g}" if rule.min_delta > 0 else ""
    if rule.signal == "val_loss":
        start = _best_index(val_loss, "min", rule.min_delta)
        if start is None or val_loss[-1] is None:
            return None
        since = counted(n - 1 - start, "epoch")
        lowest, now = _apart(val_loss[start] or 0.0, val_loss[-1])
        what = (
            f"{rule.val_loss_key} has not gone below its lowest{margin} for {since} "
            f"({lowest} at epoch {_epoch(history, start)}, now {now})"
        )
    else:
        start = best
        if metrics[-1] is None:
            return None
        what = (
            f"{rule.metric} has not improved{margin} for {counted(n - 1 - start, 'epoch')} "
            f"(best {_fmt(metrics[best] or 0.0)} at epoch {_epoch(history, best)})"
        )
        if rule.signal == "both":  # above the loss of the epoch the trial keeps as its best
            # (`best` counts patience: with min_delta, the last improvement by more than it)
            loss_best, loss_now = val_loss[_kept_index(history, rule)], val_loss[-1]
            if loss_best is None or loss_now is None or not loss_now > loss_best:
                return None
            what += f" and {rule.val_loss_key} rose {_change(loss_best, loss_now)}"
    train_start, train_now = train[start], train[-1]
    if (
        n - 1 - start < rule.patience
        or train_start is None
        or train_now is None
        or not _kept_falling(train[start:])
    ):
        return None
    return f"{what} while {rule.train_loss_key} fell {_change(train_start, train_now)}"


class OverfitStopper(Stopper):
    """Stops trials that overfit; remembers why, so the sweep can record status `pruned_overfit`.

    Holds only plain dicts, so it pickles with Ray's experiment checkpoint and resumes unchanged.
    """

    def __init__(self, rule: OverfitRule) -> None:
        self.rule = rule
        self.pruned: dict[str, str] = {}
        self._histories: dict[str, list[dict[str, Any]]] = {}
        # Only these keys are kept: a result dict also holds config, timings and system info
        # (`best_epoch`: the epoch the trial keeps, whose loss a rise is measured from)
        self._keys = tuple(
            dict.fromkeys(
                (rule.metric, rule.train_loss_key, rule.val_loss_key, "best_epoch", *_STEP_KEYS)
            )
        )

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        record = {k: result[k] for k in self._keys if k in result}
        history = self._histories.setdefault(trial_id, [])
        if _truncate_replay(history, record):
            # A restarted trial re-reports epochs from its checkpoint: drop what it replays,
            # and any reason given before the restart no longer holds.
            self.pruned.pop(trial_id, None)
        history.append(record)
        reason = overfit_reason(history, self.rule)
        if reason is None:  # one a saved state held no longer holds (the trial went on past it)
            self.pruned.pop(trial_id, None)
            return False
        self.pruned[trial_id] = reason
        return True

    def catch_up(self, trial_id: str, epochs: list[dict[str, Any]]) -> None:
        """The epochs a trial's checkpoint holds that this stopper's saved history lacks (a
        kill between Ray's save of its trials and the callback's save of this state): patience
        counts epochs, so a gap would judge the next result against the wrong best."""
        if len(self._histories.get(trial_id, [])) < len(epochs):
            self._histories[trial_id] = [{k: e[k] for k in self._keys if k in e} for e in epochs]

    def stop_all(self) -> bool:
        return False

    def reason(self, trial_id: str) -> str | None:
        """Why the trial was pruned, or None if this stopper did not prune it."""
        return self.pruned.get(trial_id)

    def history(self, trial_id: str) -> list[dict[str, Any]]:
        """A copy of the results kept for the trial (for logging and tests)."""
        return [dict(r) for r in self._histories.get(trial_id, [])]

    def get_state(self) -> dict[str, Any]:
        """What patience needs across a driver restart (saved by the sweep's callback: Ray
        restores `RunConfig.stop` as it was when the sweep started, not as it is now)."""
        histories = {trial_id: self.history(trial_id) for trial_id in self._histories}
        return {"pruned": dict(self.pruned), "histories": histories}

    def set_state(self, state: dict[str, Any]) -> None:
        self.pruned = dict(state.get("pruned", {}))
        self._histories = {k: [dict(r) for r in v] for k, v in state.get("histories", {}).items()}


def _truncate_replay(history: list[dict[str, Any]], record: Mapping[str, Any]) -> bool:
    """Cut ``history`` back to the results before ``record`` if ``record`` replays one of them."""
    if not history:
        return False
    for key in _STEP_KEYS:
        new, old = _value(record, key), _value(history[-1], key)
        if new is None or old is None or new > old:
            continue
        keep = next(
            (i for i, r in enumerate(history) if (v := _value(r, key)) is not None and v >= new),
            len(history),
        )
        del history[keep:]
        return True
    return False


def build_stopping(
    pruner: str,
    rule: OverfitRule,
    *,
    max_t: int,
    grace_period: int,
    reduction_factor: float,
    time_attr: str = "epoch",  # ASHA counts epochs (a resumed trial reports its real epoch)
    asha_metric: str | None = None,
) -> tuple[OverfitStopper | None, TrialScheduler | None]:
    """The stopper and scheduler for a ``pruner`` name: overfit, asha, overfit_asha or none.

    The ASHA scheduler is built with its own ``metric`` and ``mode``, so Ray refuses a
    ``TuneConfig`` that sets them as well: pass them to ``OptunaSearch`` instead.
    """
    if pruner not in PRUNERS:
        raise ValueError(f"pruner must be one of {', '.join(PRUNERS)} but got {pruner!r}.")
    stopper = OverfitStopper(rule) if pruner in ("overfit", "overfit_asha") else None
    if pruner not in ("asha", "overfit_asha"):
        return stopper, None

    # Ray checks these with asserts; a named ValueError is clearer (and survives python -O).
    if max_t < 1:
        raise ValueError(f"max_t must be >= 1 but got {max_t}.")
    if grace_period < 1:
        raise ValueError(f"grace_period must be >= 1 but got {grace_period}.")
    if not reduction_factor > 1:
        raise ValueError(f"reduction_factor must be > 1 but got {reduction_factor}.")
    scheduler = ASHAScheduler(
        time_attr=time_attr,
        metric=asha_metric or rule.metric,
        mode=rule.mode,
        max_t=max_t,
        # A short run (a smoke test with max_t below the configured grace period) would trip
        # Ray's assert; clamped to max_t, ASHA simply never stops a trial early.
        grace_period=min(grace_period, max_t),
        reduction_factor=reduction_factor,
    )
    return stopper, scheduler


def catch_up_asha(
    scheduler: TrialScheduler | None, histories: Mapping[str, Sequence[Mapping[str, float]]]
) -> int:
    """ASHA's rungs as they stood before a stop, or holding an extended sweep's earlier
    rounds: Ray saves no scheduler state with an experiment, so a resumed sweep's (or a new
    round's) ASHA started with empty rungs, and the first trial at each rung set its own
    cut-off (never stopped, however weak). Each trial's epochs, replayed
    in order, record the values the rungs held; decisions made in the replay are dropped.
    Reads ASHA's private rungs (Ray 2.60; one bracket, as `build_stopping` makes); returns how
    many trials were replayed (0 for any other scheduler)."""
    brackets = getattr(scheduler, "_brackets", None)
    if not isinstance(scheduler, ASHAScheduler) or not brackets or len(brackets) != 1:
        return 0
    metric, time_attr = str(scheduler._metric), str(scheduler._time_attr)
    key, running_best = metric.removeprefix("best_"), metric.startswith("best_")
    replayed = 0
    for trial_id, history in histories.items():
        trial, best = _TrialId(trial_id), -math.inf
        for epoch in history:
            value = epoch.get(key)
            if value is None or time_attr not in epoch or not math.isfinite(value):
                continue
            signed = float(scheduler._metric_op or 1) * value  # ASHA keeps the larger as better
            best = max(best, signed) if running_best else signed
            brackets[0].on_result(trial, epoch[time_attr], best)
        replayed += bool(history)
    return replayed


@dataclass(frozen=True)
class _TrialId:
    """What ASHA's rungs read of a trial: its id."""

    trial_id: str
