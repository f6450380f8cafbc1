"""(c) Search efficiency and (d) pruning savings on the embedded task at a fixed budget.

(c) Our default (TPE + `pruner=overfit_asha`) against (i) `Trainer.hyperparameter_search`
    (Optuna backend, the same ranges as `search_spaces/quick.yaml`, LoRA rank and frozen depth
    through `model_init`) and (ii) random search without pruning; per seed, the best validation
    accuracy and the cumulative trial wall time / trial-epochs until the running best reaches the
    peer's median best.
(d) Our TPE with `pruner=overfit_asha` against `pruner=none`, same sampler seed and budget.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import hf
from benchmarks.common import compose, progress, sweep_overrides

INF = float("inf")


# ---------------------------------------------------------------------------------------------
# Pure helpers (tested in tests/test_benchmarks.py)


def time_to_reach(trials: list[dict[str, Any]], target: float) -> tuple[float, float]:
    """Cumulative wall seconds and trial-epochs, in trial order, until the running best value
    reaches `target` (inf, inf if it never does). Trials without a value count their cost."""
    wall = epochs = 0.0
    for t in trials:
        wall += t["wall_s"]
        epochs += t["epochs"]
        if t["value"] is not None and t["value"] >= target - 1e-12:
            return wall, epochs
    return INF, INF


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def saving(ours: float, baseline: float) -> float:
    """Fraction of `baseline` saved by `ours` (0.4 = 40 % less)."""
    return 1.0 - ours / baseline if baseline else 0.0


# ---------------------------------------------------------------------------------------------
# Our sweeps


def our_sweep(tmp: Path, name: str, seed: int, budget: dict[str, int], *extra: str) -> dict:
    from automl.search.sweep import run_sweep

    conf = compose(
        "experiment=default",
        *sweep_overrides(tmp, name),
        "search_space=quick",
        f"data.max_examples={budget['max_examples']}",
        f"sweep.num_samples={budget['trials']}",
        f"sampler.seed={seed}",
        *extra,
    )
    started = time.perf_counter()
    summary = run_sweep(conf).summary
    wall = time.perf_counter() - started
    trials = [
        {"value": r["best_value"] if r["status"] != "failed" else None,
         "wall_s": r["wall_s"], "epochs": r["epochs_run"], "status": r["status"]}
        for r in summary["trials"]
    ]  # fmt: skip
    out = {
        "seed": seed,
        "best": summary["best_value"],
        "wall_s": wall,
        "trial_wall_s": sum(t["wall_s"] for t in trials),
        "trial_epochs": summary["trial_epochs"],
        "trials": trials,
    }
    progress(
        f"(c/d) {name}: best {out['best']:.4f}, {out['trial_epochs']} trial-epochs, {wall:.0f} s"
    )
    return out


# ---------------------------------------------------------------------------------------------
# Trainer.hyperparameter_search


def hf_search(tmp: Path, seed: int, budget: dict[str, int]) -> dict[str, Any]:
    import optuna
    import torch
    from transformers import Trainer, TrainerCallback

    from automl.config.resolve import as_dict
    from automl.config.schema import SEARCH_SPACE_DIR
    from automl.config.search_space import load_search_space
    from automl.data.prepare import prepare_data
    from automl.model.build import build_model
    from automl.model.load import load_tokenizer

    conf = compose(
        "experiment=default",
        f"data.max_examples={budget['max_examples']}",
        "search_space=quick",
    )
    started = time.perf_counter()
    torch.set_num_threads(2)
    data = prepare_data(conf)
    tokenizer = load_tokenizer(conf.model)
    space = load_search_space("quick", config=as_dict(conf), num_blocks=6,
                              search_dir=SEARCH_SPACE_DIR)  # fmt: skip
    starts: list[float] = []
    evals: list[list[float]] = []
    planned: list[int] = []

    def model_init(trial: Any = None) -> Any:
        peft = conf.peft
        if trial is not None:  # the same values hp_space gets (Optuna repeats a suggestion)
            values = space.suggest(trial)
            peft = dataclasses.replace(
                peft, lora_rank=values["peft.lora_rank"], frozen_layers=values["peft.frozen_layers"]
            )
            starts.append(time.perf_counter())
            evals.append([])
            planned.append(int(values["train.epochs"]))
        model, _ = build_model(conf.model, peft, data.label_names, data.pad_token_id)
        return model

    def hp_space(trial: Any) -> dict[str, Any]:
        values = space.suggest(trial)
        return {
            "learning_rate": values["train.learning_rate"],
            "num_train_epochs": values["train.epochs"],
        }

    class Record(TrainerCallback):
        def on_evaluate(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if evals:
                evals[-1].append(float(kw["metrics"]["eval_accuracy"]))

    train_ds, val_ds = hf.datasets(data)
    trainer = Trainer(
        model_init=model_init,
        args=hf.training_args(
            tmp / f"hf-{seed}", epochs=1, lr=2e-3, seed=seed, eval_strategy="epoch"
        ),  # fmt: skip
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=hf.collator(tokenizer),
        processing_class=tokenizer,
        compute_metrics=hf.accuracy,
        callbacks=[Record()],
    )
    best_run = trainer.hyperparameter_search(
        hp_space=hp_space,
        compute_objective=lambda m: m["eval_accuracy"],
        n_trials=budget["trials"],
        direction="maximize",
        backend="optuna",
        sampler=optuna.samplers.TPESampler(seed=seed),
    )
    ended = time.perf_counter()
    trials = []
    for i, (start, accs, plan) in enumerate(zip(starts, evals, planned, strict=True)):
        stop = starts[i + 1] if i + 1 < len(starts) else ended
        done = len(accs) >= plan
        trials.append(
            {"value": accs[-1] if done and accs else None, "wall_s": stop - start,
             "epochs": len(accs), "status": "completed" if done else "pruned"}
        )  # fmt: skip
    out = {
        "seed": seed,
        "best": float(best_run.objective),  # type: ignore[arg-type]
        "wall_s": ended - started,
        "trial_wall_s": sum(t["wall_s"] for t in trials),
        "trial_epochs": sum(t["epochs"] for t in trials),
        "trials": trials,
    }
    progress(
        f"(c) Trainer.hyperparameter_search seed {seed}: best {out['best']:.4f}, "
        f"{out['trial_epochs']} trial-epochs, {out['wall_s']:.0f} s"
    )
    return out


# ---------------------------------------------------------------------------------------------


def compare(ours: list[dict], peer: list[dict]) -> dict[str, Any]:
    """How fast our sweeps reach the peer's median best, against the peer's own time."""
    target = median([p["best"] for p in peer])
    reach = [time_to_reach(o["trials"], target) for o in ours]
    wall_to = median([w for w, _ in reach])
    epochs_to = median([e for _, e in reach])
    peer_wall = median([p["trial_wall_s"] for p in peer])
    peer_epochs = median([p["trial_epochs"] for p in peer])
    return {
        "peer_median_best": target,
        "ours_median_best": median([o["best"] for o in ours]),
        "peer_seeds": len(peer),
        "ours_reached": sum(1 for w, _ in reach if w < INF),
        "ours_wall_to_peer_best_s": wall_to,
        "ours_epochs_to_peer_best": epochs_to,
        "peer_trial_wall_s": peer_wall,
        "peer_trial_epochs": peer_epochs,
        "peer_sweep_wall_s": median([p["wall_s"] for p in peer]),
        "ours_sweep_wall_s": median([o["wall_s"] for o in ours]),
        "wall_ratio": wall_to / peer_wall if peer_wall else INF,
    }


def run(quick: bool = False, deadline: float | None = None) -> dict[str, Any]:
    """`deadline` (time.monotonic) decides whether extra seeds of the slow HF baseline fit."""
    budget = {"max_examples": 200, "trials": 2} if quick else {"max_examples": 1000, "trials": 6}
    seeds = [0] if quick else [0, 1, 2]
    runs: dict[str, list[dict]] = {"hf": [], "tpe_pruned": [], "random_none": [], "tpe_none": []}
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp_name:
        tmp = Path(tmp_name)
        progress(f"(c) Trainer.hyperparameter_search seed {seeds[0]} ...")
        t0 = time.monotonic()
        runs["hf"].append(hf_search(tmp, seeds[0], budget))
        hf_cost = time.monotonic() - t0
        done_seeds: list[int] = []
        seed_cost = 0.0
        for seed in seeds:
            t0 = time.monotonic()
            if done_seeds and deadline is not None and t0 + 1.1 * seed_cost > deadline:
                progress(f"(c/d) skipping seed {seed} of our sweeps: no time left")
                continue
            for key, extra in (
                ("tpe_pruned", ()),
                ("random_none", ("sampler=random", "pruner=none")),
                ("tpe_none", ("pruner=none",)),
            ):
                progress(f"(c/d) {key} seed {seed} ...")
                runs[key].append(our_sweep(tmp, f"{key}-s{seed}", seed, budget, *extra))
            seed_cost = time.monotonic() - t0
            done_seeds.append(seed)
        for seed in done_seeds[1:]:
            if deadline is not None and time.monotonic() + 1.15 * hf_cost > deadline:
                progress(f"(c) skipping Trainer.hyperparameter_search seed {seed}: no time left")
                continue
            runs["hf"].append(hf_search(tmp, seed, budget))

    vs_hf = compare(runs["tpe_pruned"], runs["hf"])
    vs_random = compare(runs["tpe_pruned"], runs["random_none"])
    per_seed = []
    for pruned, full in zip(runs["tpe_pruned"], runs["tpe_none"], strict=True):
        per_seed.append(
            {"seed": pruned["seed"], "best_pruned": pruned["best"], "best_none": full["best"],
             "epochs_pruned": pruned["trial_epochs"], "epochs_none": full["trial_epochs"],
             "wall_pruned_s": pruned["wall_s"], "wall_none_s": full["wall_s"],
             "epoch_saving": saving(pruned["trial_epochs"], full["trial_epochs"]),
             "wall_saving": saving(pruned["wall_s"], full["wall_s"]),
             "acc_diff_points": 100 * (pruned["best"] - full["best"])}
        )  # fmt: skip
    epoch_saving = median([s["epoch_saving"] for s in per_seed])
    wall_saving = median([s["wall_saving"] for s in per_seed])
    equal = all(abs(s["acc_diff_points"]) <= 0.5 for s in per_seed)
    acc_diff = median([s["acc_diff_points"] for s in per_seed])
    n_seeds = len(done_seeds)
    figures = []
    for label, cmp in (("Trainer.hyperparameter_search", vs_hf), ("random, no pruning", vs_random)):
        reached = cmp["ours_wall_to_peer_best_s"] < INF
        figures.append(
            {
                "figure": f"c. vs {label}: best val accuracy, ours - peer (median of "
                f"{n_seeds} / {cmp['peer_seeds']} seeds)",
                "value": 100 * (cmp["ours_median_best"] - cmp["peer_median_best"]),
                "unit": "points",
                "goal": ">= 0",
                "passed": cmp["ours_median_best"] >= cmp["peer_median_best"],
                "note": f"ours {cmp['ours_median_best']:.4f}, peer {cmp['peer_median_best']:.4f}",
            }
        )
        figures.append(
            {
                "figure": f"c. vs {label}: our time to the peer's best / peer's time",
                "value": cmp["wall_ratio"] if reached else None,
                "unit": "x",
                "goal": "<= 0.5",
                "passed": reached and cmp["wall_ratio"] <= 0.5,
                "note": (
                    f"ours {cmp['ours_wall_to_peer_best_s']:.0f} s / "
                    f"{cmp['ours_epochs_to_peer_best']:g} trial-epochs (median; reached in "
                    f"{cmp['ours_reached']}/{n_seeds} seeds) vs the peer's "
                    f"{cmp['peer_trial_wall_s']:.0f} s / {cmp['peer_trial_epochs']:g} "
                    f"trial-epochs of trials (sweep wall: peer "
                    f"{cmp['peer_sweep_wall_s']:.0f} s, ours {cmp['ours_sweep_wall_s']:.0f} s)"
                ),
            }
        )
    figures += [
        {
            "figure": "d. pruning (overfit_asha vs none, TPE): trial-epochs saved",
            "value": 100 * epoch_saving,
            "unit": "%",
            "goal": ">= 40",
            "passed": epoch_saving >= 0.4 and equal,
            "note": "median over seeds; per seed: "
            + ", ".join(f"{s['epochs_pruned']}/{s['epochs_none']}" for s in per_seed)
            + f"; best accuracy within 0.5 points in every seed: {'yes' if equal else 'no'} "
            f"(median difference {acc_diff:+.2f} points)",
        },
        {
            "figure": "d. pruning (overfit_asha vs none, TPE): sweep wall time saved",
            "value": 100 * wall_saving,
            "unit": "%",
            "goal": ">= 40",
            "passed": wall_saving >= 0.4 and equal,
            "note": "median over seeds; per seed: "
            + ", ".join(f"{s['wall_pruned_s']:.0f}/{s['wall_none_s']:.0f} s" for s in per_seed),
        },
    ]
    setup = (
        f"MiniLM, search_space=quick, data.max_examples={budget['max_examples']}, "
        f"{budget['trials']} trials per sweep, seeds {done_seeds} (Trainer.hyperparameter_search: "
        f"{len(runs['hf'])} seed(s)), one trial at a time on 2 cores"
    )
    return {
        "name": "search",
        "setup": setup,
        "measurements": {
            "runs": runs,
            "vs_hf": vs_hf,
            "vs_random": vs_random,
            "pruning": per_seed,
        },  # fmt: skip
        "figures": figures,
    }
