"""Overfit pruning decided on synthetic metric histories: no models, no Ray cluster."""

from __future__ import annotations

import math
import pickle
from typing import Any

import pytest
from ray.tune.schedulers import ASHAScheduler

from automl.search.stopping import OverfitRule, OverfitStopper, build_stopping, overfit_reason

NAN = math.nan
_MISSING = object()  # marks a key left out of a result


def _results(
    acc: list[Any], train: list[Any], val: list[Any] | None = None
) -> list[dict[str, Any]]:
    """Per-epoch results shaped like a trial's reports (Ray adds ``training_iteration``)."""
    val = val if val is not None else [_MISSING] * len(acc)
    results = []
    for i, (a, t, v) in enumerate(zip(acc, train, val, strict=True)):
        values = {"val_accuracy": a, "train_loss": t, "val_loss": v}
        result = {k: x for k, x in values.items() if x is not _MISSING}
        results.append({**result, "epoch": i + 1, "training_iteration": i + 1, "config": {}})
    return results


def _first_stop(results: list[dict[str, Any]], rule: OverfitRule) -> int | None:
    """The epoch at which a fresh stopper first says stop, or None."""
    stopper = OverfitStopper(rule)
    for result in results:
        if stopper("trial", result):
            return int(result["epoch"])
    return None


FALLING = [0.90, 0.70, 0.52, 0.40, 0.31, 0.25, 0.20]
OVERFIT = _results([0.60, 0.70, 0.81, 0.78, 0.75, 0.72, 0.70], FALLING)

CASES = [
    # (id, results, rule, expected stop epoch)
    ("overfits_after_epoch_3", OVERFIT, OverfitRule(), 5),
    ("patience_1", OVERFIT, OverfitRule(patience=1), 4),
    ("long_grace_period", OVERFIT, OverfitRule(patience=1, grace_period=5), 6),
    (
        "keeps_improving",
        _results([0.60, 0.70, 0.75, 0.78, 0.80, 0.81, 0.82], FALLING),
        OverfitRule(patience=1),
        None,
    ),
    (
        "noisy_inside_grace_period",
        _results([0.70, 0.65, 0.62, 0.75, 0.80, 0.82], FALLING[:6]),
        OverfitRule(patience=1, grace_period=3),
        None,
    ),
    (
        "same_noise_without_grace_period",
        _results([0.70, 0.65, 0.62, 0.75, 0.80, 0.82], FALLING[:6]),
        OverfitRule(patience=1, grace_period=0),
        2,
    ),
    (
        "plateau_train_loss_flat",
        _results([0.60, 0.70, 0.70, 0.70, 0.70, 0.70], [0.9, 0.6, 0.6, 0.6, 0.6, 0.6]),
        OverfitRule(),
        None,
    ),
    (
        "val_falls_train_loss_rises",
        _results([0.60, 0.80, 0.70, 0.60, 0.50], [0.9, 0.6, 0.7, 0.8, 0.9]),
        OverfitRule(),
        None,
    ),
    (
        "train_loss_rose_once_since_best",
        _results([0.60, 0.80, 0.70, 0.60, 0.50], [0.9, 0.6, 0.7, 0.5, 0.4]),
        OverfitRule(),
        None,
    ),
    (
        "gains_below_min_delta_do_not_count",
        _results([0.60, 0.70, 0.80, 0.801, 0.802, 0.803], FALLING[:6]),
        OverfitRule(min_delta=0.01),
        5,
    ),
    (
        "mode_min_on_val_loss",
        _results([0.6] * 6, FALLING[:6], [1.0, 0.8, 0.6, 0.7, 0.8, 0.9]),
        OverfitRule(metric="val_loss", mode="min"),
        5,
    ),
    (
        "mode_min_keeps_improving",
        _results([0.6] * 6, FALLING[:6], [1.0, 0.8, 0.6, 0.5, 0.45, 0.44]),
        OverfitRule(metric="val_loss", mode="min", patience=1),
        None,
    ),
    (
        "gap_grows_past_max_gap",  # gaps 0.1 0.2 0.3 0.6 ...; best accuracy at epoch 3
        _results(
            [0.6, 0.7, 0.8, 0.8, 0.8, 0.8],
            [0.9, 0.6, 0.4, 0.3, 0.2, 0.1],
            [1.0, 0.8, 0.7, 0.9, 1.1, 1.3],
        ),
        OverfitRule(patience=10, max_gap=0.5),
        4,
    ),
    (
        "gap_large_but_not_growing",
        _results([0.6, 0.7, 0.8, 0.8, 0.8], [0.9, 0.6, 0.4, 0.4, 0.4], [1.7, 1.4, 1.2, 1.2, 1.1]),
        OverfitRule(patience=10, max_gap=0.5),
        None,
    ),
    (
        "gap_rule_off_by_default",
        _results([0.6, 0.7, 0.8, 0.8, 0.8], [0.9, 0.6, 0.4, 0.3, 0.2], [1.0, 0.8, 0.7, 1.5, 2.0]),
        OverfitRule(patience=10),
        None,
    ),
    (
        "nan_metric_never_best",
        _results([0.60, 0.70, NAN, 0.65, 0.64], FALLING[:5]),
        OverfitRule(),
        4,
    ),
    (
        "nan_metric_now_abstains",
        _results([0.60, 0.80, 0.70, NAN, NAN, 0.70], FALLING[:6]),
        OverfitRule(),
        6,
    ),
    ("all_nan_metric", _results([NAN] * 6, FALLING[:6]), OverfitRule(patience=1), None),
    (
        "nan_train_loss_mid_run_skipped",
        _results([0.60, 0.80, 0.70, 0.60], [0.9, 0.6, NAN, 0.4]),
        OverfitRule(),
        4,
    ),
    (
        "missing_train_loss",
        _results([0.60, 0.80, 0.70, 0.60, 0.5], [_MISSING] * 5),
        OverfitRule(max_gap=0.1),
        None,
    ),
    ("missing_metric", _results([_MISSING] * 5, FALLING[:5]), OverfitRule(patience=1), None),
    (
        "missing_val_loss_gap_abstains",
        _results(
            [0.6, 0.7, 0.8, 0.8, 0.8], [0.9, 0.6, 0.4, 0.3, 0.2], [1.0, 0.8, 0.7] + [_MISSING] * 2
        ),
        OverfitRule(patience=10, max_gap=0.1),
        None,
    ),
    (
        # accuracy stalls at epochs 4-5 while the loss still falls: noise, not overfitting
        "val_loss_signal_ignores_accuracy_plateau",
        _results([0.6, 0.7, 0.8, 0.8, 0.8, 0.85], FALLING[:6], [1.0, 0.8, 0.7, 0.65, 0.6, 0.55]),
        OverfitRule(patience=1, signal="val_loss"),
        None,
    ),
    (
        "val_loss_signal_fires_on_loss_rise",  # lowest loss at epoch 3, above it for 2 epochs
        _results([0.6, 0.7, 0.8, 0.82, 0.83, 0.83], FALLING[:6], [1.0, 0.8, 0.7, 0.75, 0.8, 0.9]),
        OverfitRule(patience=2, signal="val_loss"),
        5,
    ),
    (
        "val_loss_signal_needs_train_loss_falling",
        _results([0.6, 0.7, 0.8, 0.8, 0.8], [0.9, 0.6, 0.4, 0.5, 0.6], [1.0, 0.8, 0.7, 0.8, 0.9]),
        OverfitRule(patience=1, signal="val_loss"),
        None,
    ),
    (
        "val_loss_signal_min_delta",  # dips of 0.005 below the lowest do not reset patience
        _results([0.6] * 5, FALLING[:5], [1.0, 0.7, 0.695, 0.69, 0.685]),
        OverfitRule(patience=2, min_delta=0.01, signal="val_loss"),
        4,
    ),
    (
        "val_loss_signal_missing_loss_abstains",
        _results([0.6, 0.7, 0.8, 0.7, 0.6], FALLING[:5], [_MISSING] * 5),
        OverfitRule(patience=1, signal="val_loss"),
        None,
    ),
    (
        "both_signal_accuracy_plateau_with_falling_loss",  # the metric rule alone stops at 5
        _results([0.6, 0.7, 0.8, 0.8, 0.8, 0.85], FALLING[:6], [1.0, 0.8, 0.7, 0.65, 0.6, 0.55]),
        OverfitRule(patience=2, signal="both"),
        None,
    ),
    (
        "both_signal_fires_when_loss_rises_too",
        _results([0.6, 0.7, 0.8, 0.8, 0.8, 0.8], FALLING[:6], [1.0, 0.8, 0.7, 0.65, 0.72, 0.8]),
        OverfitRule(patience=2, signal="both"),
        5,
    ),
    (
        "not_a_number",
        _results([0.6, 0.8, "n/a", None, 0.7], FALLING[:5]),
        OverfitRule(),
        5,
    ),
]


@pytest.mark.parametrize(
    ("results", "rule", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_stop_epoch(results: list[dict[str, Any]], rule: OverfitRule, expected: int | None) -> None:
    assert _first_stop(results, rule) == expected


def test_patience_reason_names_metric_best_epoch_and_train_loss() -> None:
    reason = overfit_reason(OVERFIT[:5], OverfitRule())
    assert reason == (
        "val_accuracy has not improved for 2 epochs (best 0.81 at epoch 3) "
        "while train_loss fell 0.52 -> 0.31"
    )


def test_val_loss_reason_names_lowest_loss_and_train_loss() -> None:
    results = _results([0.6, 0.7, 0.8, 0.82], FALLING[:4], [1.0, 0.8, 0.7, 0.75])
    assert overfit_reason(results, OverfitRule(patience=1, signal="val_loss")) == (
        "val_loss has not gone below its lowest for 1 epoch (0.70 at epoch 3, now 0.75) "
        "while train_loss fell 0.52 -> 0.40"
    )


def test_both_reason_names_the_metric_and_the_loss_rise() -> None:
    results = _results([0.6, 0.7, 0.8, 0.8], FALLING[:4], [1.0, 0.8, 0.7, 0.9])
    assert overfit_reason(results, OverfitRule(patience=1, signal="both")) == (
        "val_accuracy has not improved for 1 epoch (best 0.80 at epoch 3) "
        "and val_loss rose 0.70 -> 0.90 while train_loss fell 0.52 -> 0.40"
    )


def test_both_compares_the_loss_with_the_epoch_the_trial_keeps() -> None:
    """Under min_delta the loss was compared with the epoch of the last improvement by more
    than min_delta (0.60 at epoch 2), not with the best epoch the trial keeps and exports
    (0.805 at epoch 3, loss 0.40): a rise to 0.55 after it never counted. And of two epochs
    equal on the metric the trial keeps the lower loss's (train/loop.improves)."""
    results = _results([0.6, 0.8, 0.805, 0.79], FALLING[:4], [1.0, 0.6, 0.40, 0.55])
    assert overfit_reason(results, OverfitRule(patience=1, min_delta=0.01, signal="both")) == (
        "val_accuracy has not improved by more than 0.01 for 2 epochs (best 0.80 at epoch 2) "
        "and val_loss rose 0.40 -> 0.55 while train_loss fell 0.70 -> 0.40"
    )
    tied = _results([0.6, 0.8, 0.8, 0.79], FALLING[:4], [1.0, 0.6, 0.40, 0.50])
    assert "val_loss rose 0.40 -> 0.50" in str(
        overfit_reason(tied, OverfitRule(patience=1, signal="both"))
    )


def test_both_takes_the_best_epoch_the_trial_reports() -> None:
    """A trial resumed from a checkpoint written before 2026-12-07 keeps the earlier of two
    equal epochs (it reports best_epoch 2): the loss rise is measured from that one, the
    epoch it exports, not from the one today's tie rule would keep."""
    results = _results([0.6, 0.8, 0.8, 0.79], FALLING[:4], [1.0, 0.6, 0.40, 0.50])
    rule = OverfitRule(patience=1, signal="both")
    assert "val_loss rose 0.40 -> 0.50" in str(overfit_reason(results, rule))
    reported = [{**r, "best_epoch": max(1, min(i + 1, 2))} for i, r in enumerate(results)]
    assert overfit_reason(reported, rule) is None  # 0.50 is below epoch 2's 0.60
    stopper = OverfitStopper(rule)  # the stopper keeps the reported epoch with each result
    assert not any(stopper("t1", r) for r in reported)


def test_reason_gives_the_digits_that_tell_two_losses_apart() -> None:
    """A rise from 1.1002 to 1.1013 read "rose 1.10 -> 1.10"."""
    results = _results([0.3, 0.35, 0.35], [1.1048, 1.1084, 1.1040], [1.1034, 1.1002, 1.1013])
    assert overfit_reason(results, OverfitRule(patience=1, signal="both")) == (
        "val_accuracy has not improved for 1 epoch (best 0.35 at epoch 2) "
        "and val_loss rose 1.100 -> 1.101 while train_loss fell 1.11 -> 1.10"
    )
    assert overfit_reason(results, OverfitRule(patience=1, signal="val_loss")) == (
        "val_loss has not gone below its lowest for 1 epoch (1.100 at epoch 2, now 1.101) "
        "while train_loss fell 1.11 -> 1.10"
    )


def test_a_reason_under_min_delta_says_the_margin_it_did_not_clear() -> None:
    """0.68 at the stop beats 0.61 by less than min_delta 0.1: the reason read "has not
    improved (best 0.61 at epoch 3)" beside a record whose best epoch is the 0.68."""
    results = _results([0.50, 0.59, 0.61, 0.68], FALLING[:4], [1.0, 0.9, 0.8, 0.81])
    rule = OverfitRule(patience=1, min_delta=0.1, signal="metric")
    assert overfit_reason(results, rule) == (
        "val_accuracy has not improved by more than 0.1 for 1 epoch (best 0.61 at epoch 3) "
        "while train_loss fell 0.52 -> 0.40"
    )
    falling = _results([0.6] * 3, FALLING[:3], [1.00, 0.97, 0.96])
    assert overfit_reason(falling, OverfitRule(patience=2, min_delta=0.05, signal="val_loss")) == (
        "val_loss has not gone below its lowest by more than 0.05 for 2 epochs "
        "(1.00 at epoch 1, now 0.96) while train_loss fell 0.90 -> 0.52"
    )


def test_unknown_signal_is_named() -> None:
    with pytest.raises(ValueError, match="signal must be one of metric, val_loss, both"):
        OverfitRule(signal="loss")


def test_gap_reason() -> None:
    results = _results([0.6, 0.7, 0.8, 0.8], [0.9, 0.6, 0.4, 0.2], [1.0, 0.8, 0.7, 1.4])
    reason = overfit_reason(results, OverfitRule(patience=10, max_gap=1.0))
    assert reason is not None
    assert reason.startswith("generalization gap 1.20 > max_gap 1.00")
    assert "epoch 3" in reason


def test_empty_history() -> None:
    assert overfit_reason([], OverfitRule(grace_period=0)) is None


def test_stopper_records_reason_and_never_stops_all() -> None:
    stopper = OverfitStopper(OverfitRule())
    decisions = [stopper("a", r) for r in OVERFIT[:5]] + [stopper("b", r) for r in OVERFIT[:3]]
    assert decisions == [False] * 4 + [True] + [False] * 3
    assert stopper.pruned == {"a": overfit_reason(OVERFIT[:5], OverfitRule())}
    assert stopper.reason("a") is not None and stopper.reason("b") is None
    assert stopper.stop_all() is False


def test_stopper_keeps_copies_of_needed_keys_only() -> None:
    stopper = OverfitStopper(OverfitRule())
    result = dict(OVERFIT[0])
    stopper("a", result)
    result["val_accuracy"] = 0.0
    assert stopper.history("a") == [
        {"val_accuracy": 0.60, "train_loss": 0.90, "epoch": 1, "training_iteration": 1}
    ]


def test_pickle_round_trip_mid_history_continues_the_same() -> None:
    stopper = OverfitStopper(OverfitRule())
    for r in OVERFIT[:3]:
        stopper("a", r)
    for r in OVERFIT[:5]:
        stopper("b", r)
    restored = pickle.loads(pickle.dumps(stopper))
    assert restored.pruned == stopper.pruned and "b" in restored.pruned
    assert restored.history("a") == stopper.history("a")
    rest = OVERFIT[3:]
    assert [restored("a", r) for r in rest] == [stopper("a", r) for r in rest]
    assert restored.reason("a") is not None
    assert restored.reason("a") == stopper.reason("a")


def test_replayed_epochs_truncate_history() -> None:
    """A trial restored from its epoch-2 checkpoint re-reports epochs 3 and 4: not counted twice."""
    stopper = OverfitStopper(OverfitRule())
    assert [stopper("a", r) for r in OVERFIT[:4]] == [False] * 4
    assert [stopper("a", r) for r in OVERFIT[2:4]] == [False, False]
    assert [r["epoch"] for r in stopper.history("a")] == [1, 2, 3, 4]
    assert stopper("a", OVERFIT[4]) is True


def test_a_history_saved_before_its_latest_epochs_catches_up_from_the_checkpoint() -> None:
    """A kill between Ray's save of its trials and the callback's save of the stopper left a
    history short of epochs the trial's checkpoint holds: the next result was judged against
    the wrong best (here: not pruned at epoch 5, where the uninterrupted sweep prunes)."""
    uninterrupted = OverfitStopper(OverfitRule())
    verdicts = [uninterrupted("a", r) for r in OVERFIT[:5]]
    assert verdicts[-1] is True
    short = OverfitStopper(OverfitRule())
    short("a", OVERFIT[0])  # saved after epoch 1; the checkpoint holds epochs 1-4
    behind = pickle.loads(pickle.dumps(short))
    assert behind("a", OVERFIT[4]) is False  # judged on epochs 1 and 5 only
    # the record's epochs (callback.EPOCH_KEYS: no training_iteration), caught up
    epochs = [{k: v for k, v in r.items() if k != "training_iteration"} for r in OVERFIT[:4]]
    short.catch_up("a", epochs)
    assert short("a", OVERFIT[4]) is True
    assert short.reason("a") == uninterrupted.reason("a")
    short.catch_up("a", epochs[:2])  # never shortens what it has
    assert len(short.history("a")) == 5


def test_restart_from_scratch_clears_history_and_reason() -> None:
    stopper = OverfitStopper(OverfitRule())
    assert [stopper("a", r) for r in OVERFIT[:5]][-1] is True
    assert stopper("a", OVERFIT[0]) is False
    assert stopper.history("a") == [{k: v for k, v in OVERFIT[0].items() if k != "config"}]
    assert stopper.reason("a") is None


def test_replay_detected_by_epoch_when_training_iteration_is_absent() -> None:
    stopper = OverfitStopper(OverfitRule())
    for r in OVERFIT[:4]:
        stopper("a", {k: v for k, v in r.items() if k != "training_iteration"})
    stopper("a", {"epoch": 2, "val_accuracy": 0.7, "train_loss": 0.7})
    assert [r["epoch"] for r in stopper.history("a")] == [1, 2]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("mode", "maximize"),
        ("grace_period", -1),
        ("patience", 0),
        ("min_delta", -0.1),
        ("min_delta", NAN),
        ("max_gap", 0.0),
        ("max_gap", -1.0),
    ],
)
def test_invalid_rule_names_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        OverfitRule(**{field: value})


def _asha_args(**overrides: Any) -> dict[str, Any]:
    return {"max_t": 8, "grace_period": 2, "reduction_factor": 2.0, **overrides}


def test_build_stopping_overfit() -> None:
    stopper, scheduler = build_stopping("overfit", OverfitRule(), **_asha_args())
    assert isinstance(stopper, OverfitStopper) and scheduler is None


def test_build_stopping_none() -> None:
    assert build_stopping("none", OverfitRule(), **_asha_args()) == (None, None)


@pytest.mark.parametrize("pruner", ["asha", "overfit_asha"])
def test_build_stopping_asha(pruner: str) -> None:
    rule = OverfitRule(metric="val_loss", mode="min")
    stopper, scheduler = build_stopping(pruner, rule, **_asha_args())
    assert isinstance(scheduler, ASHAScheduler)
    assert scheduler.metric == "val_loss"
    assert scheduler._mode == "min"  # Ray has no public getter for the mode
    assert (stopper is not None) == (pruner == "overfit_asha")


def test_build_stopping_asha_metric_override() -> None:
    _, scheduler = build_stopping("asha", OverfitRule(), asha_metric="val_loss", **_asha_args())
    assert scheduler is not None and scheduler.metric == "val_loss"


def test_build_stopping_clamps_asha_grace_period_to_max_t() -> None:
    with pytest.raises(AssertionError):  # Ray's own check, which the clamp avoids
        ASHAScheduler(metric="m", mode="max", max_t=1, grace_period=3)
    _, scheduler = build_stopping("asha", OverfitRule(), **_asha_args(max_t=1, grace_period=3))
    assert isinstance(scheduler, ASHAScheduler)
    # one rung, at max_t itself: no trial is stopped before its last epoch
    assert [milestone for milestone, _ in scheduler._brackets[0]._rungs] == [1]


@pytest.mark.parametrize(
    ("field", "value"), [("max_t", 0), ("grace_period", 0), ("reduction_factor", 1.0)]
)
def test_build_stopping_invalid_asha_args_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        build_stopping("asha", OverfitRule(), **_asha_args(**{field: value}))


def test_build_stopping_unknown_pruner_lists_the_allowed_names() -> None:
    with pytest.raises(ValueError, match="overfit, asha, overfit_asha, none.*'median'"):
        build_stopping("median", OverfitRule(), **_asha_args())


def test_the_gap_rule_warns_where_train_and_validation_losses_see_other_class_mixes() -> None:
    """The training loss is on the mix `train.sampling` draws (sqrt by default), weighted by
    `train.class_weights`; the validation loss on the data's own: their gap is offset."""
    from dataclasses import replace

    from conftest import make_tiny_config

    from automl.search.plan import gap_warning

    def config(max_gap: float | None = 0.5, **train: Any) -> Any:
        conf = make_tiny_config(**{f"train__{k}": v for k, v in train.items()})
        return replace(conf, pruner=replace(conf.pruner, max_gap=max_gap))

    assert gap_warning(config(None, sampling="sqrt"), ()) is None  # no gap rule
    plain = config(sampling="natural", class_weights="none")
    assert gap_warning(plain, ()) is None
    warning = gap_warning(config(sampling="sqrt"), ())
    assert warning is not None and warning.startswith("pruner.max_gap: with train.sampling=sqrt ")
    searched = gap_warning(plain, ("train.class_weights",))
    assert searched is not None and "with train.class_weights searched the" in searched


def test_a_restored_trial_gives_the_stopper_the_epochs_its_record_holds() -> None:
    """The stopper's histories are restored from the callback's saved state, which may lack
    them (a pruner added on resume, a save from before the stopper was in it): the trial's
    record holds its epochs, and patience goes on from them, not from zero."""
    from types import SimpleNamespace

    from automl.search.callback import EPOCH_KEYS, SweepCallback, TrialRecord

    epochs = [{k: float(v) for k, v in r.items() if k in EPOCH_KEYS} for r in OVERFIT[:4]]
    record = TrialRecord("a", {"train.epochs": 7}, history=epochs)
    stopper = OverfitStopper(OverfitRule())
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=7, tracker=None, stopper=stopper,
        previous=[record],
    )  # fmt: skip
    callback.setup()
    trial = SimpleNamespace(trial_id="a", config={}, last_result={}, checkpoint=None)
    callback.on_trial_start(0, [], trial)
    assert [h["epoch"] for h in stopper.history("a")] == [1, 2, 3, 4]
    assert stopper("a", OVERFIT[4]) is True  # as the uninterrupted trial at epoch 5


def _asha_and_a_weak_newcomer(
    catch_up: bool, earlier_round: bool = False, restored: bool = True
) -> str:
    """ASHA's decision on a weak trial reaching its first rung, with the rungs either replayed
    from the saved records of three trials (as a resumed sweep) or as Ray restores them;
    `earlier_round`: the three are an earlier round's (an extension); `restored`: the round
    was resumed (Ray restores its state), else it is new (its scheduler given to the callback
    as the sweep does)."""
    from dataclasses import asdict
    from types import SimpleNamespace

    from automl.search.callback import SweepCallback, TrialRecord

    _, scheduler = build_stopping(
        "asha", OverfitRule(), **_asha_args(max_t=4, grace_period=1),
        asha_metric="best_val_accuracy",
    )  # fmt: skip
    records = [
        TrialRecord(trial_id, {}, history=[{"epoch": 1.0, "val_accuracy": a}])
        for trial_id, a in (("a", 0.8), ("b", 0.7), ("c", 0.75))
    ]
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=4, tracker=None, stopper=None,
        previous=records if earlier_round else [],
        scheduler=None if restored or not catch_up else scheduler,
    )  # fmt: skip
    if restored:
        callback.scheduler = scheduler if catch_up else None
        callback.set_state({"records": [] if earlier_round else [asdict(r) for r in records]})
    weak = SimpleNamespace(trial_id="d")
    assert scheduler is not None
    scheduler.on_trial_add(None, weak)  # type: ignore[arg-type]
    return scheduler.on_trial_result(None, weak, {"epoch": 1, "best_val_accuracy": 0.5})  # type: ignore[arg-type]


def test_a_resumed_sweeps_asha_keeps_the_rungs_it_had() -> None:
    """Ray saves no scheduler with the experiment: a resumed sweep's ASHA started with empty
    rungs, so the first trial at each rung set its own cut-off and ran on however weak."""
    assert _asha_and_a_weak_newcomer(catch_up=False) == ASHAScheduler.CONTINUE  # Ray's own
    assert _asha_and_a_weak_newcomer(catch_up=True) == ASHAScheduler.STOP
    # an extension is one study: a new extension round's rungs hold the earlier rounds'
    # trials (they started empty), and so do a resumed one's, not this round's alone
    assert (
        _asha_and_a_weak_newcomer(False, earlier_round=True, restored=False)
        == ASHAScheduler.CONTINUE
    )
    assert _asha_and_a_weak_newcomer(True, earlier_round=True, restored=False) == ASHAScheduler.STOP
    assert _asha_and_a_weak_newcomer(True, earlier_round=True) == ASHAScheduler.STOP


def test_a_reason_that_no_longer_holds_is_dropped_after_a_resume() -> None:
    """The reason stayed once set: a trial that went on past it after a driver restart (the
    stopper's state saved with the verdict, the trial kept running) and was later stopped by
    ASHA was labelled pruned_overfit with a reason its history no longer gave."""
    from automl.search.callback import final_status

    rule = OverfitRule(metric="val_accuracy", mode="max", grace_period=1, patience=1, signal="both")
    first = OverfitStopper(rule)
    for result in _results([0.5, 0.6, 0.6], [1.0, 0.8, 0.6], [1.0, 0.8, 0.9]):
        first("T", result)
    assert first.reason("T") is not None  # fired at epoch 3
    resumed = OverfitStopper(rule)
    resumed.set_state(first.get_state())
    (better,) = _results([0.5, 0.6, 0.6, 0.7], [1.0, 0.8, 0.6, 0.5], [1.0, 0.8, 0.9, 0.7])[3:]
    assert resumed("T", better) is False
    assert resumed.reason("T") is None
    assert final_status(6, 10, resumed.reason("T"))[0] == "stopped_early"
