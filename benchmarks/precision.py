"""bf16 autocast on the CPU against fp32: is an epoch cheaper, and does accuracy hold?

`python -m benchmarks.precision`

One trial per (fine-tuning mode, precision, seed) on the whole embedded task with MiniLM,
3 epochs, 2 threads and the project's other defaults; every epoch is also scored on the held-out
test split (trials never select on it). `train.mixed_precision=true` autocasts to bf16 on CPUs
with AVX512-BF16 or AMX (automl/train/device.py); `false` runs fp32. Weights stay fp32 either way.
Modes: LoRA r8 at lr 2e-3 and full fine-tuning at lr 5e-5. The two precisions of a seed run back
to back, so they share the machine's state.

Results go to benchmarks/results/precision.{json,md} after every trial; a rerun skips trials
already there, so an interrupted run continues.

    python -m benchmarks.precision                       # 2 modes x 2 precisions x seeds 0 1 2
    python -m benchmarks.precision --modes lora --seeds 0
    python -m benchmarks.precision --quick               # smoke: tiny model, no files
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
from benchmarks.epochs import scored_trial

RESULTS = Path(__file__).resolve().parent / "results"
MODES = {
    "lora": ["peft.lora_rank=8", "train.learning_rate=2e-3"],
    "full_ft": ["peft.lora_rank=0", "train.learning_rate=5e-5"],
}
PRECISIONS = {"fp32": "train.mixed_precision=false", "bf16": "train.mixed_precision=true"}
BASE = ["model=minilm", "train.epochs=3", "train.num_threads=2", "peft.frozen_layers=0"]
QUICK = ["model=tiny_bert", "data.max_examples=200", "train.epochs=1"]


def one_trial(mode: str, precision: str, seed: int, quick: bool) -> dict[str, Any]:
    from automl.train.device import cpu_has_native_bf16

    overrides = [*BASE, *MODES[mode], PRECISIONS[precision], f"train.seed={seed}",
                 *(QUICK if quick else [])]  # fmt: skip
    return {"mode": mode, "precision": precision, "seed": seed,
            "cpu_native_bf16": cpu_has_native_bf16(), **scored_trial(overrides)}  # fmt: skip


def speed(trial: dict[str, Any]) -> float:
    """A trial's training speed: the median of its epochs' samples per second."""
    return statistics.median(h["train_samples_per_s"] for h in trial["history"])


def summarize(trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per mode and precision: medians over seeds of training speed, trial wall time and the
    last epoch's validation and test accuracy (with the test min-max)."""
    rows = []
    for mode in MODES:
        for precision in PRECISIONS:
            runs = [t for t in trials if (t["mode"], t["precision"]) == (mode, precision)]
            if not runs:
                continue
            last = [t["history"][-1] for t in runs]
            speeds = [speed(t) for t in runs]
            rows.append({
                "mode": mode, "precision": precision, "seeds": sorted(t["seed"] for t in runs),
                "train_samples_per_s": round(statistics.median(speeds), 1),
                "wall_s": round(statistics.median(t["wall_s"] for t in runs), 1),
                "val_accuracy": statistics.median(h["val_accuracy"] for h in last),
                "test_accuracy": statistics.median(h["test_accuracy"] for h in last),
                "test_min": min(h["test_accuracy"] for h in last),
                "test_max": max(h["test_accuracy"] for h in last),
            })  # fmt: skip
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# bf16 autocast on the CPU against fp32",
        "",
        f"{measured_on(results['machine'])} Whole embedded task, MiniLM, "
        "3 epochs, 2 threads, defaults otherwise (default batching, sqrt sampling, data-sized "
        "batch); LoRA r8 on query/value at lr 2e-3, or full fine-tuning at lr 5e-5. Wall: the "
        "trial's training and validation plus scoring the test split every epoch, one trial "
        "alone on the machine.",
        "",
        "Medians over seeds; accuracy after the last epoch (test min-max).",
        "",
        "| mode | precision | seeds | train samples/s | trial wall s | val acc | test acc |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results["table"]:
        lines.append(
            f"| {r['mode']} | {r['precision']} | {','.join(map(str, r['seeds']))} | "
            f"{r['train_samples_per_s']:.1f} | {r['wall_s']:.0f} | {r['val_accuracy']:.3f} | "
            f"{r['test_accuracy']:.3f} ({r['test_min']:.3f}-{r['test_max']:.3f}) |"
        )
    lines += [
        "",
        "Per seed (last epoch): test accuracy fp32 / bf16, training samples/s fp32 / bf16.",
        "",
        "| mode | seed | test fp32 | test bf16 | samples/s fp32 | samples/s bf16 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    by = {(t["mode"], t["precision"], t["seed"]): t for t in results["trials"]}
    for mode in MODES:
        for seed in sorted({t["seed"] for t in results["trials"]}):
            pair = [by.get((mode, p, seed)) for p in PRECISIONS]
            if None in pair:
                continue
            tests = [f"{t['history'][-1]['test_accuracy']:.3f}" for t in pair if t]
            speeds = [f"{speed(t):.1f}" for t in pair if t]
            lines.append(f"| {mode} | {seed} | {' | '.join(tests)} | {' | '.join(speeds)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seeds", type=seed_list, default="0,1,2")
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny model, no files")
    args = parser.parse_args(argv)
    quiet()
    modes, seeds = args.modes.split(","), args.seeds
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        sys.exit(f"unknown mode {unknown[0]!r}: choose from {', '.join(MODES)}")
    out = Path(tempfile.mkdtemp()) if args.quick else RESULTS
    path = out / "precision.json"
    results = json.loads(path.read_text()) if path.is_file() else {"trials": []}
    done = {(t["mode"], t["precision"], t["seed"]) for t in results["trials"]}
    for mode in modes:
        for seed in seeds:
            for precision in PRECISIONS:
                if (mode, precision, seed) in done:
                    continue
                progress(f"precision: {mode} {precision} seed {seed}")
                results["trials"].append(one_trial(mode, precision, seed, args.quick))
                results.update(machine=machine(), table=summarize(results["trials"]))
                path.write_text(json.dumps(results, indent=1) + "\n")
                (out / "precision.md").write_text(markdown(results) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
