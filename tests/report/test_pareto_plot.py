"""The report's metric-vs-parameters scatter and the trial table's origin / Pareto columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from automl.report.page import build_report, trial_table
from automl.report.pareto_plot import plot_pareto

# (trial, value, trainable params, origin)
TRIALS = [
    ("w1", 0.80, 22_000_000, "warm_start:old/a1"),
    ("s1", 0.79, 300_000, "sampler"),
    ("s2", 0.70, 310_000, "sampler"),
    ("s3", 0.60, 5_000, "sampler"),
]


def _summary(with_front: bool) -> dict[str, Any]:
    rows = []
    for tid, value, params, origin in TRIALS:
        rows.append({
            "trial_id": tid, "params": {"peft.lora_rank": 8}, "status": "completed", "reason": "",
            "history": [{"epoch": 1, "val_accuracy": value}], "best_value": value,
            "best_epoch": 1, "wall_s": 1.0, "epochs_run": 1, "trainable_params": params,
            "origin": origin, **({"pareto": tid != "s2"} if with_front else {}),
        })  # fmt: skip
    return {
        "sweep": "synth", "metric": "val_accuracy", "mode": "max", "best_value": 0.79,
        "best_trial": "s1", "best_epoch": 1, "export_dir": None, "num_trials": len(rows),
        "statuses": {"completed": len(rows)}, "wall_s": 1.0, "data": "synthetic",
        "export_rule": {"rule": "smallest_within", "tolerance": 0.02}, "trials": rows,
    }  # fmt: skip


def test_pareto_plot_draws_the_front(tmp_path: Path) -> None:
    for with_front in (True, False):  # older summaries have no `pareto` key: computed here
        plot = plot_pareto(_summary(with_front), tmp_path / f"p{with_front}.png")
        assert plot.file and not plot.note
        with Image.open(tmp_path / plot.file) as image:
            assert image.format == "PNG" and image.width >= 600
            assert image.convert("L").getextrema()[0] < 100  # not blank
        assert "smallest_within" in plot.caption
        # the summary's export_dir is None: the chosen trial was not exported, and the page
        # says "not exported" beside it, so the plot must not call it exported
        assert "★: the trial chosen, not exported" in plot.caption
    summary = {**_summary(True), "export_dir": "outputs/synth/best"}
    assert "★: the exported trial" in plot_pareto(summary, tmp_path / "e.png").caption


def test_pareto_plot_needs_two_scored_trials(tmp_path: Path) -> None:
    summary = _summary(True)
    summary["trials"] = summary["trials"][:1]
    assert plot_pareto(summary, tmp_path / "p.png").note


def test_table_and_page_show_origin_and_front(tmp_path: Path) -> None:
    table = trial_table(_summary(True))
    assert "<th>origin</th>" in table and "<th>pareto</th>" in table
    assert "warm_start:old/a1" in table
    (tmp_path / "synth").mkdir()
    (tmp_path / "synth" / "summary.json").write_text(json.dumps(_summary(True)))
    page = build_report(tmp_path / "synth").read_text()
    assert '<img src="pareto.png"' in page
