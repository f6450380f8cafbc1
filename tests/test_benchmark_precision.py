"""Pure logic of the precision and thread-layout benchmarks (no models): medians, pairing."""

from __future__ import annotations

from benchmarks.precision import markdown as precision_markdown
from benchmarks.precision import summarize as precision_summary
from benchmarks.threads import summarize as threads_summary

MACHINE = {"date": "2026-01-01", "cpus": 2, "gpu": False, "torch": "2.13.0",
           "transformers": "5.24", "python": "3.11"}  # fmt: skip


def trial(precision: str, seed: int, test: float, speeds: list[float]) -> dict:
    history = [
        {"epoch": e + 1, "train_samples_per_s": s, "val_accuracy": test + 0.01,
         "test_accuracy": test if e == len(speeds) - 1 else 0.0, "val_loss": 1.0}
        for e, s in enumerate(speeds)
    ]  # fmt: skip
    return {"mode": "lora", "precision": precision, "seed": seed, "wall_s": 100.0 - 10 * seed,
            "history": history}  # fmt: skip


def test_precision_summary_takes_the_last_epoch_and_median_speeds() -> None:
    trials = [
        trial("fp32", 0, 0.88, [90, 100, 95]), trial("fp32", 1, 0.86, [80, 80, 80]),
        trial("fp32", 2, 0.90, [99, 99, 99]), trial("bf16", 0, 0.87, [120, 110, 130]),
    ]  # fmt: skip
    rows = {r["precision"]: r for r in precision_summary(trials)}
    assert rows["fp32"]["test_accuracy"] == 0.88  # median of the last epochs, not the first
    assert (rows["fp32"]["test_min"], rows["fp32"]["test_max"]) == (0.86, 0.90)
    assert rows["fp32"]["train_samples_per_s"] == 95.0  # median of per-trial medians 95, 80, 99
    assert rows["bf16"]["seeds"] == [0]
    text = precision_markdown({"machine": MACHINE, "trials": trials,
                               "table": precision_summary(trials)})  # fmt: skip
    # only seed 0 has both precisions, so only it gets a per-seed row
    assert "| lora | 0 | 0.880 | 0.870 | 95.0 | 120.0 |" in text
    assert "| lora | 1 |" not in text


def test_threads_summary_is_per_layout_medians() -> None:
    runs = [
        {"layout": "1 trial x 2 threads", "trials_phase_s": 80.0, "trials_per_min": 4.5,
         "trial_wall_s": [13.0, 14.0]},
        {"layout": "1 trial x 2 threads", "trials_phase_s": 90.0, "trials_per_min": 4.0,
         "trial_wall_s": [15.0]},
        {"layout": "2 trials x 1 thread", "trials_phase_s": 60.0, "trials_per_min": 6.0,
         "trial_wall_s": [20.0, 21.0]},
    ]  # fmt: skip
    rows = {r["layout"]: r for r in threads_summary(runs)}
    assert rows["1 trial x 2 threads"]["trials_phase_s"] == 85.0
    assert rows["1 trial x 2 threads"]["trial_wall_s"] == 14.0
    assert rows["2 trials x 1 thread"]["rounds"] == 1
