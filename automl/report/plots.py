"""The report's plots, drawn with matplotlib (Agg) from summary.json alone."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# ended before their last epoch
STOPPED = ("pruned_overfit", "stopped_early", "stopped_budget", "stopped", "diverged")


UNKNOWN_COLOUR = "#bbbbbb"  # a status this code does not know (a newer sweep's)
STATUS_COLOURS = {
    "completed": "#1f77b4",
    "pruned_overfit": "#d62728",
    "stopped_early": "#ff7f0e",
    "stopped_budget": "#9467bd",
    "stopped": "#bcbd22",
    "diverged": "#8c564b",
    "failed": "#7f7f7f",
}


@dataclass
class Plot:
    """One section of the report: a PNG, or a note saying why there is none."""

    title: str
    caption: str
    file: str | None = None
    note: str = ""


def literal_text() -> AbstractContextManager[Any]:
    """Text drawn as written. Matplotlib reads what stands between two `$` as math: a class
    or model name such as `$$` or `my$model_$x^` failed the whole drawing (and `a $5 or $10
    tip` lost its dollar signs); nothing this project draws is meant as math."""
    import matplotlib

    return matplotlib.rc_context({"text.parse_math": False})


def _figure(width: float = 9.0, height: float = 4.8) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig: Any, path: Path) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.savefig(path, format="png")
    return path.name


def _style(row: dict[str, Any], best_trial: str | None) -> dict[str, Any]:
    """Line style of a trial: stopped ones dashed, the best one thick."""
    stopped = row["status"] in STOPPED or row["status"] == "failed"
    return {
        "color": STATUS_COLOURS.get(row["status"], UNKNOWN_COLOUR),
        "linestyle": "--" if stopped else "-",
        "linewidth": 2.6 if row["trial_id"] == best_trial else 1.2,
        "alpha": 1.0 if row["trial_id"] == best_trial else 0.75,
    }


def plot_history(summary: dict[str, Any], path: Path) -> Plot:
    metric, mode = summary["metric"], summary["mode"]
    title = "Optimization history"
    caption = f"Best {metric} of each trial, in the order they started, and the running best."
    rows = summary["trials"]
    if not rows:
        return Plot(title, caption, note="No trials.")
    fig = _figure()
    ax = fig.add_subplot()
    running: list[float] = []
    best: float | None = None
    for i, row in enumerate(rows, start=1):
        value = row["best_value"]
        if value is not None:
            if row["status"] != "failed":  # never exported: its value is no best to reach
                best = value if best is None else (max if mode == "max" else min)(best, value)
            ax.scatter(i, value, color=STATUS_COLOURS.get(row["status"], UNKNOWN_COLOUR), zorder=3,
                       marker="X" if row["status"] in STOPPED else "o", s=50)  # fmt: skip
        running.append(best if best is not None else math.nan)
    ax.step(range(1, len(rows) + 1), running, where="post", color="black", label="running best")
    ax.set_xlabel("trial (in order)")
    ax.set_ylabel(f"best {metric}")
    ax.xaxis.get_major_locator().set_params(integer=True)  # a tick per trial: unreadable at 100
    ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=STATUS_COLOURS.get(s, UNKNOWN_COLOUR), linestyle="none",
               marker="X" if s in STOPPED else "o", label=s)
        for s in sorted({r["status"] for r in rows})
    ]  # fmt: skip
    ax.legend(handles=[*handles, *ax.get_lines()[:1]], fontsize=8, loc="best")
    return Plot(title, caption, _save(fig, path))


def _curve_plot(
    summary: dict[str, Any], path: Path, ylabel: str, value: Any, zero_line: bool = False
) -> str:
    """One line per trial over epochs: `value(history_row)` or None to skip a point."""
    fig = _figure()
    ax = fig.add_subplot()
    best = summary.get("best_trial")
    named = _legend_trials(summary, LEGEND_TRIALS)
    for row in summary["trials"]:
        points = [(h["epoch"], value(h)) for h in row["history"] if value(h) is not None]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        style = _style(row, best)
        label = row["trial_id"] + (" (chosen)" if row["trial_id"] == best else "")
        if row["trial_id"] not in named:  # the legend names the best few; the rest unlabelled
            label = "_" + label
        ax.plot(xs, ys, marker="o", markersize=3, label=label, **style)
        if row["status"] in STOPPED or row["status"] == "failed":
            ax.plot(xs[-1], ys[-1], marker="x", markersize=11, markeredgewidth=2.5,
                    color=style["color"], linestyle="none")  # fmt: skip
    if zero_line:
        ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncols=2 if len(named) > 8 else 1, loc="best")
    return _save(fig, path)


LEGEND_TRIALS = 12  # trials the learning-curve legends name: the best ones


def _legend_trials(summary: dict[str, Any], k: int) -> set[str]:
    """The k trials with the best values (the sweep's best first): a legend of 150 entries
    covers the curves."""
    scored = [r for r in summary["trials"] if r["best_value"] is not None]
    scored.sort(key=lambda r: r["best_value"], reverse=summary.get("mode", "max") == "max")
    named = {r["trial_id"] for r in scored[:k]}
    return named | ({summary["best_trial"]} if summary.get("best_trial") else set())


def plot_curves(summary: dict[str, Any], path: Path) -> Plot:
    metric = summary["metric"]
    title = "Learning curves"
    caption = (
        f"Validation {metric.removeprefix('val_')} per epoch. Pruned or early-stopped trials "
        "are dashed, with an x where they stopped; the best trial is thick."
    )
    if not any(row["history"] for row in summary["trials"]):
        return Plot(title, caption, note="No trial reported an epoch.")
    return Plot(title, caption, _curve_plot(summary, path, metric, lambda h: h.get(metric)))


def plot_gap(summary: dict[str, Any], path: Path) -> Plot:
    title = "Generalization gap"
    caption = (
        "val_loss − train_loss per epoch: a gap that keeps growing while the training loss "
        "falls is overfitting. Styles as in the learning curves."
    )

    def gap(h: dict[str, float]) -> float | None:
        if "val_loss" in h and "train_loss" in h:
            return h["val_loss"] - h["train_loss"]
        return None

    if not any(gap(h) is not None for row in summary["trials"] for h in row["history"]):
        return Plot(title, caption, note="No epoch reported both val_loss and train_loss.")
    return Plot(title, caption, _curve_plot(summary, path, "val_loss − train_loss", gap, True))


def _axis(values: list[Any]) -> tuple[list[float], list[str], list[float]]:
    """Normalize one hyperparameter to [0, 1]: numbers linearly (log10 when they span more
    than a decade), anything else as evenly spaced categories. Returns positions, tick labels
    and tick positions."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    unset = [v for v in values if v is None or v == "unset"]
    if numbers and len(numbers) + len(unset) == len(values) and unset and len(set(numbers)) > 1:
        # numbers with some unset (None: auto, or a key a trial lacks): the numbers in their
        # order, unset below them
        pos, labels, ticks = _axis(numbers)
        it = iter(pos)
        placed = [-0.05 if v is None or v == "unset" else 0.1 + 0.9 * next(it) for v in values]
        return placed, [*labels, str(unset[0])], [0.1 + 0.9 * t for t in ticks] + [-0.05]
    numeric = len(numbers) == len(values)
    if numeric and len(set(values)) > 1:
        log_scale = min(values) > 0 and max(values) / min(values) > 10
        xs = [math.log10(v) if log_scale else float(v) for v in values]
        lo, hi = min(xs), max(xs)
        pos = [(x - lo) / (hi - lo) for x in xs]
        return pos, [f"{min(values):.3g}", f"{max(values):.3g}"], [0.0, 1.0]
    levels = sorted({repr(v) for v in values}, key=lambda r: (len(r), r))
    if len(levels) == 1:
        return [0.5] * len(values), [levels[0]], [0.5]
    index = {r: i / (len(levels) - 1) for i, r in enumerate(levels)}
    return [index[repr(v)] for v in values], levels, [index[r] for r in levels]


LABEL_BOX = {"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1}


def plot_parallel(summary: dict[str, Any], path: Path) -> Plot:
    metric, mode = summary["metric"], summary["mode"]
    title = "Parallel coordinates"
    caption = (
        f"Each line is a trial, through its hyperparameters (each axis normalized to its range; "
        f"min and max labelled) to its best {metric}; colour = best {metric}, "
        "dashed = pruned or stopped early."
    )
    rows = [  # a failed trial's score cannot be exported: not on the scale (as in the others)
        r for r in summary["trials"]
        if r["best_value"] is not None and r["params"] and r["status"] != "failed"
    ]  # fmt: skip
    if len(rows) < 2:
        return Plot(title, caption, note="Needs at least 2 trials with a value.")
    keys = sorted({k for r in rows for k in r["params"]})
    import matplotlib as mpl

    columns = [_axis([r["params"].get(k, "unset") for r in rows]) for k in keys]
    columns.append(_axis([r["best_value"] for r in rows]))
    values = [r["best_value"] for r in rows]
    norm = mpl.colors.Normalize(min(values), max(values))
    cmap = mpl.colormaps["viridis" if mode == "max" else "viridis_r"]
    fig = _figure(max(9.0, 1.9 * (len(keys) + 1)), 5.0)
    ax = fig.add_subplot()
    xs = list(range(len(columns)))
    order = sorted(range(len(rows)), key=lambda i: values[i] * (1 if mode == "max" else -1))
    for i in order:  # the best drawn last, on top
        ys = [col[0][i] for col in columns]
        style = _style(rows[i], summary.get("best_trial"))
        ax.plot(xs, ys, color=cmap(norm(values[i])), linestyle=style["linestyle"],
                linewidth=style["linewidth"] + 0.4, alpha=0.9)  # fmt: skip
    for x, (_, labels, ticks) in zip(xs, columns, strict=True):
        ax.axvline(x, color="black", linewidth=0.8)
        for label, y in zip(labels, ticks, strict=True):
            ax.text(x + 0.03, y, label, fontsize=8, va="center", bbox=LABEL_BOX)
    ax.set_xticks(xs, [*keys, f"best {metric}"], fontsize=9)
    ax.set_yticks([])
    ax.set_ylim(-0.06, 1.06)
    ax.set_xlim(-0.1, len(columns) - 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.colorbar(mpl.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=f"best {metric}")
    return Plot(title, caption, _save(fig, path))
