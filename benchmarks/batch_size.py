"""Batch size against training-set size: does an epoch learn more from more, smaller steps?

`python -m benchmarks.batch_size`

One trial per (task, batch size, fine-tuning mode, seed) with MiniLM, 3 epochs, 2 threads,
the default batching and square-root sampling; every epoch is also scored on the
held-out test split (trials never select on it). Modes: LoRA r8 at lr 2e-3 (the default trial)
and full fine-tuning at lr 5e-5. It measures the rule behind `train.batch_size: null`
(automl/data/batching.py `auto_batch_size`: the largest of 32/16/8 that keeps 400 optimizer steps
an epoch).

Results go to benchmarks/results/batch_size.{json,md} after every trial; a rerun skips trials
already there, so an interrupted run continues.

    python -m benchmarks.batch_size                                  # subsample, 2 modes, seeds 0 1
    python -m benchmarks.batch_size --tasks full --modes lora --seeds 0
    python -m benchmarks.batch_size --quick                          # smoke: tiny model, no files
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import machine, measured_on, progress, quiet, seed_list
from benchmarks.epochs import median_per_epoch, scored_trial

RESULTS = Path(__file__).resolve().parent / "results"
TASKS = {"subsample_1000": ["data.max_examples=1000"], "full": []}
MODES = {
    "lora": ["peft.lora_rank=8", "train.learning_rate=2e-3"],
    "full_ft": ["peft.lora_rank=0", "train.learning_rate=5e-5"],
}
BATCHES = (8, 16, 32)
BASE = ["model=minilm", "train.epochs=3", "train.num_threads=2", "peft.frozen_layers=0"]
QUICK = ["model=tiny_bert", "data.max_examples=200", "train.epochs=1"]


def one_trial(task: str, mode: str, batch: int, seed: int, quick: bool) -> dict[str, Any]:
    overrides = [*BASE, *TASKS[task], *MODES[mode], f"train.batch_size={batch}",
                 f"train.seed={seed}", *(QUICK if quick else [])]  # fmt: skip
    return {"task": task, "mode": mode, "seed": seed, **scored_trial(overrides),
            "batch_size": batch}  # fmt: skip


def summarize(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per task, mode and batch: median over seeds of val/test accuracy after each epoch and of
    the cumulative training + evaluation seconds to reach it."""
    rows = []
    for task in TASKS:
        for mode in MODES:
            for batch in BATCHES:
                runs = [t for t in trials if (t["task"], t["mode"], t["batch_size"])
                        == (task, mode, batch)]  # fmt: skip
                if runs:
                    rows.append({
                        "task": task, "mode": mode, "batch_size": batch,
                        "seeds": sorted(t["seed"] for t in runs), "epochs": median_per_epoch(runs),
                    })  # fmt: skip
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Batch size against training-set size",
        "",
        f"{measured_on(results['machine'])} MiniLM, 3 epochs, 2 threads, "
        "default batching, sqrt sampling; LoRA r8 on query/value at lr 2e-3, or full fine-tuning "
        "at lr 5e-5. Seconds: training + validation + test scoring, cumulative, one trial alone "
        "on the machine.",
        "",
        "Each cell: median over seeds of test accuracy after the epoch (min-max), validation "
        "accuracy, and seconds.",
        "",
    ]
    for task in TASKS:
        for mode in MODES:
            rows = [r for r in results["table"] if (r["task"], r["mode"]) == (task, mode)]
            if not rows:
                continue
            examples = {t["train_examples"] for t in results["trials"] if t["task"] == task}
            lines += [
                f"## {task} ({', '.join(map(str, sorted(examples)))} training examples), {mode}",
                "",
                "| batch | seeds | steps/epoch | epoch 1 | epoch 2 | epoch 3 |",
                "| --- | --- | --- | --- | --- | --- |",
            ]
            for r in rows:
                steps = -(-max(examples) // r["batch_size"])
                cells = [
                    f"test {e['test_accuracy']:.3f} ({e['test_min']:.3f}-{e['test_max']:.3f}), "
                    f"val {e['val_accuracy']:.3f}, {e['seconds']:.0f} s"
                    for e in r["epochs"]
                ]
                lines.append(f"| {r['batch_size']} | {','.join(map(str, r['seeds']))} | "
                             f"{steps} | {' | '.join(cells)} |")  # fmt: skip
            lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="subsample_1000")
    parser.add_argument("--modes", default="lora,full_ft")
    parser.add_argument("--batches", default=",".join(map(str, BATCHES)))
    parser.add_argument("--seeds", type=seed_list, default="0,1")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny model, no files")
    args = parser.parse_args(argv)
    quiet()
    tasks, modes = args.tasks.split(","), args.modes.split(",")
    batches, seeds = (
        [int(b) for b in args.batches.split(",")],
        args.seeds,
    )
    for name, known in (("task", TASKS), ("mode", MODES)):
        unknown = [v for v in (tasks if name == "task" else modes) if v not in known]
        if unknown:
            sys.exit(f"unknown {name} {unknown[0]!r}: choose from {', '.join(known)}")
    out = Path(tempfile.mkdtemp()) if args.quick else RESULTS
    path = out / "batch_size.json"
    results = json.loads(path.read_text()) if path.is_file() else {"trials": []}
    done = {(t["task"], t["mode"], t["batch_size"], t["seed"]) for t in results["trials"]}
    for task in tasks:
        for mode in modes:
            for seed in seeds:
                for batch in batches:
                    if (task, mode, batch, seed) in done:
                        continue
                    progress(f"batch_size: {task} {mode} batch {batch} seed {seed}")
                    results["trials"].append(one_trial(task, mode, batch, seed, args.quick))
                    results.update(machine=machine(), table=summarize(results["trials"]))
                    path.write_text(json.dumps(results, indent=1) + "\n")
                    (out / "batch_size.md").write_text(markdown(results) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
