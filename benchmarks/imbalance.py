"""Imbalance handling: does the exported model serve every class? `python -m benchmarks.imbalance`

On the embedded task (21 topics, 48.5 % of the texts tech support, some topics with 7-50 training
examples) and on its 1,000-example subsample, one trial per option and seed with the default trial
hyperparameters (MiniLM, LoRA r8, lr 2e-3, 3 epochs, 2 threads), scored on a held-out test split
(data.test_fraction, seeded and stratified; trials never see it). The loop's evaluation is wrapped
so every epoch is also scored on test: the epoch a trial would export (its best by the validation
objective) can then be read for each objective without training again.

Results go to benchmarks/results/imbalance.{json,md} after every trial; a rerun skips the trials
already there, so an interrupted run continues where it stopped.

    python -m benchmarks.imbalance              # everything: 2 tasks x 5 options x 3 seeds
    python -m benchmarks.imbalance --tasks full --options today,weights_sqrt --seeds 0
    python -m benchmarks.imbalance --quick      # smoke version: 300 examples, 1 epoch, no files
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks.common import compose, machine, progress, quiet, seed_list

RESULTS = Path(__file__).resolve().parent / "results"

# name -> config overrides; `today` is the shipped default (every example once, plain loss)
OPTIONS = {
    "today": [],
    "weights_sqrt": ["train.class_weights=sqrt"],
    "weights_balanced": ["train.class_weights=balanced"],
    "sampling_sqrt": ["train.sampling=sqrt"],
    "sampling_balanced": ["train.sampling=balanced"],
}
TASKS = {"full": [], "subsample_1000": ["data.max_examples=1000"]}
BASE = [
    "model=minilm",
    "train.learning_rate=2e-3",
    "train.epochs=3",
    "peft.lora_rank=8",
    "data.test_fraction=0.15",
]
OBJECTIVES = ("val_accuracy", "val_f1", "val_balanced_accuracy")
SCORES = ("accuracy", "f1", "balanced_accuracy")
CODE: dict[str, str] = {}
GOAL_F1, GOAL_ACC = 0.15, 0.01  # the goal: +0.15 test macro-F1 at <= 1 point accuracy


@contextlib.contextmanager
def scored_on_test(test: Any) -> Iterator[None]:
    """While inside, the loop's per-epoch evaluation also scores the test split (`test_*`)."""
    import automl.train.loop as loop

    original = loop.evaluate

    def both(model: Any, split: Any, *args: Any, **kwargs: Any) -> Any:
        metrics = original(model, split, *args, **kwargs)
        on_test = original(model, test, *args, **kwargs)  # same pad id, batch size, device
        metrics.update({"test_" + k.removeprefix("val_"): v for k, v in on_test.items()})
        return metrics

    loop.evaluate = both
    try:
        yield
    finally:
        loop.evaluate = original


def code_version() -> dict[str, str]:
    """Short hashes of the files that decide what a trial does, as this process loaded them:
    the tree is shared and being edited, so trials compare only where these agree."""
    import hashlib
    import importlib

    out = {}
    for name in ("automl.data.batching", "automl.data.sampling", "automl.train.loop"):
        source = Path(importlib.import_module(name).__file__ or "").read_bytes()
        out[name.rsplit(".", 1)[1]] = hashlib.sha256(source).hexdigest()[:10]
    return out


def one_trial(task: str, option: str, seed: int, data: Any, quick: bool) -> dict[str, Any]:
    from automl.train.loop import run_trial

    overrides = [*BASE, *TASKS[task], *OPTIONS[option], f"train.seed={seed}"]
    if quick:
        overrides += ["train.epochs=1"]
    conf = compose(*overrides)
    started = time.perf_counter()
    with scored_on_test(data.test):
        result = run_trial(conf, data.without_test())
    keep = ("epoch", "train_loss", "val_loss", "test_loss", "train_samples_per_s")
    history = [
        {k: v for k, v in h.items() if k in keep or k.startswith(("val_", "test_"))}
        for h in result.history
    ]
    return {
        "task": task,
        "option": option,
        "seed": seed,
        "overrides": overrides,
        "status": result.status,
        "wall_s": round(time.perf_counter() - started, 1),
        "code": CODE,
        "history": history,
    }


def exported_epoch(history: list[dict[str, float]], objective: str) -> dict[str, float]:
    """The epoch a trial keeps: the first with the best validation value (as the loop does)."""
    finite = [h for h in history if not math.isnan(h.get(objective, math.nan))]
    return max(finite, key=lambda h: h[objective]) if finite else {}


def table(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and spread over seeds of the exported epoch's test scores, per task/option/objective;
    deltas against `today` paired by seed, over the seeds both have."""
    rows = []
    for task in TASKS:
        for objective in OBJECTIVES:
            today: dict[int, dict[str, float]] = {}
            for option in OPTIONS:
                runs = [t for t in trials if (t["task"], t["option"]) == (task, option)]
                picked = {t["seed"]: exported_epoch(t["history"], objective) for t in runs}
                picked = {seed: p for seed, p in sorted(picked.items()) if p}
                if not picked:
                    continue
                row: dict[str, Any] = {
                    "task": task, "objective": objective, "option": option, "seeds": list(picked),
                }  # fmt: skip
                for score in ("val_accuracy", "val_f1", *(f"test_{s}" for s in SCORES)):
                    values = [p[score] for p in picked.values()]
                    row[score] = statistics.fmean(values)
                    row[f"{score}_sd"] = statistics.stdev(values) if len(values) > 1 else 0.0
                if option == "today":
                    today = picked
                elif common := sorted(set(today) & set(picked)):
                    for score in ("test_accuracy", "test_f1"):
                        row[f"d_{score}"] = statistics.fmean(
                            picked[seed][score] - today[seed][score] for seed in common
                        )
                    row["d_seeds"] = common
                    row["meets_goal"] = (
                        row["d_test_f1"] >= GOAL_F1 and row["d_test_accuracy"] >= -GOAL_ACC
                    )
                rows.append(row)
    return rows


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Imbalance handling: test accuracy and macro-F1 by option",
        "",
        f"{results['setup']}",
        "",
        f"Machine: {m['cpus']} CPUs, GPU {m['gpu']}, torch {m['torch']}, transformers "
        f"{m['transformers']}, Python {m['python']}, {m['platform']}; date {m['date']}. "
        f"Trials done: {len(results['trials'])} of {len(TASKS) * len(OPTIONS) * 3} planned "
        f"(2 tasks x 5 options x seeds 0, 1, 2); "
        f"trial wall time {sum(t['wall_s'] for t in results['trials']) / 60:.0f} min.",
        "",
        "Each cell: mean ± sd over seeds of the test score of the epoch the trial would export "
        "(its best by the objective on validation). Δ: against `today` on the same seeds. "
        f"Goal: Δ macro-F1 ≥ +{GOAL_F1} at Δ accuracy ≥ -{GOAL_ACC * 100:.0f} point.",
        "",
    ]
    lines += [f"- {note}" for note in results.get("notes", [])] + [""] * bool(results.get("notes"))
    versions = sorted({json.dumps(t.get("code", {}), sort_keys=True) for t in results["trials"]})
    if len(versions) > 1:  # the shared tree changed between runs: say so beside the figures
        lines += [f"Note: trials ran on {len(versions)} code versions: {'; '.join(versions)}", ""]
    for task in TASKS:
        for objective in OBJECTIVES:
            rows = [r for r in results["table"] if (r["task"], r["objective"]) == (task, objective)]
            if not rows:
                continue
            lines += [
                f"## {task}, epoch chosen by {objective}",
                "",
                "| option | seeds | test accuracy | test macro-F1 | test balanced acc | "
                "Δ acc (points) | Δ macro-F1 | goal |",
                "| --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
            for r in rows:
                d_acc = f"{100 * r['d_test_accuracy']:+.1f}" if "d_test_accuracy" in r else "–"
                if "d_seeds" in r and r["d_seeds"] != r["seeds"]:
                    d_acc += f" (seeds {','.join(map(str, r['d_seeds']))})"
                d_f1 = f"{r['d_test_f1']:+.3f}" if "d_test_f1" in r else "–"
                goal = {True: "yes", False: "no"}.get(r.get("meets_goal"), "–")
                lines.append(
                    f"| {r['option']} | {','.join(map(str, r['seeds']))} | "
                    f"{r['test_accuracy']:.3f} ± {r['test_accuracy_sd']:.3f} | "
                    f"{r['test_f1']:.3f} ± {r['test_f1_sd']:.3f} | "
                    f"{r['test_balanced_accuracy']:.3f} ± {r['test_balanced_accuracy_sd']:.3f} | "
                    f"{d_acc} | {d_f1} | {goal} |"
                )
            lines.append("")
    return "\n".join(lines)


def key(trial: dict[str, Any]) -> tuple[str, str, int]:
    return trial["task"], trial["option"], trial["seed"]


def write(results: dict[str, Any], out: Path | None) -> None:
    """Merge this run's trials with those already on disk (several runs may share `out`, e.g.
    one per seed), under a lock, and rewrite the JSON and the table."""
    import fcntl

    if out is None:
        results["table"] = table(results["trials"])
        return
    out.mkdir(parents=True, exist_ok=True)
    path = out / "imbalance.json"
    # the lock lives outside the results folder, which is committed
    with open(Path(tempfile.gettempdir()) / "automl-bench-imbalance.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = {key(t): t for t in read_trials(path)}
        merged.update({key(t): t for t in results["trials"]})
        results["trials"] = list(merged.values())
        results["table"] = table(results["trials"])
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(results, indent=1))
        tmp.replace(path)
        (out / "imbalance.md").write_text(markdown(results) + "\n")


def read_trials(path: Path | None) -> list[dict[str, Any]]:
    return json.loads(path.read_text())["trials"] if path and path.exists() else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--options", default=",".join(OPTIONS))
    parser.add_argument("--seeds", type=seed_list, default="0,1,2")
    parser.add_argument("--threads", type=int, default=2, help="train.num_threads per trial")
    parser.add_argument("--quick", action="store_true", help="tiny smoke version")
    parser.add_argument("--out", type=Path, help="results folder (default: benchmarks/results)")
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    options = [o for o in args.options.split(",") if o]
    seeds = args.seeds
    unknown = sorted(set(tasks) - set(TASKS)) + sorted(set(options) - set(OPTIONS))
    if unknown:
        parser.error(f"unknown task/option: {', '.join(unknown)}")
    # --quick writes nothing unless given --out: its figures mean nothing
    out = args.out.resolve() if args.out else None if args.quick else RESULTS
    quiet()
    with tempfile.TemporaryDirectory(prefix="bench-") as work, contextlib.chdir(work):
        BASE.append(f"train.num_threads={args.threads}")
        results = run(tasks, options, seeds, args.quick, out)
    print(markdown(results))
    return 0


def run(
    tasks: list[str], options: list[str], seeds: list[int], quick: bool, out: Path | None
) -> dict[str, Any]:
    """Every (task, seed, option) trial not already in `out`, writing the results after each."""
    from automl.data.prepare import prepare_data

    global CODE
    CODE = code_version()  # read now, at import time: later edits do not reach this process
    done = read_trials(out / "imbalance.json" if out else None)
    results: dict[str, Any] = {
        "machine": machine(),
        "setup": "MiniLM, LoRA r8 (peft default modules), lr 2e-3, 3 epochs, batch 32, "
        "default length-aware batching; data.test_fraction=0.15 (stratified, "
        "data.seed 0), validation 0.2 of the whole; seeds are train.seed",
        "trials": done,
    }
    for task in tasks:
        data = prepare_data(compose(*BASE, *TASKS[task], *(["data.max_examples=300"] * quick)))
        if data.test is None:
            raise SystemExit("data.test_fraction gave no test split")
        progress(f"{task}: {len(data.train)} train / {len(data.val)} val / {len(data.test)} test")
        for seed in seeds:
            for option in options:
                on_disk = read_trials(out / "imbalance.json" if out else None)
                if any(key(t) == (task, option, seed) for t in results["trials"] + on_disk):
                    continue  # done, by this run or another sharing `out`
                trial = one_trial(task, option, seed, data, quick)
                results["trials"].append(trial)
                best = exported_epoch(trial["history"], "val_accuracy")
                progress(
                    f"{task} {option} seed {seed}: {trial['wall_s']:.0f} s, test acc "
                    f"{best.get('test_accuracy', math.nan):.3f} "
                    f"f1 {best.get('test_f1', math.nan):.3f}"
                )
                write(results, out)
    write(results, out)
    return results


if __name__ == "__main__":
    sys.exit(main())
