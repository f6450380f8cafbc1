"""The search race of issue #10: four systems, one wall-clock budget, scored on held-out test data.

python -m benchmarks.race --size subsample --seeds 0,1,2 --budget-s 180   # `make race`
python -m benchmarks.race --size both --seeds 0,1,2 --budget-s 180        # also the full task
python -m benchmarks.race --quick                                          # smoke: tiny model, 20 s
python -m benchmarks.race --one hf --seed 0 --size subsample --budget-s 180 --out run.json
python -m benchmarks.race --size full --seeds 1,2 --budget-s 420 --add-to DIR   # more seeds
python -m benchmarks.race --data-seed 1 --out DIR          # a fresh split (`make race DATA_SEED=1`)

Systems, each given the same budget, data split (`data.seed`, 0 unless --data-seed: another
subsample and split, whose test texts no earlier race or design decision saw), 2 threads and seed,
and
each running the search space's `first_trials` first (enqueued in its Optuna study):
  ours        `run_sweep` on experiment=default (its search space, search_spaces/quick.yaml, is
              every system's), TPE + overfit_asha, sweep.time_budget_s=budget.
  hf          `Trainer.hyperparameter_search(backend="optuna")` with a seeded default
              TPESampler (its first 10 trials are random: a race runs 3-10) and
              `timeout=budget`, over the ranges of search_spaces/quick.yaml that Trainer can
              express (rank, frozen depth and LoRA dropout through `model_init`); Trainer's own
              defaults otherwise (batch 8, random batches, no class weights, last epoch's model,
              Optuna's default MedianPruner).
  ray_optuna  a bare Ray Tune + OptunaSearch script (seeded default TPE, as hf;
              time_budget_s=budget, one trial at a time on 2 CPUs) whose trainable calls
              `run_trial` and reports each epoch as it ends (before 2026-12-07: once, at the
              trial's end).
  one_epoch   Egele et al. (2023): random candidates trained for their first epoch until half the
              budget is used, then the best by validation trained on to their sampled epochs;
              time still left goes to more first-epoch candidates (since 2026-12-07).

Every system picks on validation, each by its own rule on equal scores (this project's export:
the lower validation loss; the others: the first such model); the score is the picked model's
accuracy on the test split, which only the scorer here reads, after the run. A system's clock
starts when it starts (its own imports, data preparation and, for Ray, Ray's start-up included;
before 2026-12-07 the imports of the runner's own modules were left out) and excludes the time
spent keeping the weights of each new pick, which are scored afterwards (`score_picks`) by one
function for all.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import (
    compose,
    machine,
    progress,
    quiet,
    seed_list,
    short_commit,
    sweep_overrides,
)
from benchmarks.report import RESULTS

ROOT = Path(__file__).resolve().parents[1]
SYSTEMS = ("ours", "hf", "ray_optuna", "one_epoch")
SIZES = {"subsample": ["data.max_examples=1000"], "full": []}
QUICK_OVERRIDES = ["model=tiny_bert", "data.max_examples=200"]  # --quick: a smoke test only
QUICK_BUDGET_S = 20.0
# The space `make sweep` searches (experiment=default), for every system; --quick: the smoke one
SPACE, QUICK_SPACE = "quick", "smoke"
THREADS = 2
DATA_SEED = 0  # data.seed of every system's runs: --data-seed sets it (here and in each --one)
FRACTIONS = (0.25, 0.5, 0.75, 1.0)  # of the budget, for the anytime table
ONE_EPOCH_TOP_K = 3  # candidates trained on after the first-epoch round (Egele et al.)
ONE_EPOCH_KEEP = 6  # resumable checkpoints kept; past the top 3 while time remains
HF_TRIALS = 10_000  # Trainer.hyperparameter_search's n_trials: the timeout ends it


# ---------------------------------------------------------------------------------------------
# Pure helpers (tested in tests/test_benchmark_race.py)


def incumbents(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The picks over time, by each system's own rule: each event (`t`, `val`, `id`) that beats
    every earlier one on validation. A tie keeps the earlier pick, unless both events carry the
    validation `loss` and the later one's is lower: only this project's events carry it, as
    only its export breaks ties so (`train/loop.improves`, the rule its sweep ranks by). Events
    without a finite `val` never pick; events come in any order and are taken by time."""
    from automl.train.loop import improves

    picks: list[dict[str, Any]] = []
    for event in sorted(events, key=lambda e: e["t"]):
        val = event.get("val")
        if val is None or not math.isfinite(val):
            continue
        if not picks or improves(_scores(event), _scores(picks[-1]), "val_accuracy", "max"):
            picks.append(dict(event))
    return picks


def _scores(event: dict[str, Any]) -> dict[str, Any]:
    return {"val_accuracy": event.get("val"), "val_loss": event.get("loss")}


def curve_of(
    picks: Sequence[dict[str, Any]],
    tests: dict[str, float | None],
    unseen: dict[str, float | None] | None = None,
) -> list[list]:
    """The anytime curve: [seconds, validation, test accuracy] of each pick, and its accuracy on
    the test texts neither training nor validation holds (`unseen`) when given."""
    if unseen is None:
        return [[p["t"], p["val"], tests.get(p["id"])] for p in picks]
    return [[p["t"], p["val"], tests.get(p["id"]), unseen.get(p["id"])] for p in picks]


def value_at(curve: Sequence[Sequence[Any]], t: float, column: int = 2) -> float | None:
    """The pick's test (column 2), unseen test (column 3) or validation (column 1) accuracy at
    time `t` (None before the first pick, or when the pick has no such score)."""
    value = None
    for point in curve:
        if point[0] > t + 1e-9:
            break
        value = point[column] if column < len(point) else None
    return value


def time_to_reach(
    curve: Sequence[Sequence[Any]], target: float, until: float = math.inf
) -> float | None:
    """Seconds until the pick's test accuracy first reaches `target` (None: never, or only
    after `until`, the budget: a pick made past it does not count)."""
    for t, _, test, *_ in curve:
        if t > until + 1e-9:
            return None
        if test is not None and test >= target - 1e-12:
            return float(t)
    return None


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """Median, min and max of the values that exist, and how many there were."""
    present = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not present:
        return {"median": None, "min": None, "max": None, "n": 0}
    return {
        "median": float(statistics.median(present)),
        "min": min(present),
        "max": max(present),
        "n": len(present),
    }


def median_reach(times: Sequence[float | None]) -> float | None:
    """Median time to reach over seeds, a seed that never reached it counting as infinite
    (None when the median itself is infinite)."""
    if not times:
        return None
    value = statistics.median([math.inf if t is None else t for t in times])
    return None if math.isinf(value) else float(value)


def merge_runs(
    earlier: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Earlier runs plus new ones, a new run replacing an earlier one of the same size, seed
    and system (so seeds can be run in separate sittings and a failed one run again)."""

    def key(run: dict[str, Any]) -> tuple[str, int, str]:
        return run["size"], run["seed"], run["system"]

    fresh = {key(r) for r in new}
    return [r for r in earlier if key(r) not in fresh] + list(new)


def most_median(values: Sequence[float | None]) -> float | None:
    """The median over every seed, one without a pick yet counted lowest (left out, it raised
    the median: two picks of three gave their mean); None where the median falls on such a
    seed."""
    if not values:
        return None
    median = statistics.median([-math.inf if v is None else v for v in values])
    return None if math.isinf(median) else float(median)


def median_curve(curves: Sequence[Sequence[Sequence[Any]]], grid: Sequence[float]) -> list:
    """Per time in `grid`, the median over curves of the pick's test accuracy, a curve
    without a scored pick yet counted lowest (None where the median falls on one)."""
    return [most_median([value_at(c, t) for c in curves]) for t in grid]


def summarize(runs: Sequence[dict[str, Any]], budget_s: float) -> dict[str, dict[str, Any]]:
    """Per size and system: the spread over seeds of the test accuracy at the budget, the
    number of trials, the pick's validation accuracy, the anytime values and the time each
    system needed to reach the Trainer baseline's median test accuracy."""
    out: dict[str, dict[str, Any]] = {}
    for size in dict.fromkeys(r["size"] for r in runs):
        here = [r for r in runs if r["size"] == size and not r.get("error")]
        systems = [s for s in SYSTEMS if any(r["system"] == s for r in here)]
        rows: dict[str, Any] = {}
        for system in systems:
            mine = [r for r in here if r["system"] == system]
            rows[system] = {
                "seeds": [r["seed"] for r in mine],
                "test": spread([value_at(r["curve"], budget_s) for r in mine]),
                "unseen": spread([value_at(r["curve"], budget_s, column=3) for r in mine]),
                "final_test": spread([r.get("final_test_accuracy") for r in mine]),
                "val": spread([value_at(r["curve"], budget_s, column=1) for r in mine]),
                "trials": spread([r["trials"] for r in mine]),
                "wall_s": spread([r["wall_s"] for r in mine]),
                "anytime": {
                    f"{f:g}": most_median([value_at(r["curve"], f * budget_s) for r in mine])
                    for f in FRACTIONS
                },
            }
        target = rows["hf"]["test"]["median"] if "hf" in rows else None
        for system, row in rows.items():
            mine = [r for r in here if r["system"] == system]
            reach = [time_to_reach(r["curve"], target, budget_s) for r in mine] if target else []
            row["reach_hf_s"] = median_reach(reach) if target is not None else None
            row["reached_hf"] = sum(1 for t in reach if t is not None)
        out[size] = {"hf_target": target, "systems": rows}
    return out


def _acc(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _spread_text(s: dict[str, Any]) -> str:
    if s["median"] is None:
        return "-"
    return f"{s['median']:.3f} ({s['min']:.3f}–{s['max']:.3f})"


def sitting(results: dict[str, Any]) -> dict[str, Any]:
    """When, at which commit and for which seeds one sitting of the race ran."""
    return {k: results.get(k) for k in ("date", "seeds", "git_commit", "wall_s")}


def markdown(results: dict[str, Any]) -> str:
    """The race as tables: per size, the systems side by side, then the anytime curve."""
    m, b = results["machine"], results["budget_s"]
    lines = [
        f"Measured {m['date']} on {m['cpus']} CPU cores ({'GPU' if m['gpu'] else 'no GPU'}), "
        f"torch {m['torch']}, transformers {m['transformers']}; budget {b:g} s per system and "
        f"seed, seeds {results['seeds']}, data.seed {results.get('data_seed', 0)}, {THREADS} "
        "threads, one trial at a time"
        + (" (--quick: tiny model, 200 examples)" if results.get("quick") else "")
        + f"; the race took {results['wall_s'] / 60:.1f} min.",
        "",
    ]
    versions = results.get("versions") or {}
    if versions:
        lines[-1:-1] = [
            "Versions: "
            + ", ".join(f"{k} {versions[k]}" for k in sorted(versions))
            + f"; commit {short_commit(results.get('git_commit'))}.",
        ]
    if results.get("first_trials_shared"):
        lines[-1:-1] = [
            "Every system runs the search space's `first_trials` first (Optuna's enqueued "
            "trials), not this project's sweep alone.",
        ]
    sittings = results.get("sittings") or []
    if len(sittings) > 1:
        lines[-1:-1] = [
            "Run in sittings: "
            + "; ".join(
                f"seeds {s['seeds']} on {s['date']} at {short_commit(s.get('git_commit'))}"
                for s in sittings
            )
            + ".",
        ]
    for size, block in results["summary"].items():
        target = block["hf_target"]
        has_unseen = any(row.get("unseen", {}).get("n") for row in block["systems"].values())
        lines += [
            f"### {size} ({results['sizes'][size]})",
            "",
            f"Test accuracy of the pick at the budget, median (min–max) over seeds; "
            f"time to reach = median seconds until the pick's test accuracy first reached the "
            f"Trainer baseline's median ({_acc(target)})"
            + (
                "; unseen = the test texts that neither the training nor the validation split "
                "holds (by token ids)."
                if has_unseen
                else "."
            ),
            "",
            "| system | test acc at budget | "
            + ("unseen test acc at budget | " if has_unseen else "")
            + "as-run final test | trials | val acc of pick | time to reach hf | wall s |",
            "| --- | --- | --- | --- | --- | --- | --- |" + (" --- |" if has_unseen else ""),
        ]
        for system, row in block["systems"].items():
            n = len(row["seeds"])
            reach = row["reach_hf_s"]
            reach_text = "not reached" if reach is None else f"{reach:.0f} s"
            trials = row["trials"]["median"]
            lines.append(
                f"| {system} | {_spread_text(row['test'])} | "
                + (f"{_spread_text(row['unseen'])} | " if has_unseen else "")
                + f"{_spread_text(row['final_test'])} "
                f"| {trials:g} | {_acc(row['val']['median'])} "
                f"| {reach_text} ({row['reached_hf']}/{n}) | {row['wall_s']['median']:.0f} |"
            )
        lines += [
            "",
            "Anytime: test accuracy of the pick at a share of the budget (median over seeds; "
            "a seed without a pick yet counted lowest; - where the median falls on one).",
            "",
            "| system | " + " | ".join(f"{f:.0%} ({f * b:.0f} s)" for f in FRACTIONS) + " |",
            "| --- |" + " --- |" * len(FRACTIONS),
        ]
        for system, row in block["systems"].items():
            values = " | ".join(_acc(row["anytime"][f"{f:g}"]) for f in FRACTIONS)
            lines.append(f"| {system} | {values} |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# What the systems share


class Clock:
    """Seconds since a system started, less the time spent inside `paused()` (keeping a pick's
    weights for the scorer) and any `exclude`d seconds measured elsewhere."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.excluded = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.started - self.excluded

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.excluded += time.perf_counter() - started

    def exclude(self, seconds: float) -> None:
        self.excluded += seconds


def race_config(size: str, seed: int, quick: bool, *extra: str) -> Any:
    """experiment=default on the race's data (its subsample and split by DATA_SEED), search
    space and seed."""
    data = QUICK_OVERRIDES if quick else SIZES[size]
    return compose(
        "experiment=default",
        f"search_space={QUICK_SPACE if quick else SPACE}",
        *data,
        f"data.seed={DATA_SEED}",
        f"train.seed={seed}",
        f"sampler.seed={seed}",
        f"train.num_threads={THREADS}",
        *extra,
    )


def load_space(conf: Any) -> Any:
    from automl.config.resolve import as_dict
    from automl.config.schema import SEARCH_SPACE_DIR
    from automl.config.search_space import load_search_space
    from automl.model.load import load_model_config, num_blocks_of

    return load_search_space(
        conf.search_space, config=as_dict(conf),
        num_blocks=num_blocks_of(load_model_config(conf.model)),
        search_dir=SEARCH_SPACE_DIR,
    )  # fmt: skip


def first_points(conf: Any, space: Any) -> list[dict[str, Any]]:
    """The search space's `first_trials` by Optuna name, what this project's sweep runs first:
    every system runs them first (enqueued), so no system starts from a prior the others lack."""
    from automl.search.warm_start import load_warm_start

    warm = load_warm_start(conf, space)
    return warm.points_to_evaluate if warm else []


def save_state(model: Any, path: Path) -> None:
    """A pick's trainable weights, for `score_picks` after the run."""
    from safetensors.torch import save_file

    from automl.model.state import trainable_state

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in trainable_state(model).items()}, str(path))


def unseen_test(data: Any) -> Any:
    """The test texts that neither training nor validation (which selection read) holds, by
    token ids: the part of the test split no step could have memorised."""
    from automl.data.tokenized import TokenizedSplit
    from automl.export.evaluation import seen_in_training

    seen = seen_in_training([*data.train.input_ids, *data.val.input_ids], data.test.input_ids)
    keep = [i for i, s in enumerate(seen) if not s]
    return TokenizedSplit([data.test.input_ids[i] for i in keep], data.test.labels[keep])


def score_picks(
    conf: Any, data: Any, picks: dict[str, tuple[dict[str, Any], Path]]
) -> tuple[dict[str, float | None], dict[str, float | None]]:
    """Test accuracy of each pick, and on the unseen test texts (`unseen_test`): (its
    overrides, its trainable weights) -> the model rebuilt (seeded as its trial was, so a tiny
    model's random frozen part is the same) -> `evaluate` on the test split. The one scorer of
    every system."""
    import torch
    from safetensors.torch import load_file
    from transformers import set_seed

    from automl.config.resolve import as_dict
    from automl.model.build import build_model
    from automl.model.state import load_trainable_state
    from automl.search.trial import trial_config
    from automl.train.evaluate import evaluate

    base = as_dict(conf)
    unseen = unseen_test(data)
    out: dict[str, float | None] = {}
    out_unseen: dict[str, float | None] = {}
    for pick, (overrides, path) in picks.items():
        if not path.is_file():
            out[pick] = out_unseen[pick] = None
            continue
        c = trial_config(base, overrides)
        set_seed(c.train.seed)
        model, _ = build_model(c.model, c.peft, data.label_names, data.pad_token_id)
        load_trainable_state(model, load_file(str(path)))
        metrics = evaluate(model, data.test, data.pad_token_id, 128, torch.device("cpu"))
        out[pick] = metrics["val_accuracy"]  # evaluate names its scores val_* whatever the split
        out_unseen[pick] = (
            evaluate(model, unseen, data.pad_token_id, 128, torch.device("cpu"))["val_accuracy"]
            if len(unseen)
            else None
        )
    return out, out_unseen


def finish(
    system: str,
    conf: Any,
    data: Any,
    events: list[dict[str, Any]],
    kept: dict[str, tuple[dict[str, Any], Path]],
    wall_s: float,
    trials: int,
    **extra: Any,
) -> dict[str, Any]:
    """Score the picks and put a run's result together."""
    picks = incumbents(events)
    tests, unseen = score_picks(
        conf, data, {p["id"]: kept.get(p["id"], ({}, Path())) for p in picks}
    )
    curve = curve_of(picks, tests, unseen)
    return {
        "system": system,
        "wall_s": wall_s,
        "trials": trials,
        "events": events,
        "curve": curve,
        "final_val_accuracy": curve[-1][1] if curve else None,
        "final_test_accuracy": curve[-1][2] if curve else None,
        **extra,
    }


# ---------------------------------------------------------------------------------------------
# 1. ours: the project's sweep with its defaults


def run_ours(size: str, seed: int, budget_s: float, quick: bool, work: Path) -> dict[str, Any]:
    clock = Clock()  # every system's clock runs from its start: its own imports count
    import automl.search.sweep as sweep_module
    from automl.data.prepare import prepare_data
    from automl.search.sweep import run_sweep

    overrides = [o for o in sweep_overrides(work, "race") if "time_budget_s" not in o]
    conf = race_config(
        size, seed, quick, *overrides,
        f"sweep.time_budget_s={budget_s:g}", "sweep.num_samples=200",
        "tracking.enabled=false", "sweep.keep_checkpoints=true",
    )  # fmt: skip
    events: list[dict[str, Any]] = []
    keep = work / "picks"
    recording = _recording_callback(clock, keep, events)
    original = sweep_module.SweepCallback
    sweep_module.SweepCallback = recording  # type: ignore[misc]
    try:
        outcome = run_sweep(conf)
    finally:
        sweep_module.SweepCallback = original  # type: ignore[misc]
    wall = clock.now()
    params = {r.trial_id: r.params for r in outcome.records}
    kept = {e["id"]: (params.get(e["trial"], {}), keep / f"{e['id']}.safetensors") for e in events}
    # A pick whose copy did not happen (the budget ended while its checkpoint was saved) is the
    # best epoch of its trial: the trial's own checkpoint then holds the same weights.
    for record in outcome.records:
        pick = f"{record.trial_id}-e{record.best_epoch}"
        if pick in kept and not kept[pick][1].is_file() and record.checkpoint:
            kept[pick] = (record.params, Path(record.checkpoint) / "best.safetensors")
    data = prepare_data(conf)  # the same split the sweep used, test included
    summary = outcome.summary
    best = f"{summary['best_trial']}-e{summary['best_epoch']}"
    exported = {
        f"{r.trial_id}-e{r.best_epoch}": (r.params, Path(r.checkpoint) / "best.safetensors")
        for r in outcome.records
        if r.trial_id == summary["best_trial"] and r.checkpoint
    }
    # The exported model's test accuracy (summary, from the export folder through its own
    # tokenizer) against this race's scorer on the same trial's best weights: the two must
    # agree for the race's curve and the sweep's headline to be the same measurement.
    rescored = score_picks(conf, data, exported)[0].get(best) if exported else None
    out = finish(
        "ours", conf, data, events, kept, wall, summary["num_trials"],
        search_started_s=recording.started_at,
        statuses=summary["statuses"],
        export_test_accuracy=summary["test_accuracy"],
        export_rescored_test_accuracy=rescored,
        export_pick=best,
    )  # fmt: skip
    # the sweep's own answer is its export (the best trial's best epoch)
    out["final_test_accuracy"] = summary["test_accuracy"]
    out["final_val_accuracy"] = summary["best_value"]
    return out


def _recording_callback(clock: Clock, keep: Path, events: list[dict[str, Any]]) -> Any:
    """The sweep's own callback, also noting each reported epoch (time, validation accuracy
    and loss) and copying the weights of each new pick out of its checkpoint before Ray
    replaces it."""
    from automl.search.callback import SweepCallback
    from automl.train.checkpoint import BEST_FILE
    from automl.train.loop import improves

    class Recording(SweepCallback):
        started_at: float | None = None
        best: dict[str, Any] | None = None  # the pick's event
        pending: dict[str, str] = {}

        def setup(self, *args: Any, **info: Any) -> None:
            super().setup(*args, **info)
            type(self).started_at = clock.now()

        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            super().on_trial_result(iteration, trials, trial, result, **info)
            val, epoch = float(result["val_accuracy"]), int(result["epoch"])
            pick = f"{trial.trial_id}-e{epoch}"
            event = {"t": clock.now(), "val": val, "loss": float(result["val_loss"]),
                     "id": pick, "trial": trial.trial_id}  # fmt: skip
            events.append(event)
            cls = type(self)
            if math.isfinite(val) and (
                cls.best is None
                or improves(_scores(event), _scores(cls.best), "val_accuracy", "max")
            ):
                cls.best = event
                cls.pending[trial.trial_id] = pick

        def on_checkpoint(
            self, iteration: int, trials: list, trial: Any, checkpoint: Any, **info: Any
        ) -> None:
            super().on_checkpoint(iteration, trials, trial, checkpoint, **info)
            pick = type(self).pending.pop(trial.trial_id, None)
            if pick is not None:
                with clock.paused():  # the epoch's best.safetensors = this epoch's weights
                    keep.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(Path(checkpoint.path) / BEST_FILE, keep / f"{pick}.safetensors")

    return Recording


# ---------------------------------------------------------------------------------------------
# 2. Trainer.hyperparameter_search

HF_KEYS = (  # what Trainer can express: TrainingArguments, or the model through model_init
    "peft.lora_rank",
    "train.learning_rate",
    "train.epochs",
    "peft.frozen_layers",
    "train.weight_decay",
    "peft.lora_dropout",
    "train.warmup_ratio",
)


MODEL_INIT_KEYS = ("lora_rank", "frozen_layers", "lora_dropout")  # peft.<key>, via model_init
TRAINING_ARGS = {  # search-space key -> TrainingArguments field; keys the space lacks keep
    "train.learning_rate": "learning_rate",  # Trainer's own defaults
    "train.epochs": "num_train_epochs",
    "train.weight_decay": "weight_decay",
    "train.warmup_ratio": "warmup_steps",  # < 1: a share of the steps (transformers 5.x)
}


def run_hf(size: str, seed: int, budget_s: float, quick: bool, work: Path) -> dict[str, Any]:
    clock = Clock()
    import optuna
    import torch
    from transformers import Trainer, TrainerCallback, TrainingArguments

    from automl.data.prepare import prepare_data
    from automl.model.build import build_model
    from automl.model.load import load_tokenizer
    from benchmarks import hf

    torch.set_num_threads(THREADS)
    conf = race_config(size, seed, quick)
    data = prepare_data(conf)
    tokenizer = load_tokenizer(conf.model)
    full = load_space(conf)
    space = dataclasses.replace(full, params=tuple(p for p in full.params if p.key in HF_KEYS))
    current: dict[str, Any] = {}  # the running trial
    ended: dict[int, tuple[float, float | None]] = {}  # trial number -> (time, last val acc)
    begun: dict[int, float] = {}
    skipped: list[int] = []  # trials Optuna started after the budget (not trained, not counted)
    kept: dict[str, tuple[dict[str, Any], Path]] = {}

    def model_init(trial: Any = None) -> Any:
        peft = conf.peft
        if trial is not None:  # the same values hp_space gets (Optuna repeats a suggestion)
            if clock.now() >= budget_s:  # Optuna's timeout counts from its own start
                skipped.append(trial.number)
                raise optuna.TrialPruned("the budget ran out")
            values = space.suggest(trial)
            peft = dataclasses.replace(
                peft,
                **{field: values[f"peft.{field}"] for field in MODEL_INIT_KEYS
                   if f"peft.{field}" in values},
            )  # fmt: skip
            current.update(trial=trial, values=values, val=None)
            begun[trial.number] = clock.now()
        model, _ = build_model(conf.model, peft, data.label_names, data.pad_token_id)
        return model

    def hp_space(trial: Any) -> dict[str, Any]:
        values = space.suggest(trial)
        return {arg: values[key] for key, arg in TRAINING_ARGS.items() if key in values}

    class Watch(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if clock.now() >= budget_s:  # a hard stop at the budget, as Ray's time budget
                control.should_training_stop = True

        def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            current["val"] = float(kw["metrics"]["eval_accuracy"])

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            trial, val = current.get("trial"), current.get("val")
            if trial is None:
                return
            ended[trial.number] = (clock.now(), val)
            # keep the weights when this trial would be the new pick (it may still turn out
            # pruned: Trainer calls on_train_end before raising TrialPruned)
            done = [t.value for t in trial.study.get_trials(deepcopy=False)
                    if t.state == optuna.trial.TrialState.COMPLETE]  # fmt: skip
            if val is not None and (not done or val > max(done)):
                with clock.paused():
                    path = work / "picks" / f"t{trial.number}.safetensors"
                    save_state(kw["model"], path)
                    values = current["values"]
                    overrides = {k: values[k] for k in values if k.startswith("peft.")}
                    kept[f"t{trial.number}"] = (overrides, path)

    args = TrainingArguments(
        output_dir=str(work / "hf"),
        per_device_eval_batch_size=128,  # speed only: the model does not depend on it
        eval_strategy="epoch",  # the validation accuracy the objective reads
        # a float: Trainer casts a searched value to the field's type, and the int default
        # turned a searched warmup share (0.1) into 0 steps
        warmup_steps=0.0,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=seed,
    )
    train_ds, val_ds = hf.datasets(data.without_test())
    trainer = Trainer(
        model_init=model_init, args=args, train_dataset=train_ds, eval_dataset=val_ds,
        data_collator=hf.collator(tokenizer), processing_class=tokenizer,
        compute_metrics=hf.accuracy, callbacks=[Watch()],
    )  # fmt: skip
    # Trainer creates the study from these arguments: one made here holds the first trials
    storage = optuna.storages.InMemoryStorage()
    first = optuna.create_study(study_name="race-hf", storage=storage, direction="maximize")
    for point in first_points(conf, full):
        first.enqueue_trial(point)
    started = clock.now()
    trainer.hyperparameter_search(
        hp_space=hp_space,
        compute_objective=lambda m: m["eval_accuracy"],
        n_trials=HF_TRIALS,
        direction="maximize",
        backend="optuna",
        sampler=optuna.samplers.TPESampler(seed=seed),
        storage=storage,
        study_name="race-hf",
        load_if_exists=True,
        timeout=max(1.0, budget_s - clock.now()),  # the budget from the system's start
    )
    wall = clock.now()
    study = current["trial"].study if current.get("trial") is not None else None
    every = study.get_trials(deepcopy=False) if study is not None else []
    finished = [t for t in every if t.number not in skipped]
    complete = [t for t in finished if t.state == optuna.trial.TrialState.COMPLETE]
    events = [
        {"t": ended[t.number][0], "val": t.value, "id": f"t{t.number}"}
        for t in complete
        if t.number in ended
    ]
    return finish(
        "hf", conf, data, events, kept, wall, len(finished), search_started_s=started,
        states={s: sum(1 for t in finished if t.state.name == s) for s in ("COMPLETE", "PRUNED")},
        trial_s=[round(ended[n][0] - begun[n], 1) for n in sorted(ended) if n in begun],
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# 3. A bare Ray Tune + OptunaSearch script around run_trial


def _define(space: Any, trial: Any) -> None:
    space.suggest(trial)  # define-by-run: Ray records the values under their Optuna names


def _ray_trial(config: dict[str, Any], data: Any, base: dict[str, Any], keep: str) -> None:
    """The bare script's trainable: the sampled config -> `run_trial`, reporting each epoch's
    validation accuracy as it ends (as a Ray user's training loop does; one report at the
    trial's end left a trial the budget cut with no pick, and made every pick late)."""
    import logging

    from ray import tune

    from automl.search.trial import overrides_from_trial, trial_config
    from automl.train.checkpoint import BEST_FILE
    from automl.train.loop import run_trial

    logging.getLogger("automl").setLevel(logging.WARNING)
    conf = trial_config(base, overrides_from_trial(config))
    trial_id = tune.get_context().get_trial_id()
    epochs = [0]

    def report(metrics: dict[str, float], write: Any, improved: bool) -> None:
        epochs[0] += 1
        started = time.perf_counter()  # the weights, for the scorer (time not on the clock)
        if improved:  # only a trial's best epoch so far can be the race's pick
            folder = Path(keep) / f"{trial_id}-checkpoint"
            folder.mkdir(parents=True, exist_ok=True)
            write(folder)
            shutil.copy(folder / BEST_FILE, Path(keep) / f"{trial_id}-e{epochs[0]}.safetensors")
            shutil.rmtree(folder, ignore_errors=True)
        tune.report(
            {"val_accuracy": metrics["val_accuracy"], "epoch": epochs[0],
             "save_s": time.perf_counter() - started}
        )  # fmt: skip

    run_trial(conf, data, report)


def run_ray_optuna(
    size: str, seed: int, budget_s: float, quick: bool, work: Path
) -> dict[str, Any]:
    clock = Clock()
    import optuna
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from automl.config.resolve import as_dict
    from automl.data.prepare import prepare_data
    from automl.search.trial import overrides_from_trial

    conf = race_config(size, seed, quick)
    data = prepare_data(conf)
    space = load_space(conf)
    keep = work / "picks"
    events: list[dict[str, Any]] = []
    params: dict[str, dict[str, Any]] = {}

    class Record(tune.Callback):
        def on_trial_result(
            self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
        ) -> None:
            clock.exclude(float(result.get("save_s", 0.0)))
            pick = f"{trial.trial_id}-e{int(result['epoch'])}"
            events.append({"t": clock.now(), "val": float(result["val_accuracy"]),
                           "id": pick, "trial": trial.trial_id})  # fmt: skip
            params[trial.trial_id] = overrides_from_trial(dict(trial.config))

    ray.init(num_cpus=THREADS, include_dashboard=False, log_to_driver=False)
    try:
        started = clock.now()
        tuner = tune.Tuner(
            tune.with_resources(
                tune.with_parameters(
                    _ray_trial, data=data.without_test(), base=as_dict(conf), keep=str(keep)
                ),
                {"cpu": THREADS},
            ),
            tune_config=tune.TuneConfig(
                search_alg=OptunaSearch(
                    space=functools.partial(_define, space),
                    metric="val_accuracy",
                    mode="max",
                    sampler=optuna.samplers.TPESampler(seed=seed),
                    points_to_evaluate=first_points(conf, space) or None,
                ),  # fmt: skip
                num_samples=HF_TRIALS,
                time_budget_s=budget_s,
                max_concurrent_trials=1,
            ),
            run_config=tune.RunConfig(
                storage_path=str(work / "ray"), callbacks=[Record()], verbose=0
            ),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
    wall = clock.now()
    kept = {e["id"]: (params[e["trial"]], keep / f"{e['id']}.safetensors") for e in events}
    return finish(
        "ray_optuna", conf, data, events, kept, wall, len(results), search_started_s=started
    )


# ---------------------------------------------------------------------------------------------
# 4. One epoch is all you need (Egele et al., 2023)


class _FirstEpochDone(Exception):
    """Raised by the reporter after a candidate's first epoch, to end its `run_trial`."""


def _beats(best: list[float]) -> Any:
    return lambda val: math.isfinite(val) and (not best or val > best[0])


class _FirstEpoch:
    """The reporter of a first-epoch candidate: notes the epoch's metrics, writes the
    checkpoint when the candidate may go on (its cost counts: the method needs it) or is the
    new pick (so its weights can be scored), then stops the trial."""

    def __init__(self, folder: Path, resumable: bool, is_pick: Any) -> None:
        self.folder, self.resumable, self.is_pick = folder, resumable, is_pick
        self.metrics: dict[str, float] = {}

    def report(self, metrics: dict[str, float], write: Any, _: bool) -> None:
        self.metrics = dict(metrics)
        if self.resumable or self.is_pick(metrics["val_accuracy"]):
            self.folder.mkdir(parents=True, exist_ok=True)
            write(self.folder)
        raise _FirstEpochDone


def run_one_epoch(size: str, seed: int, budget_s: float, quick: bool, work: Path) -> dict[str, Any]:
    """Random candidates, each trained for the first epoch of its own schedule (its sampled
    epochs), until half the budget is used; then the best by validation go on from that
    epoch's checkpoint (not from scratch) to their sampled epochs, the top 3 first and the
    next ones while the remaining time fits them (estimated from their first epoch); time
    still left goes to more first-epoch candidates (each may be the pick), until the budget."""
    clock = Clock()
    import optuna
    import torch

    from automl.config.resolve import as_dict
    from automl.data.prepare import prepare_data
    from automl.search.trial import trial_config
    from automl.train.checkpoint import BEST_FILE
    from automl.train.loop import run_trial

    torch.set_num_threads(THREADS)
    conf = race_config(size, seed, quick)
    data = prepare_data(conf)
    train_data = data.without_test()
    space = load_space(conf)
    base = as_dict(conf)
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    for point in first_points(conf, space):
        study.enqueue_trial(point)
    events: list[dict[str, Any]] = []
    kept: dict[str, tuple[dict[str, Any], Path]] = {}
    best: list[float] = []  # the pick's validation accuracy so far

    def keep_if_pick(pick: str, val: float, values: dict[str, Any], write: Any) -> None:
        events.append({"t": clock.now(), "val": val, "id": pick})
        if _beats(best)(val):
            best[:] = [val]
            with clock.paused():
                path = work / "picks" / f"{pick}.safetensors"
                path.parent.mkdir(parents=True, exist_ok=True)
                write(path)
                kept[pick] = (values, path)

    candidates: list[dict[str, Any]] = []

    def first_epoch(resumable: bool) -> None:
        trial = study.ask()
        values = space.suggest(trial)
        n = len(candidates)
        c = trial_config(base, values)
        folder = work / "candidates" / f"c{n}"
        first = _FirstEpoch(folder, resumable=resumable and c.train.epochs > 1,
                            is_pick=_beats(best))  # fmt: skip
        with contextlib.suppress(_FirstEpochDone):
            run_trial(c, train_data, first.report)
        val = first.metrics.get("val_accuracy", math.nan)
        if math.isfinite(val):
            study.tell(trial, val)
        else:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        keep_if_pick(f"c{n}-e1", val, values, lambda p, f=folder: shutil.copy(f / BEST_FILE, p))
        candidates.append(
            {"n": n, "val": val, "values": values, "folder": folder, "epochs": c.train.epochs,
             "epoch_s": first.metrics.get("epoch_s", 0.0)}
        )  # fmt: skip
        _drop_outside_top(candidates, ONE_EPOCH_KEEP)

    started = clock.now()
    while clock.now() < budget_s / 2:
        first_epoch(resumable=True)

    ranked = sorted((c for c in candidates if math.isfinite(c["val"])), key=lambda c: -c["val"])
    trained_on = 0
    for rank, cand in enumerate(ranked[:ONE_EPOCH_KEEP]):
        if cand["epochs"] <= 1:
            continue  # its first epoch was all of it
        estimate = (cand["epochs"] - 1) * cand["epoch_s"]
        if clock.now() + estimate > budget_s:
            continue  # would not finish inside the budget; a shorter one further down may
        if rank >= ONE_EPOCH_TOP_K and clock.now() >= budget_s:
            break
        c = trial_config(base, cand["values"])
        result = run_trial(c, train_data, resume_from=cand["folder"])
        trained_on += 1
        val = float(result.best.get("val_accuracy", float("nan")))
        keep_if_pick(f"c{cand['n']}-full", val, cand["values"],
                     lambda p, m=result.model: save_state(m, p))  # fmt: skip
    # the budget's rest (a fifth of it went unused): more first epochs while one fits in it
    ranked_n = len(candidates)
    epoch_s = statistics.median([c["epoch_s"] for c in candidates if c["epoch_s"]] or [0.0])
    while clock.now() + epoch_s <= budget_s:
        first_epoch(resumable=False)
    wall = clock.now()
    return finish(
        "one_epoch", conf, data, events, kept, wall, len(candidates),
        search_started_s=started, trained_on=trained_on,
        filled_with=len(candidates) - ranked_n,
    )  # fmt: skip


def _drop_outside_top(candidates: list[dict[str, Any]], k: int) -> None:
    """Disk stays bounded: only the k best candidates keep a resumable checkpoint."""
    ranked = sorted(candidates, key=lambda c: -c["val"] if math.isfinite(c["val"]) else math.inf)
    for cand in ranked[k:]:
        shutil.rmtree(cand["folder"], ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# The orchestrator: every (system, seed) alone in its own process, in a temp folder

RUNNERS = {
    "ours": run_ours,
    "hf": run_hf,
    "ray_optuna": run_ray_optuna,
    "one_epoch": run_one_epoch,
}


def run_one(system: str, seed: int, size: str, budget_s: float, quick: bool) -> dict[str, Any]:
    """One system and seed, in a temp folder (Ray, MLflow and checkpoints land there)."""
    import torch

    quiet()
    torch.set_num_threads(THREADS)
    # Ray workers import the bare script's trainable from this module
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p
    )
    with tempfile.TemporaryDirectory(prefix=f"race-{system}-") as tmp, contextlib.chdir(tmp):
        out = RUNNERS[system](size, seed, budget_s, quick, Path(tmp))
    return {
        **out, "seed": seed, "size": size, "budget_s": budget_s, "quick": quick,
        "data_seed": DATA_SEED,
    }  # fmt: skip


def run_race(
    systems: Sequence[str], sizes: Sequence[str], seeds: Sequence[int], budget_s: float,
    quick: bool,
) -> list[dict[str, Any]]:  # fmt: skip
    """Sequentially, systems interleaved within each seed, so noise hits them alike; the order
    turns with the seed, so no system always runs first (or last)."""
    runs = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="race-") as tmp:
        for size in sizes:
            for seed in seeds:  # by the seed, so seeds added one sitting at a time turn too
                turn = seed % len(systems)
                for system in [*systems[turn:], *systems[:turn]]:
                    out = Path(tmp) / f"{size}-{seed}-{system}.json"
                    cmd = [
                        sys.executable, "-m", "benchmarks.race", "--one", system,
                        "--seed", str(seed), "--size", size, "--budget-s", f"{budget_s:g}",
                        "--out", str(out), "--data-seed", str(DATA_SEED),
                        *(["--quick"] if quick else []),
                    ]  # fmt: skip
                    progress(f"race: {system} seed {seed} ({size}, {budget_s:g} s) ...")
                    done = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
                    if done.returncode == 0 and out.is_file():
                        run = json.loads(out.read_text())
                        progress(
                            f"race: {system} seed {seed}: test {_acc(run['final_test_accuracy'])}"
                            f", {run['trials']} trials, {run['wall_s']:.0f} s"
                        )
                    else:
                        tail = (done.stderr or "").strip().splitlines()[-15:]
                        progress(f"race: {system} seed {seed} FAILED:\n" + "\n".join(tail))
                        run = {"system": system, "seed": seed, "size": size,
                               "error": "\n".join(tail)}  # fmt: skip
                    runs.append(run)
    return runs


def plot(results: dict[str, Any], path: Path) -> None:
    """Median anytime curve per system, one panel per size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(results["summary"])
    b = results["budget_s"]
    grid = [b * i / 200 for i in range(201)]
    fig, axes = plt.subplots(1, len(sizes), figsize=(6 * len(sizes), 4), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        for system in SYSTEMS:
            mine = (r for r in results["runs"] if r["size"] == size and r["system"] == system)
            curves = [r["curve"] for r in mine if not r.get("error")]
            if not curves:
                continue
            values = median_curve(curves, grid)
            ax.step(grid, [math.nan if v is None else v for v in values], where="post",
                    label=system)  # fmt: skip
        target = results["summary"][size]["hf_target"]
        if target is not None:
            ax.axhline(target, color="grey", linestyle=":", linewidth=1)
        ax.set(title=f"{size}: test accuracy of the pick (median of seeds)",
               xlabel="seconds", ylabel="test accuracy", xlim=(0, b))  # fmt: skip
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="subsample", choices=["subsample", "full", "both"])
    parser.add_argument("--seeds", type=seed_list, default="0,1,2")
    parser.add_argument(
        "--budget-s", type=float, default=None, help="per system and seed (180; --quick: 20)"
    )
    parser.add_argument("--systems", default=",".join(SYSTEMS))
    parser.add_argument("--quick", action="store_true", help="smoke: tiny model, 200 examples")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--out", type=Path, default=None,
                       help="results folder (--one: the run's JSON file)")  # fmt: skip
    parser.add_argument("--one", choices=SYSTEMS, help="run one system (used by the race)")
    parser.add_argument("--seed", type=int, default=0, help="with --one")
    parser.add_argument(
        "--data-seed", type=int, default=0,
        help="data.seed of every run: another subsample and train/validation/test split",
    )  # fmt: skip
    where.add_argument(
        "--add-to", type=Path, default=None, metavar="DIR",
        help="merge with the runs in DIR/race.json (same budget) and write the results there",
    )  # fmt: skip
    args = parser.parse_args(argv)
    global DATA_SEED
    DATA_SEED = args.data_seed
    budget = args.budget_s or (QUICK_BUDGET_S if args.quick else 180.0)
    if args.one:
        out_file = (args.out or Path(f"race-{args.one}.json")).resolve()
        run = run_one(args.one, args.seed, args.size, float(budget), args.quick)
        out_file.write_text(json.dumps(run, indent=1, default=str))
        return 0
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"--systems: unknown {unknown}; choose from {', '.join(SYSTEMS)}")
    sizes = ["subsample", "full"] if args.size == "both" else [args.size]
    seeds = args.seeds
    if args.quick:
        sizes, seeds = ["subsample"], seeds[:1]
    # --quick never overwrites the committed results
    out_dir = args.add_to or args.out
    out_dir = out_dir or (Path(tempfile.mkdtemp(prefix="race-quick-")) if args.quick else RESULTS)
    out_dir = out_dir.resolve()
    earlier: dict[str, Any] = {}
    if args.add_to:  # checked before any run, so a long race never ends in a refusal
        try:
            earlier = json.loads((out_dir / "race.json").read_text())
        except (OSError, ValueError) as err:
            parser.error(f"--add-to: cannot read {out_dir / 'race.json'}: {err}")
        if not earlier.get("first_trials_shared"):
            parser.error(
                f"--add-to: {out_dir / 'race.json'} gave the first_trials to this project's "
                "sweep alone, this race to every system: the runs would not compare"
            )
        ours = [e for r in earlier.get("runs", []) if r["system"] == "ours" for e in r["events"]]
        if any("loss" not in e for e in ours):  # (recorded since 2026-12-07, 21:00 UTC)
            parser.error(
                f"--add-to: {out_dir / 'race.json'} credits this project with the first of "
                "equal validation scores, this race with the lower validation loss (its "
                "export's rule): the runs would not compare"
            )
        if earlier.get("data_seed", 0) != DATA_SEED:
            parser.error(
                f"--add-to: {out_dir / 'race.json'} ran on data.seed "
                f"{earlier.get('data_seed', 0)}, this race on {DATA_SEED}: other test texts"
            )
        if earlier.get("budget_s") != float(budget) or earlier.get("quick") != args.quick:
            parser.error(
                f"--add-to: {out_dir / 'race.json'} ran {earlier.get('budget_s')} s per run"
                f"{' (--quick)' if earlier.get('quick') else ''}, this race {float(budget)} s"
                f"{' (--quick)' if args.quick else ''}: the runs would not compare"
            )
    started = time.monotonic()
    runs = run_race(systems, sizes, seeds, float(budget), args.quick)
    runs = merge_runs(earlier.get("runs", []), runs)
    from automl.provenance import git_commit, package_versions

    results = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "versions": package_versions(),
        "git_commit": git_commit(),
        "quick": args.quick,
        "budget_s": float(budget),
        "threads": THREADS,
        "search_space": SPACE,
        "data_seed": DATA_SEED,
        "first_trials_shared": True,  # every system runs the space's first_trials first
        "sizes": {
            **earlier.get("sizes", {}),
            **{
                s: ", ".join(QUICK_OVERRIDES if args.quick else SIZES[s]) or "whole task"
                for s in sizes
            },
        },
        "seeds": sorted({r["seed"] for r in runs}),
        "systems": [s for s in SYSTEMS if any(r["system"] == s for r in runs)],
        "wall_s": time.monotonic() - started + earlier.get("wall_s", 0.0),
        "sittings": [
            *earlier.get("sittings", [sitting(earlier)] if earlier else []),
            sitting(
                {
                    "date": time.strftime("%Y-%m-%d %H:%M"),
                    "seeds": seeds,
                    "git_commit": git_commit(),
                    "wall_s": time.monotonic() - started,
                }
            ),
        ],
        "summary": summarize(runs, float(budget)),
        "runs": runs,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "race.json").write_text(json.dumps(results, indent=1, default=str))
    text = markdown(results)
    (out_dir / "race.md").write_text(text)
    plot(results, out_dir / "race_curve.png")
    print(text)
    progress(f"wrote {out_dir}/race.{{json,md}} and race_curve.png in "
             f"{results['wall_s'] / 60:.1f} min")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
