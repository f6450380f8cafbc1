"""The report's cost-vs-metric scatter: each trial's best metric against its trainable
parameters, the Pareto front joined and highlighted, the exported trial marked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from automl.report.plots import STATUS_COLOURS, UNKNOWN_COLOUR, Plot, _figure, _save
from automl.search.pareto import mark_pareto


def plot_pareto(summary: dict[str, Any], path: Path) -> Plot:
    metric, mode = summary["metric"], summary["mode"]
    title = f"{metric} vs trainable parameters"
    rule = summary.get("export_rule") or {}
    searched = summary.get("second_objective", "none") != "none"
    caption = (
        f"Each trial's best {metric} against the parameters it trained (log scale). Ringed: the "
        "Pareto front (no other trial is both better and smaller). ★: the "
        + ("exported trial" if summary.get("export_dir") else "trial chosen, not exported")
        + (
            f" (rule {rule['rule']}, tolerance {rule.get('tolerance')})."
            if rule.get("rule")
            else "."
        )
        + (
            " The sampler searched for this front (two objectives: the metric and trainable "
            "parameters)."
            if searched
            else ""
        )
    )
    rows = [
        r
        for r in summary["trials"]
        if r.get("best_value") is not None and r.get("trainable_params") and r["status"] != "failed"
    ]
    if len(rows) < 2:
        return Plot(title, caption, note="Needs at least 2 scored trials with a parameter count.")
    if any("pareto" not in r for r in rows):  # a summary written before the front was recorded
        rows = [dict(r) for r in rows]
        mark_pareto(rows, mode)
    fig = _figure(8.0, 4.8)
    ax = fig.add_subplot()
    for row in rows:
        ax.scatter(row["trainable_params"], row["best_value"], s=45, zorder=3, alpha=0.85,
                   color=STATUS_COLOURS.get(row["status"], UNKNOWN_COLOUR))  # fmt: skip
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["trainable_params"])
    xs, ys = [r["trainable_params"] for r in front], [r["best_value"] for r in front]
    ax.step(xs, ys, where="post", color="black", linewidth=1.2, label="Pareto front")
    ax.scatter(xs, ys, s=140, facecolors="none", edgecolors="black", linewidths=1.6, zorder=4)
    chosen = next((r for r in rows if r["trial_id"] == summary.get("best_trial")), None)
    if chosen is not None:  # chosen, but its export refused or its checkpoint gone: said so
        label = "exported" if summary.get("export_dir") else "chosen (not exported)"
        ax.scatter(chosen["trainable_params"], chosen["best_value"], marker="*", s=260,
                   color="gold", edgecolors="black", zorder=5, label=label)  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("trainable parameters")
    ax.set_ylabel(f"best {metric}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return Plot(title, caption, _save(fig, path))
