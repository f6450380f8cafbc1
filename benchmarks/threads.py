"""One trial with 2 threads, or two trials with 1 thread each: which finishes more trials?

`python -m benchmarks.threads`

The same N fixed trials (MiniLM, LoRA r8, lr 2e-3, 1 epoch, the 1,000-example subsample; the
fixed search space of benchmarks/overhead.py) through `run_sweep` in two layouts on the same
2 CPUs: `sweep.max_concurrent=1 resources.cpus_per_trial=2` (the default) and
`sweep.max_concurrent=2 resources.cpus_per_trial=1`; torch threads follow the trial's CPUs.
The layouts alternate for `--repeats` rounds so drift in the machine's speed hits both.
MLflow off; Ray start, data preparation and export are timed apart from the trials.

Results go to benchmarks/results/threads.{json,md}.

    python -m benchmarks.threads                 # 6 trials, 2 rounds
    python -m benchmarks.threads --quick         # smoke: tiny model, no files
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Timers,
    compose,
    machine,
    measured_on,
    progress,
    quiet,
    sweep_overrides,
)
from benchmarks.overhead import FIXED_SPACE

RESULTS = Path(__file__).resolve().parent / "results"
LAYOUTS = {
    "1 trial x 2 threads": ["sweep.max_concurrent=1", "resources.cpus_per_trial=2"],
    "2 trials x 1 thread": ["sweep.max_concurrent=2", "resources.cpus_per_trial=1"],
}
QUICK = ["model=tiny_bert", "data.max_examples=200"]


def one_sweep(layout: str, trials: int, quick: bool) -> dict[str, Any]:
    import automl.search.sweep as sweep_module

    with tempfile.TemporaryDirectory(prefix="bench-threads-") as tmp_name:
        tmp = Path(tmp_name)
        space = tmp / "fixed.yaml"
        space.write_text(FIXED_SPACE)
        conf = compose(
            "experiment=default", "pruner=none", f"search_space={space}",
            f"sweep.num_samples={trials}", "data.max_examples=1000", "tracking.enabled=false",
            "peft.target_modules=[query,value]", *LAYOUTS[layout],
            *sweep_overrides(tmp, "threads"), *(QUICK if quick else []),
        )  # fmt: skip
        timers = Timers()
        started = time.perf_counter()
        with timers.wrap(sweep_module, "_fit"):
            outcome = sweep_module.run_sweep(conf)
        wall = time.perf_counter() - started
    rows = outcome.summary["trials"]
    fit_s = timers.seconds["_fit"]
    return {
        "layout": layout,
        "trials": len(rows),
        "completed": sum(r["status"] == "completed" for r in rows),
        "sweep_wall_s": round(wall, 1),
        "trials_phase_s": round(fit_s, 1),
        "trial_wall_s": [round(r["wall_s"], 1) for r in rows],
        "trials_per_min": round(60 * len(rows) / fit_s, 2),
        "val_accuracy": [r.get("best_value") for r in rows],
    }


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for layout in LAYOUTS:
        mine = [r for r in runs if r["layout"] == layout]
        if mine:
            rows.append({
                "layout": layout, "rounds": len(mine),
                "trials_phase_s": statistics.median(r["trials_phase_s"] for r in mine),
                "trials_per_min": statistics.median(r["trials_per_min"] for r in mine),
                "trial_wall_s": statistics.median(s for r in mine for s in r["trial_wall_s"]),
            })  # fmt: skip
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# One trial with 2 threads against two trials with 1 thread",
        "",
        f"{measured_on(results['machine'])} {results['trials']} identical trials (MiniLM, LoRA r8, "
        "lr 2e-3, 1 epoch, 1,000-example subsample) through `run_sweep`, MLflow off; the "
        f"layouts alternated for {results['repeats']} rounds. Trials phase: Ray Tune's run, from "
        "the first trial's start to the last one's end (Ray start, data preparation and export "
        "excluded). Medians over rounds.",
        "",
        "| layout | trials phase s | trials per minute | one trial's wall s |",
        "| --- | --- | --- | --- |",
    ]
    for r in results["table"]:
        lines.append(f"| {r['layout']} | {r['trials_phase_s']:.1f} | {r['trials_per_min']:.2f} | "
                     f"{r['trial_wall_s']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny model, no files")
    args = parser.parse_args(argv)
    quiet()
    runs = []
    for round_ in range(args.repeats):
        for layout in LAYOUTS:
            progress(f"threads: round {round_ + 1}, {layout}")
            runs.append(one_sweep(layout, args.trials, args.quick))
    results = {"machine": machine(), "trials": args.trials, "repeats": args.repeats,
               "runs": runs, "table": summarize(runs)}  # fmt: skip
    if not args.quick:
        (RESULTS / "threads.json").write_text(json.dumps(results, indent=1) + "\n")
        (RESULTS / "threads.md").write_text(markdown(results) + "\n")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
