"""Batching rules judged per epoch and per wall-clock second (issue #10.2).

`python -m benchmarks.batching`

One trial per (task, rule, seed) with the defaults of a trial (MiniLM, LoRA r8 at lr 2e-3,
`train.batch_size: null`, square-root sampling, bf16 where the CPU has it), 3 epochs, 2 threads,
every epoch also scored on the held-out test split (trials never select on it). Rules
(`train.batching`, automl/data/batching.py): random batches (pools of one batch), shuffled pools
of 4 and of 50 batches sorted by length inside, random batches inside power-of-two length
buckets, and batches cut from length buckets with every class spread evenly along its bucket
(power-of-two edges, or edges 1.25x apart), also with each optimizer step made of 2, 4 or 8 such
groups (`train.length_groups_per_step`, each group its own forward pass). The default
(`train.batching: auto`) is one of these rules, chosen by the training set's size
(`default_rule`); tasks at four sizes place that switch. Seconds are the loop's epoch times
(training + validation + the test scoring, the same for every rule), one trial alone on the
machine.

Results go to benchmarks/results/batching/ after every trial; a rerun skips trials already
there, so an interrupted run continues.

    python -m benchmarks.batching                                    # both tasks, seeds 0 1 2
    python -m benchmarks.batching --tasks subsample_1000 --seeds 0
    python -m benchmarks.batching --quick                            # smoke: tiny model, no files
    python -m benchmarks.batching --out DIR                          # results elsewhere
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import machine, measured_on, progress, quiet, seed_list
from benchmarks.epochs import accuracy_at, median_per_epoch, scored_trial

RESULTS = Path(__file__).resolve().parent / "results" / "batching"
TASKS = {
    "subsample_1000": ["data.max_examples=1000"],
    "subsample_2000": ["data.max_examples=2000"],
    "subsample_3000": ["data.max_examples=3000"],
    "full": [],
}
RULES = {
    "random": ["train.batching=pools", "train.bucket_pool_batches=1"],
    "pools_4": ["train.batching=pools", "train.bucket_pool_batches=4"],
    "pools_50": ["train.batching=pools", "train.bucket_pool_batches=50"],
    "buckets": ["train.batching=buckets", "train.bucket_edges=pow2"],
    "stratified_pow2": ["train.batching=stratified", "train.bucket_edges=pow2"],
    "stratified": ["train.batching=stratified", "train.bucket_edges=fine"],
    **{
        f"stratified_{k}_groups": [
            "train.batching=stratified",
            "train.bucket_edges=fine",
            f"train.length_groups_per_step={k}",
        ]
        for k in (2, 4, 8)
    },  # fmt: skip
}


def default_rule(train_examples: int) -> str:
    """The rule `train.batching: auto` (the config's default) picks for this many training
    examples, by its name here (tests/test_benchmarks.py holds the two together)."""
    from automl.data.batching import auto_batching

    return auto_batching(train_examples)


BASE = ["model=minilm", "train.epochs=3", "train.num_threads=2", "peft.frozen_layers=0"]
# What is trained (`--regime`): a trial's defaults, or the sweep's first trial (full fine-tuning
# at 5e-5), the one `make sweep` exported in every run so far.
REGIMES = {
    "lora": ["peft.lora_rank=8", "train.learning_rate=2e-3"],
    "full_ft": ["peft.lora_rank=0", "train.learning_rate=5e-5"],
}
REGIME_TEXT = {
    "lora": "LoRA r8 on query/value at lr 2e-3",
    "full_ft": "full fine-tuning at lr 5e-5",
}
QUICK = ["model=tiny_bert", "data.max_examples=200", "train.epochs=2"]


def one_trial(task: str, rule: str, seed: int, quick: bool, regime: str = "lora") -> dict[str, Any]:
    overrides = [*BASE, *REGIMES[regime], *TASKS[task], *RULES[rule], f"train.seed={seed}",
                 *(QUICK if quick else [])]  # fmt: skip
    return {"task": task, "rule": rule, "seed": seed, **scored_trial(overrides)}


def at_equal_time(runs: dict[str, list[dict[str, Any]]], rule: str, epoch: int) -> dict[str, Any]:
    """Every rule's test accuracy at the moment `rule` finishes `epoch` (1-based), seed by seed
    (the same seed's trial of each rule, the model it holds then: its last finished epoch, 0 if
    none yet), then the median over seeds. `seconds`: the median of those moments."""
    moments: list[float] = []
    held: dict[str, list[float]] = {r: [] for r in runs}
    for lead in runs[rule]:
        if len(lead["history"]) < epoch:
            continue
        moment = sum(h["epoch_s"] for h in lead["history"][:epoch])
        same_seed = {r: [t for t in ts if t["seed"] == lead["seed"]] for r, ts in runs.items()}
        if not all(same_seed.values()):
            continue  # compare only seeds every rule ran
        moments.append(moment)
        for r, (trial, *_) in same_seed.items():
            held[r].append(accuracy_at(trial, moment) or 0.0)
    if not moments:
        return {}
    return {"rule": rule, "epoch": epoch, "seconds": round(statistics.median(moments), 1),
            **{r: statistics.median(values) for r, values in held.items()}}  # fmt: skip


def anytime(runs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """`at_equal_time` at every rule's every epoch end, in time order: the moments where some
    rule's held model changes, so no rule is judged only where it has just improved."""
    rows = [
        at_equal_time(runs, rule, epoch)
        for rule, trials in runs.items()
        for epoch in range(1, max(len(t["history"]) for t in trials) + 1)
    ]
    return sorted((row for row in rows if row), key=lambda row: row["seconds"])


def summarize(trials: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task: per-epoch medians for each rule, the default's gap to random batches after each
    epoch, every rule's accuracy at every rule's epoch ends (`anytime`), and at how many of
    those moments the default is at least as accurate as each other rule."""
    tables: dict[str, Any] = {}
    for task in TASKS:
        ran = [t for t in trials if t["task"] == task]
        epochs = max((len(t["history"]) for t in ran), default=0)
        # a trial that stopped short (failed, diverged) would cut its rule's per-epoch table and
        # mix seed sets at equal time: left out, listed below
        runs = {
            rule: [t for t in ran if t["rule"] == rule and len(t["history"]) == epochs]
            for rule in RULES
        }
        runs = {rule: r for rule, r in runs.items() if r}
        if not runs:
            continue
        per_epoch = {rule: median_per_epoch(r) for rule, r in runs.items()}
        speed = {
            rule: statistics.median(h["train_samples_per_s"] for t in r for h in t["history"])
            for rule, r in runs.items()
        }
        table: dict[str, Any] = {
            "per_epoch": per_epoch, "train_samples_per_s": speed,
            "incomplete": [(t["rule"], t["seed"], len(t["history"])) for t in ran
                           if len(t["history"]) < epochs],
        }  # fmt: skip
        default = default_rule(min(t["train_examples"] for t in ran))
        table["default"] = default
        if default in per_epoch:
            if "random" in per_epoch:
                table["default_minus_random"] = [
                    {
                        "epoch": d["epoch"],
                        "val": round(d["val_accuracy"] - r["val_accuracy"], 4),
                        "test": round(d["test_accuracy"] - r["test_accuracy"], 4),
                    }
                    for d, r in zip(per_epoch[default], per_epoch["random"], strict=False)
                ]
            rows = anytime(runs)
            table["anytime"] = rows
            table["default_at_least"] = {
                rule: [sum(row[default] >= row[rule] for row in rows), len(rows)]
                for rule in runs
                if rule != default
            }
        tables[task] = table
    return tables


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Batching rules per epoch and per wall-clock second (issue #10.2)",
        "",
        f"{measured_on(results['machine'])} MiniLM, "
        f"{REGIME_TEXT[results.get('regime', 'lora')]}, "
        "train.batch_size null (from the data), sqrt sampling, bf16 where the CPU has it, "
        "3 epochs, 2 threads, one trial alone on the machine. Seconds: the loop's epoch times "
        "(training + validation + test scoring), cumulative. Raw per-seed rows: `results.json`.",
        "",
    ]
    for task, table in results["table"].items():
        examples = sorted({t["train_examples"] for t in results["trials"] if t["task"] == task})
        epochs_run = max(len(e) for e in table["per_epoch"].values())
        batch = sorted({t["batch_size"] for t in results["trials"] if t["task"] == task} - {None})
        lines += [
            f"## {task} ({', '.join(map(str, examples))} training examples, batch "
            f"{', '.join(str(int(b)) for b in batch if b)})",
            "",
            "Each cell: median over seeds of test accuracy after the epoch (min-max), validation "
            "accuracy, cumulative seconds.",
            "",
            "| rule | seeds | train samples/s | "
            + " | ".join(f"epoch {e + 1}" for e in range(epochs_run))
            + " |",
            "| --- | --- | --- |" + " --- |" * epochs_run,
        ]
        for rule, epochs in table["per_epoch"].items():
            seeds = sorted(t["seed"] for t in results["trials"] if (t["task"], t["rule"])
                           == (task, rule))  # fmt: skip
            cells = [
                f"test {e['test_accuracy']:.3f} ({e['test_min']:.3f}-{e['test_max']:.3f}), "
                f"val {e['val_accuracy']:.3f}, {e['seconds']:.0f} s"
                for e in epochs
            ]
            name = f"**{rule}** (default)" if rule == table.get("default") else rule
            speed = table["train_samples_per_s"][rule]
            lines.append(f"| {name} | {','.join(map(str, seeds))} | {speed:.0f} | "
                         f"{' | '.join(cells)} |")  # fmt: skip
        if "default_minus_random" in table:
            gaps = ", ".join(
                f"epoch {g['epoch']} {100 * g['test']:+.1f} test / {100 * g['val']:+.1f} val"
                for g in table["default_minus_random"]
            )
            lines += ["", f"Default minus random batches, median accuracy, points: {gaps}."]
        if "anytime" in table:
            rules = list(table["per_epoch"])
            lines += [
                "",
                "At equal wall time: at each moment some rule finishes an epoch (seed by seed), "
                "every rule's held model (its last finished epoch; 0 before its first), test "
                "accuracy, median over seeds:",
                "",
                "| seconds | moment | " + " | ".join(rules) + " |",
                "| --- | --- |" + " --- |" * len(rules),
            ]
            for row in table["anytime"]:
                lines.append(f"| {row['seconds']:.0f} | {row['rule']} epoch {row['epoch']} | "
                             + " | ".join(f"{row[r]:.3f}" for r in rules) + " |")  # fmt: skip
            counts = ", ".join(
                f"{rule} at {k} of {n}" for rule, (k, n) in table["default_at_least"].items()
            )
            lines += ["", f"The default at least as accurate as {counts} moments."]
        if table.get("incomplete"):
            short = ", ".join(f"{rule} seed {seed} ({n} epochs)"
                              for rule, seed, n in table["incomplete"])  # fmt: skip
            lines += ["", f"Stopped short (left out above): {short}."]
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="subsample_1000,full")
    parser.add_argument("--rules", default=",".join(RULES))
    parser.add_argument("--seeds", type=seed_list, default="0,1,2")
    parser.add_argument(
        "--regime",
        choices=REGIMES,
        default="lora",
        help="lora: a trial's defaults; full_ft: the sweep's first trial",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny model, no files")
    parser.add_argument(
        "--out", type=Path, default=RESULTS,
        help="folder for results.json and .md (default benchmarks/results/batching)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    tasks, rules = args.tasks.split(","), args.rules.split(",")
    for name, values, known in (("task", tasks, TASKS), ("rule", rules, RULES)):
        unknown = [v for v in values if v not in known]
        if unknown:
            sys.exit(f"unknown {name} {unknown[0]!r}: choose from {', '.join(known)}")
    seeds = args.seeds
    quiet()
    out = Path(tempfile.mkdtemp()) if args.quick else args.out.resolve()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        sys.exit(f"--out {args.out}: cannot create the results folder ({e.strerror})")
    path = out / "results.json"
    results = json.loads(path.read_text()) if path.is_file() else {"trials": []}
    held = results.get("regime", "lora")  # folders written before --regime hold LoRA trials
    if results["trials"] and held != args.regime:
        sys.exit(f"--out {args.out}: holds --regime {held} trials; give --regime "
                 f"{args.regime} its own folder")  # fmt: skip
    results["regime"] = args.regime
    done = {(t["task"], t["rule"], t["seed"]) for t in results["trials"]}
    for task in tasks:
        for seed in seeds:  # seeds outermost: a run cut short still has every rule per seed
            for rule in rules:
                if (task, rule, seed) in done:
                    continue
                progress(f"batching: {task} {rule} seed {seed}")
                results["trials"].append(one_trial(task, rule, seed, args.quick, args.regime))
                results.update(machine=machine(), table=summarize(results["trials"]))
                path.write_text(json.dumps(results, indent=1) + "\n")
                (out / "results.md").write_text(markdown(results) + "\n")
    if results["trials"]:  # the tables again, so a rerun with nothing left redraws them
        results["table"] = summarize(results["trials"])
        path.write_text(json.dumps(results, indent=1) + "\n")
        (out / "results.md").write_text(markdown(results) + "\n")
        print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
