"""Replay stopping rules on recorded unpruned sweeps: which trial-epochs would a rule have saved,
and would the sweep still have picked the same model?

`python -m benchmarks.pruning --pruners none --out DIR` records every trial's per-epoch history.
With the random sampler a sweep's configurations do not depend on results, and training is
deterministic per seed, so a pruned sweep's trials are prefixes of the unpruned ones: the real
`OverfitStopper` and Ray's `ASHAScheduler`, fed those histories in run order, stop where they
would have stopped.
When the replayed pick is the unpruned pick, its test accuracy is the recorded one; when it is not,
the test accuracy is unknown and the replay says so (it never guesses).

Use it to choose settings on some seeds, then confirm them with `benchmarks.pruning` on others:
settings chosen and judged on the same sweeps would be judged on data their selection saw.

python -m benchmarks.pruning_replay RESULTS.json [--set patience=2 --set signal=val_loss ...]
    [--asha-grace 1] [--asha-reduction 2] [--no-asha]      (defaults: the project's pruner)
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from automl.config.schema import PrunerConfig
from automl.search.callback import final_status
from automl.search.pareto import choose_export
from automl.search.stopping import OverfitRule, build_stopping
from automl.search.tuner import overfit_rule
from benchmarks.common import median
from benchmarks.pruning import load_result

DEFAULTS = PrunerConfig()  # unless told otherwise, replay the project's default pruner


def replay_sweep(
    trials: list[dict[str, Any]],
    rule: OverfitRule,
    asha: tuple[int, float] | None,
    max_t: int,
    *,
    prune: bool = True,
) -> dict[str, Any]:
    """Run the stopper (and ASHA, if given as (grace, reduction)) over one sweep's histories;
    with ``prune=False`` nothing stops, which gives the unpruned sweep's own pick."""
    pruner = ("overfit_asha" if asha else "overfit") if prune else "none"
    stopper, scheduler = build_stopping(
        pruner, rule, max_t=max_t,
        grace_period=asha[0] if asha else 1, reduction_factor=asha[1] if asha else 2.0,
        asha_metric=f"best_{rule.metric}",  # as the sweep's tuner sets it: the running best
    )  # fmt: skip
    sign = 1.0 if rule.mode == "max" else -1.0  # compare "higher is better" throughout
    rows = []
    for i, t in enumerate(trials):
        trial = SimpleNamespace(trial_id=f"t{i}")
        if scheduler is not None:
            scheduler.on_trial_add(None, trial)
        run, running_best = 0, None
        for epoch, h in enumerate(t["history"], start=1):
            value = h[rule.metric]
            if running_best is None or sign * value > sign * running_best:
                running_best = value
            result = {**h, "epoch": epoch, "training_iteration": epoch,
                      f"best_{rule.metric}": running_best}  # fmt: skip
            run = epoch
            # Ray asks the stopper first and the scheduler only if the stopper let the trial go on
            if stopper is not None and stopper(trial.trial_id, result):
                break
            if scheduler is not None and epoch < max_t:
                if scheduler.on_trial_result(None, trial, result) == "STOP":
                    break
        reason = stopper.reason(trial.trial_id) if stopper is not None else None
        why, _ = final_status(run, len(t["history"]), reason)
        seen = [sign * h[rule.metric] for h in t["history"][:run]]
        best = max(range(run), key=lambda e: seen[e])  # first best, as the sweep picks
        rows.append({"epochs_run": run, "status": why, "best_epoch": best + 1,
                     "best_value": sign * seen[best]})  # fmt: skip
    pick = rows.index(choose_export(rows, rule.mode))  # the sweep's own export choice
    epochs = sum(r["epochs_run"] for r in rows)
    pick_at = (pick, rows[pick]["best_epoch"])
    return {"trials": rows, "trial_epochs": epochs, "pick": pick_at,
            "pick_value": rows[pick]["best_value"]}  # fmt: skip


def replay(
    result: dict[str, Any], rule: OverfitRule, asha: tuple[int, float] | None
) -> dict[str, Any]:
    """Every recorded unpruned sweep, replayed; savings and whether each pick survived."""
    per_seed = []
    for run in (r for r in result["runs"] if r["pruner"] == "none"):
        trials = run["trials"]
        if not all(t.get("history") for t in trials):
            raise SystemExit(f"seed {run['seed']}: no per-epoch history (rerun benchmarks.pruning)")
        max_t = max(len(t["history"]) for t in trials)
        full = replay_sweep(trials, rule, None, max_t, prune=False)
        pruned = replay_sweep(trials, rule, asha, max_t)
        same = pruned["pick"] == full["pick"]
        per_seed.append({
            "seed": run["seed"],
            "epochs": f"{pruned['trial_epochs']} / {full['trial_epochs']}",
            "saving": 1 - pruned["trial_epochs"] / full["trial_epochs"],
            "same_pick": same,
            "test": run["test_accuracy"] if same else None,
            "statuses": [f"{r['status']}@{r['epochs_run']}" for r in pruned["trials"]],
            "pick_val": f"{pruned['pick_value']:.4f} vs {full['pick_value']:.4f}",
        })  # fmt: skip
    return {
        "per_seed": per_seed,
        "median_saving": median([s["saving"] for s in per_seed]),
        "picks_kept": sum(s["same_pick"] for s in per_seed),
    }


def _setting(text: str) -> tuple[str, Any]:
    key, _, raw = text.partition("=")
    if not key or not raw or key not in OverfitRule.__dataclass_fields__:
        raise argparse.ArgumentTypeError(f"{text!r}: expected FIELD=VALUE of OverfitRule")
    value: Any = raw
    for cast in (int, float):
        try:
            value = cast(raw)
            break
        except ValueError:
            continue
    return key, None if raw == "none" else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, help="a benchmarks.pruning json with none runs")
    parser.add_argument("--set", type=_setting, action="append", default=[], dest="settings")
    parser.add_argument("--asha-grace", type=int, default=DEFAULTS.asha_grace_period)
    parser.add_argument("--asha-reduction", type=float, default=DEFAULTS.asha_reduction_factor)
    parser.add_argument("--no-asha", action="store_true")
    args = parser.parse_args(argv)
    try:
        # the rule a default sweep builds (sweep.metric val_accuracy, max), then the --set changes
        default = overfit_rule(DEFAULTS, metric="val_accuracy", mode="max")
        rule = dataclasses.replace(default, **dict(args.settings))
    except ValueError as e:
        parser.error(str(e))
    try:
        result = load_result(args.results)
    except ValueError as e:
        parser.error(str(e))
    if not any(r.get("pruner") == "none" for r in result["runs"]):
        parser.error(
            f"{args.results}: no unpruned sweep to replay (run with --pruners none --out DIR)"
        )
    asha = None if args.no_asha else (args.asha_grace, args.asha_reduction)
    out = replay(result, rule, asha)
    print(f"rule {rule}; ASHA {asha}")
    for s in out["per_seed"]:
        print(f"  seed {s['seed']}: epochs {s['epochs']} (saved {100 * s['saving']:.0f} %), "
              f"same pick {s['same_pick']} (val {s['pick_val']}), test {s['test']}; "
              f"{' '.join(s['statuses'])}")  # fmt: skip
    if per_seed := out["per_seed"]:
        print(f"  median saved {100 * out['median_saving']:.0f} %, "
              f"picks kept {out['picks_kept']} of {len(per_seed)}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
