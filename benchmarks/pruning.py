"""Pruning that pays (issue #10, part 3): where trials overfit, how many trial-epochs do overfit
pruning + ASHA save, and at what cost in held-out test accuracy?

Setting: full fine-tuning of MiniLM's top blocks on the 1,000-example subsample, with epochs as the
trial's upper budget (6, or `--epochs`) — few examples and many epochs, where trials can overfit
(whether they do depends on the learning rates searched, `--lr`: check the histories). The same
sweep runs with `pruner=overfit_asha` (the default) and `pruner=none`, per seed, with the random
sampler: it draws the same configurations whatever the results, so the two sweeps differ only by
pruning.
Each sweep exports its pick (best validation epoch) and scores it on the held-out test split.

python -m benchmarks.pruning [--seeds 0,1,2] [--trials 4] [--epochs 6] [--lr 3e-5,2e-4] [--quick]
    [--out DIR] [--pruners overfit_asha,none] [--pruner-set pruner.patience=2 ...]
    (one kind alone, `--pruners none`, needs --out: the committed pruning.json compares both)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    compose,
    machine,
    median,
    progress,
    quiet,
    saving,
    seed_list,
    sweep_overrides,
)
from benchmarks.report import RESULTS

SPACE = """\
# Full fine-tuning where it overfits: written by benchmarks/pruning.py for its sweeps.
train.learning_rate: {{type: float, low: {lr_low:g}, high: {lr_high:g}, log: true}}
peft.frozen_layers: {{type: int, low: {low}, high: {high}}}
train.epochs: {{type: categorical, choices: [{epochs}]}}   # the upper budget; ASHA's max_t
"""
PRUNERS = ("overfit_asha", "none")


def sweep(
    tmp: Path,
    pruner: str,
    seed: int,
    trials: int,
    quick: bool,
    epochs: int = 6,
    pruner_overrides: tuple[str, ...] = (),
    lr: tuple[float, float] = (3e-5, 2e-4),
) -> dict[str, Any]:
    """One sweep; what it cost (trial-epochs, wall) and what its pick scores on test."""
    from automl.search.sweep import run_sweep

    space = tmp / "overfit_ft.yaml"
    low, high = (0, 1) if quick else (3, 5)
    space.write_text(SPACE.format(low=low, high=high, epochs=epochs, lr_low=lr[0], lr_high=lr[1]))
    size = ["model=tiny_bert", "data.max_examples=300"] if quick else ["data.max_examples=1000"]
    conf = compose(
        "experiment=default", *sweep_overrides(tmp, f"{pruner}-s{seed}"), *size,
        f"search_space={space}", "peft.lora_rank=0", f"pruner={pruner}", "sampler=random",
        f"sampler.seed={seed}", f"train.seed={seed}", f"sweep.num_samples={trials}",
        *(pruner_overrides if pruner != "none" else ()),
    )  # fmt: skip
    started = time.perf_counter()
    summary = run_sweep(conf).summary
    out = {
        "pruner": pruner,
        "seed": seed,
        "batching": f"{conf.train.batching}, {conf.train.bucket_edges} edges",
        "pruner_settings": (
            f"overfit rule (signal {conf.pruner.signal}, grace {conf.pruner.grace_period},"
            f" patience {conf.pruner.patience}, min_delta {conf.pruner.min_delta:g})"
            f" + ASHA (grace {conf.pruner.asha_grace_period},"
            f" reduction {conf.pruner.asha_reduction_factor:g})"
        ),
        "trial_epochs": summary["trial_epochs"],
        "wall_s": time.perf_counter() - started,
        "best_val": summary["best_value"],
        "test_accuracy": summary["test_accuracy"],
        "statuses": summary["statuses"],
        "trials": [
            {
                "params": r["params"],
                "status": r["status"],
                "epochs_run": r["epochs_run"],
                "best_value": r["best_value"],
                "best_epoch": r.get("best_epoch"),
                # per-epoch scores and losses, so a stopping rule can be replayed offline
                "history": r.get("history", []),
            }
            for r in summary["trials"]
        ],  # fmt: skip
    }
    progress(
        f"pruning {pruner} seed {seed}: {out['trial_epochs']} trial-epochs, "
        f"test {out['test_accuracy']:.4f}, {out['wall_s']:.0f} s, {out['statuses']}"
    )
    return out


def load_result(path: Path) -> dict[str, Any]:
    """A result file this benchmark wrote; a ValueError naming the file when it is not one."""
    try:
        result = json.loads(path.read_text())
        result["runs"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        problem = f"{type(e).__name__}: {e}"
        raise ValueError(f"{path}: not a benchmarks.pruning result ({problem})") from e
    return result


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per seed: epochs and wall saved, test accuracy difference; medians over seeds."""
    by = {(r["pruner"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    per_seed = []
    for s in seeds:
        pruned, full = by[("overfit_asha", s)], by[("none", s)]
        per_seed.append(
            {"seed": s, "epochs_pruned": pruned["trial_epochs"],
             "epochs_none": full["trial_epochs"],
             "epoch_saving": saving(pruned["trial_epochs"], full["trial_epochs"]),
             "wall_saving": saving(pruned["wall_s"], full["wall_s"]),
             "test_pruned": pruned["test_accuracy"], "test_none": full["test_accuracy"]}
        )  # fmt: skip
    test_pruned = median([p["test_pruned"] for p in per_seed])
    test_none = median([p["test_none"] for p in per_seed])
    diff = 100 * (test_pruned - test_none)
    epoch_saving = median([p["epoch_saving"] for p in per_seed])
    return {
        "per_seed": per_seed,
        "median_epoch_saving": epoch_saving,
        "median_wall_saving": median([p["wall_saving"] for p in per_seed]),
        "median_test_pruned": test_pruned,
        "median_test_none": test_none,
        "test_diff_points": diff,
        "met": epoch_saving >= 0.4 and diff >= -0.5,
    }


def markdown(result: dict[str, Any]) -> str:
    m, s = result["machine"], result["summary"]
    lines = [
        "# Pruning that pays: overfit pruning + ASHA against no pruning",
        "",
        f"Machine: {m['cpus']} CPUs, GPU {m.get('gpu', False)}, torch {m['torch']}, "
        f"transformers {m['transformers']}; date {m['date']}; {result['wall_s'] / 60:.0f} min.",
        "",
        f"Setup: {result['setup']}",
        "",
        "| seed | trial-epochs pruned / none | epochs saved | wall saved | test acc pruned | "
        "test acc none |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for p in s["per_seed"]:
        lines.append(
            f"| {p['seed']} | {p['epochs_pruned']} / {p['epochs_none']} | "
            f"{100 * p['epoch_saving']:.0f} % | {100 * p['wall_saving']:.0f} % | "
            f"{p['test_pruned']:.4f} | {p['test_none']:.4f} |"
        )
    lines += [
        f"| **median** | | **{100 * s['median_epoch_saving']:.0f} %** | "
        f"{100 * s['median_wall_saving']:.0f} % | {s['median_test_pruned']:.4f} | "
        f"{s['median_test_none']:.4f} |",
        "",
        f"Goal: >= 40 % of trial-epochs saved at equal median test accuracy (within 0.5 point): "
        f"{'met' if s['met'] else '**not met**'} ({100 * s['median_epoch_saving']:.0f} % saved, "
        f"test accuracy {s['test_diff_points']:+.1f} points).",
    ]
    return "\n".join(lines) + "\n"


def _lr_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LOW,HIGH such as 1e-4,5e-4") from None
    if not 0 < low < high:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 < LOW < HIGH")
    return low, high


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=seed_list, default="0,1,2")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=6, help="the trials' upper budget")
    parser.add_argument(
        "--lr", type=_lr_range, default=(3e-5, 2e-4), metavar="LOW,HIGH",
        help="the learning-rate range searched, log scale (default 3e-5,2e-4)",
    )  # fmt: skip
    parser.add_argument(
        "--pruner-set",
        action="append",
        default=[],
        metavar="pruner.KEY=VALUE",
        help="override a setting of the pruned sweeps' pruner (repeatable)",
    )
    parser.add_argument(
        "--pruners",
        type=lambda v: tuple(v.split(",")),
        default=PRUNERS,
        help=f"which sweeps to run (default {','.join(PRUNERS)}); the summary needs both "
        "(benchmarks.pruning_combine joins sweeps run apart)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny model, for debugging")
    parser.add_argument("--out", type=Path, default=None, help=f"results folder ({RESULTS})")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs {args.epochs}: expected at least 1")
    if unknown := set(args.pruners) - set(PRUNERS):
        parser.error(f"--pruners: unknown {sorted(unknown)}; expected {','.join(PRUNERS)}")
    if args.out is None and set(args.pruners) != set(PRUNERS):  # no summary: data for a replay
        parser.error(
            f"--pruners {','.join(args.pruners)}: one kind of sweep; name its own --out (the "
            f"committed {RESULTS.name}/pruning.json compares both)"
        )
    for setting in args.pruner_set:
        if not setting.startswith("pruner.") or "=" not in setting:
            parser.error(f"--pruner-set {setting!r}: expected pruner.KEY=VALUE")
    seeds = args.seeds
    out = (args.out or RESULTS).resolve()
    quiet()
    started = time.monotonic()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-pruning-") as work, contextlib.chdir(work):
        for i, seed in enumerate(seeds):
            # each kind first in every other seed: a slowdown over the sitting (a warming
            # machine, a filling disk) falls on both alike
            for pruner in args.pruners if i % 2 == 0 else args.pruners[::-1]:
                runs.append(sweep(Path(work), pruner, seed, args.trials, args.quick,
                                  args.epochs, tuple(args.pruner_set), args.lr))  # fmt: skip
    result = {
        "machine": machine(),
        "wall_s": time.monotonic() - started,
        "setup": (
            f"{'tiny BERT, 300 examples' if args.quick else 'MiniLM, data.max_examples=1000'}"
            f" (test split 10 %), full fine-tuning (lora_rank 0) of the blocks above 3-5 frozen"
            f" ones, lr {args.lr[0]:g}..{args.lr[1]:g} log, {args.epochs} epochs as the upper"
            f" budget;"
            f" batching {runs[0]['batching']}; {args.trials} trials per"
            f" sweep, random sampler seeded per seed (the same configurations with and without"
            f" pruning), one trial at a time with 2 threads; pruner overfit_asha ="
            f" {runs[0]['pruner_settings']}; seeds {seeds}"
        ),
        "runs": runs,
        "summary": summarize(runs) if set(args.pruners) == set(PRUNERS) else None,
    }
    out.mkdir(parents=True, exist_ok=True)
    name = "pruning_quick" if args.quick else "pruning"
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    if result["summary"] is None:  # one kind of sweep only: its runs are data for a replay
        print(f"wrote {out / f'{name}.json'} (no comparison: one kind of sweep)")
        return 0
    (out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
