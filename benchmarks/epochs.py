"""One trial scored on the held-out test split after every epoch, and the per-epoch medians
over seeds: what the batch-size and batching benchmarks compare."""

from __future__ import annotations

import statistics
import time
from typing import Any

from benchmarks.common import compose
from benchmarks.imbalance import scored_on_test

HISTORY_KEYS = (
    "epoch", "epoch_s", "train_samples_per_s", "train_loss", "val_loss", "val_accuracy",
    "test_accuracy",
)  # fmt: skip


def scored_trial(overrides: list[str]) -> dict[str, Any]:
    """`run_trial` with `overrides`; every epoch also scored on the test split, which the
    trial never selects on. `epoch_s` is the loop's own epoch time (training, validation and
    that test scoring, the same work for every configuration)."""
    from automl.data.prepare import prepare_data
    from automl.train.loop import run_trial

    conf = compose(*overrides)
    data = prepare_data(conf)
    started = time.perf_counter()
    with scored_on_test(data.test):
        result = run_trial(conf, data.without_test())
    return {
        "overrides": overrides, "train_examples": len(data.train), "status": result.status,
        "batch_size": result.history[0].get("batch_size") if result.history else None,
        "wall_s": round(time.perf_counter() - started, 1),
        "history": [{k: round(h[k], 4) for k in HISTORY_KEYS if k in h} for h in result.history],
    }  # fmt: skip


def median_per_epoch(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Median over seeds, epoch by epoch, of cumulative seconds and val/test accuracy (test
    min-max too), up to the fewest epochs any seed ran."""
    epochs = min(len(t["history"]) for t in runs)
    out = []
    for e in range(epochs):
        at = [t["history"][e] for t in runs]
        cumulative = [sum(h["epoch_s"] for h in t["history"][: e + 1]) for t in runs]
        out.append({
            "epoch": e + 1,
            "seconds": round(statistics.median(cumulative), 1),
            "val_accuracy": statistics.median(h["val_accuracy"] for h in at),
            "test_accuracy": statistics.median(h["test_accuracy"] for h in at),
            "test_min": min(h["test_accuracy"] for h in at),
            "test_max": max(h["test_accuracy"] for h in at),
        })  # fmt: skip
    return out


def accuracy_at(run: dict[str, Any], seconds: float, key: str = "test_accuracy") -> float | None:
    """The accuracy of the last epoch a trial had finished `seconds` into training: the model
    one would hold if stopped then (None before its first epoch ends)."""
    held, elapsed = None, 0.0
    for h in run["history"]:
        elapsed += h["epoch_s"]
        if elapsed > seconds + 1e-9:
            break
        held = h[key]
    return held
