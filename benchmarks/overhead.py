"""(b) Orchestration overhead: what Ray Tune, Optuna and MLflow add around the trials.

(i)  N fixed ~25 s trials through `automl.search.sweep.run_sweep` (MLflow on, Optuna on, no pruning,
     one trial at a time with both CPUs) against the same N `run_trial` calls back to back in one
     process with no Ray and no MLflow.
(ii) 200 one-second dummy trials, two at a time, through the same pieces: Ray Tune `Tuner` +
     `OptunaSearch` (our sampler) + `SweepCallback` writing to a real SQLite `SweepTracker`,
     with `reuse_actors=True`; then the same trials through bare Ray Tune + OptunaSearch (no
     callback, no MLflow): Ray's own floor, which no orchestration on top of it can go below.
     `python -m benchmarks.overhead --rounds 3 --out DIR` repeats (ii) with our callback
     without MLflow as a third variant, interleaved, and reports the medians.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Timers, compose, progress, short_commit, sweep_overrides

# The steps of `automl.search.sweep.run_sweep` whose wall time (i) reports, by name.
SWEEP_STEPS = (
    "plan_sweep", "prepare_data_for_models", "init_ray", "_fit", "_export_best",
    "evaluate_sweep_export", "_write_report", "_close_parent_run",
)  # fmt: skip

FIXED_SPACE = """\
# One value per key: every trial trains the same thing (benchmarks/overhead.py).
peft.lora_rank: {type: categorical, choices: [8]}
train.learning_rate: {type: categorical, choices: [0.002]}
train.epochs: {type: categorical, choices: [1]}
peft.frozen_layers: {type: categorical, choices: [0]}
"""


def sweep_vs_loop(tmp: Path, n: int, max_examples: int) -> dict[str, Any]:
    import automl.search.sweep as sweep_module
    from automl.data.prepare import prepare_data
    from automl.search.trial import trial_config
    from automl.train.loop import run_trial

    space = tmp / "fixed.yaml"
    space.write_text(FIXED_SPACE)
    common = [
        "experiment=default",
        "pruner=none",
        "sweep.max_concurrent=1",
        "resources.cpus_per_trial=2",
        f"sweep.num_samples={n}",
        f"search_space={space}",
        f"data.max_examples={max_examples}",
        "peft.target_modules=[query,value]",
    ]
    conf = compose(*common, *sweep_overrides(tmp, "overhead"))

    progress(f"(b-i) {n} trials back to back with run_trial (no Ray, no MLflow) ...")
    started = time.perf_counter()
    data = prepare_data(conf)
    prep_s = time.perf_counter() - started
    fixed = {
        "peft.lora_rank": 8,
        "train.learning_rate": 0.002,
        "train.epochs": 1,
        "peft.frozen_layers": 0,
        "train.num_threads": 2,
    }
    from automl.config.resolve import as_dict

    trial_s = []
    for _ in range(n):
        t0 = time.perf_counter()
        run_trial(trial_config(as_dict(conf), fixed), data)
        trial_s.append(time.perf_counter() - t0)
    loop_s = time.perf_counter() - started
    progress(f"(b-i) back to back: {loop_s:.1f} s ({', '.join(f'{s:.1f}' for s in trial_s)})")

    progress(f"(b-i) {n} trials through run_sweep (Ray + Optuna + MLflow) ...")
    timers = Timers()
    with timers.wrap(sweep_module, *SWEEP_STEPS):
        started = time.perf_counter()
        outcome = sweep_module.run_sweep(conf)
        sweep_s = time.perf_counter() - started
    rows = outcome.summary["trials"]
    sweep_trial_s = sum(r["wall_s"] for r in rows)
    sec = timers.seconds
    breakdown = {
        "plan_s": sec.get("plan_sweep", 0.0),
        "data_prep_s": sec.get("prepare_data_for_models", 0.0),
        "ray_start_s": sec.get("init_ray", 0.0),
        "trials_s": sweep_trial_s,
        "tune_other_s": sec.get("_fit", 0.0) - sweep_trial_s,
        "export_s": sec.get("_export_best", 0.0),
        "test_eval_s": sec.get("evaluate_sweep_export", 0.0),
        "report_s": sec.get("_write_report", 0.0),
        "mlflow_close_s": sec.get("_close_parent_run", 0.0),
    }
    breakdown["other_s"] = sweep_s - sum(breakdown.values())
    progress(f"(b-i) run_sweep: {sweep_s:.1f} s")
    return {
        "trials": n,
        "max_examples": max_examples,
        "train_examples": len(data.train),
        "loop_wall_s": loop_s,
        "loop_data_prep_s": prep_s,
        "loop_trial_s": trial_s,
        "sweep_wall_s": sweep_s,
        "sweep_trial_s": [r["wall_s"] for r in rows],
        "sweep_breakdown_s": breakdown,
        "ratio": sweep_s / loop_s,
        "ratio_trials_only": sweep_trial_s / sum(trial_s),
    }


def dummy_trials(
    tmp: Path,
    n: int,
    concurrency: int = 2,
    bare: bool = False,
    mlflow: bool = True,
    tracking_uri: str | None = None,
) -> dict[str, Any]:
    """`bare`: Ray Tune + OptunaSearch only, without our callback and its MLflow writes;
    `mlflow=False`: our callback without its MLflow writes; `tracking_uri`: the store our
    callback writes to (default: a new SQLite file in `tmp`), e.g. a tracking server."""
    import logging

    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from automl.config.schema import SamplerConfig
    from automl.search.callback import SweepCallback
    from automl.search.plan import init_ray
    from automl.search.samplers import build_sampler
    from automl.tracking.runs import SweepTracker

    def one_second(config: dict[str, Any]) -> None:
        time.sleep(1)
        x = config["x"]
        tune.report(
            {"val_accuracy": x, "val_loss": 1 - x, "train_loss": 0.5, "epoch": 1,
             "best_val_accuracy": x}
        )  # fmt: skip

    import optuna

    conf = compose(f"paths.output_dir={tmp / 'outputs'}", f"ray.num_cpus={concurrency}")
    what = "bare Ray Tune" if bare else "ours" if mlflow else "ours without MLflow"
    progress(f"(b-ii) {n} one-second trials, {concurrency} at a time ({what}) ...")
    t0 = time.perf_counter()
    started_ray = init_ray(conf)
    ray_start_s = time.perf_counter() - t0
    tracker = (
        SweepTracker(tracking_uri or f"sqlite:///{tmp / 'dummy.db'}", f"dummy-{tmp.name}", "dummy")
        if mlflow and not bare
        else None
    )
    if tracker is not None:
        tracker.start_sweep({"trials": n}, {}, resume=False)
    callback = SweepCallback(
        metric="val_accuracy", mode="max", default_epochs=1, tracker=tracker, stopper=None
    )
    searcher = OptunaSearch(
        space={"x": optuna.distributions.FloatDistribution(0.0, 1.0)},
        metric="best_val_accuracy",
        mode="max",
        sampler=build_sampler(SamplerConfig()),
    )
    tuner = tune.Tuner(
        tune.with_resources(one_second, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=concurrency),
            num_samples=n,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"dummy-{what}".replace(" ", "-"),
            storage_path=str(tmp / "ray"),
            callbacks=[] if bare else [callback],
            verbose=0,
        ),
    )
    logging.getLogger("automl.sweep").setLevel(logging.WARNING)
    try:
        t0 = time.perf_counter()
        results = tuner.fit()
        wall = time.perf_counter() - t0
    finally:
        if tracker is not None:
            tracker.end_sweep("FINISHED", {}, {})
        if started_ray:
            import ray

            ray.shutdown()
    done = (
        sum(1 for r in results if not r.error)
        if bare
        else sum(1 for r in callback.records.values() if r.status == "completed")
    )
    ideal = n * 1.0 / concurrency
    progress(f"(b-ii) {done}/{n} trials in {wall:.1f} s (ideal {ideal:.0f} s)")
    return {
        "trials": n,
        "completed": done,
        "concurrency": concurrency,
        "wall_s": wall,
        "ideal_s": ideal,
        "ray_start_s": ray_start_s,
        "ratio": wall / ideal,
    }


def run(quick: bool = False) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp_name:
        tmp = Path(tmp_name)
        n, max_examples = (2, 300) if quick else (3, 4000)
        sweep = sweep_vs_loop(tmp, n, max_examples)
        dummy = dummy_trials(tmp, 20 if quick else 200)
        bare = dummy_trials(tmp, dummy["trials"], bare=True)
    b = sweep["sweep_breakdown_s"]
    figures = [
        {
            "figure": f"b. run_sweep / back-to-back run_trial ({n} x ~"
            f"{sum(sweep['loop_trial_s']) / n:.0f} s trials)",
            "value": sweep["ratio"],
            "unit": "x",
            "goal": "<= 1.05",
            "passed": sweep["ratio"] <= 1.05,
            "note": (
                f"sweep {sweep['sweep_wall_s']:.1f} s vs {sweep['loop_wall_s']:.1f} s "
                f"(both include data prep); fixed costs: Ray start {b['ray_start_s']:.1f} s, "
                f"data prep {b['data_prep_s']:.1f} s, Tune around trials "
                f"{b['tune_other_s']:.1f} s, export {b['export_s']:.1f} s, "
                f"test evaluation {b['test_eval_s']:.1f} s, report {b['report_s']:.1f} s, "
                f"MLflow close {b['mlflow_close_s']:.1f} s, plan+MLflow start+rest "
                f"{b['plan_s'] + b['other_s']:.1f} s; per trial sweep/loop "
                f"{sweep['ratio_trials_only']:.3f}x"
            ),
        },
        {
            "figure": f"b. {dummy['trials']} x 1 s dummy trials at concurrency "
            f"{dummy['concurrency']}: wall / ideal",
            "value": dummy["ratio"],
            "unit": "x",
            "goal": "<= 1.05",
            "passed": dummy["ratio"] <= 1.05,
            "note": f"{dummy['wall_s']:.1f} s for an ideal {dummy['ideal_s']:.0f} s "
            f"(Ray start {dummy['ray_start_s']:.1f} s not counted); the same trials through "
            f"bare Ray Tune + OptunaSearch: {bare['wall_s']:.1f} s ({bare['ratio']:.3f}x)",
        },
        {
            "figure": f"b. the same {bare['trials']} trials: ours / bare Ray Tune + OptunaSearch",
            "value": dummy["wall_s"] / bare["wall_s"],
            "unit": "x",
            "goal": "(what our callback and MLflow add)",
            "passed": None,
            "note": "bare Tune's own wall / ideal is the floor for any orchestration built on it",
        },
    ]
    setup = (
        f"(i) MiniLM LoRA r8, 1 epoch, data.max_examples={max_examples}, pruner=none, "
        "MLflow SQLite on; (ii) Tuner + OptunaSearch + SweepCallback + SQLite tracker, reuse_actors"
    )
    return {
        "name": "overhead",
        "setup": setup,
        "measurements": {"sweep_vs_loop": sweep, "dummy": dummy, "dummy_bare_tune": bare},
        "figures": figures,
    }


VARIANTS: dict[str, dict[str, Any]] = {
    "ours": {},
    "ours_without_mlflow": {"mlflow": False},
    "bare_ray_tune": {"bare": True},
}


def repeated_dummy(
    rounds: int, n: int = 200, tracking_uri: str | None = None, only: list[str] | None = None
) -> dict[str, Any]:
    """(ii) `rounds` times, the variants interleaved (ours, ours without MLflow, bare Ray Tune),
    so that a drift of the machine touches all alike; each in a fresh temp folder."""
    from automl.provenance import redact

    variants = {
        name: {**options, "tracking_uri": tracking_uri} if name == "ours" else options
        for name, options in VARIANTS.items()
        if not only or name in only
    }
    walls: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, options in variants.items():
            with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
                walls[name].append(dummy_trials(Path(tmp), n, **options)["wall_s"])
    medians = {name: statistics.median(w) for name, w in walls.items()}
    return {"trials": n, "concurrency": 2, "ideal_s": n / 2, "rounds": rounds,
            "tracking_uri": redact(tracking_uri) if tracking_uri else "sqlite (a new file per run)",
            "wall_s": walls, "median_s": medians}  # fmt: skip


def repeated_markdown(results: dict[str, Any]) -> str:
    m, r = results["machine"], results["dummy"]
    lines = [
        f"Measured {m['date']} on {m['cpus']} CPU cores, no GPU, Ray {m['versions'].get('ray')}, "
        f"MLflow {m['versions'].get('mlflow')}, at {short_commit(results['git_commit'])}; "
        f"{results['wall_s'] / 60:.1f} min.",
        "",
        f"{r['trials']} one-second dummy trials, {r['concurrency']} at a time, {r['rounds']} "
        f"rounds with the variants interleaved; ideal {r['ideal_s']:.0f} s; our MLflow store: "
        f"{r.get('tracking_uri', 'sqlite')} (`python -m benchmarks.overhead --rounds "
        f"{r['rounds']} --out DIR`).",
        "",
        "| variant | wall s per round | median | median / ideal | median − bare |",
        "| --- | --- | --- | --- | --- |",
    ]
    bare = r["median_s"].get("bare_ray_tune")
    for name, walls in r["wall_s"].items():
        med = r["median_s"][name]
        lines.append(
            f"| {name} | {', '.join(f'{w:.1f}' for w in walls)} | {med:.1f} | "
            f"{med / r['ideal_s']:.3f}x | {f'{med - bare:+.1f} s' if bare is not None else '-'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    from automl.provenance import git_commit
    from automl.tracking.uri import store_problem
    from benchmarks.common import machine, quiet
    from benchmarks.report import write

    parser = argparse.ArgumentParser(description="(ii) repeated: ours, without MLflow, bare Tune")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--out", type=Path, required=True, help="results folder")
    parser.add_argument("--tracking-uri", help="the store `ours` writes to, e.g. a server")
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="these variants only")
    args = parser.parse_args(argv)
    problem = store_problem(args.tracking_uri) if args.tracking_uri else None
    if problem:  # a store that cannot be used is one line, before Ray starts
        print(f"error: --tracking-uri: {problem}", file=sys.stderr)
        return 2
    quiet()
    started = time.monotonic()
    dummy = repeated_dummy(args.rounds, args.trials, args.tracking_uri, args.only)
    results = {"machine": machine(), "git_commit": git_commit(), "dummy": dummy,
               "wall_s": time.monotonic() - started}  # fmt: skip
    table = repeated_markdown(results)
    write(results, args.out, table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
