"""`automl-report`: an offline HTML report of a finished sweep, built from its summary.json.

automl-report outputs/smoke                                 # -> outputs/smoke/report/index.html
automl-report outputs/smoke --tracking-uri sqlite:///mlflow.db   # and log it to the sweep's run

The report is one HTML page and a few PNGs beside it (no JavaScript, no CDN: it opens offline):
the trial table, the optimization history, Optuna's hyperparameter importance (from the study's
journal), learning curves, parallel coordinates and the generalization gap. `automl-sweep` writes
it at the end of every sweep and logs it to the sweep's MLflow parent run under `report/`.
"""

from __future__ import annotations

import argparse
import html
import json
import logging
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.resume import STUDY_FILE

log = logging.getLogger("automl.report")

REPORT_DIR = "report"
STOPPED = ("pruned_overfit", "stopped_early")  # ended before their planned last epoch
STATUS_COLOURS = {
    "completed": "#1f77b4",
    "pruned_overfit": "#d62728",
    "stopped_early": "#ff7f0e",
    "failed": "#7f7f7f",
}


class ReportError(Exception):
    """The folder is not a finished sweep (one line, for the CLI)."""


@dataclass
class Plot:
    """One section of the report: a PNG, or a note saying why there is none."""

    title: str
    caption: str
    file: str | None = None
    note: str = ""


def load_summary(out_dir: Path) -> dict[str, Any]:
    """The sweep's summary.json, checked enough to draw from."""
    path = out_dir / "summary.json"
    if not out_dir.is_dir():
        raise ReportError(f"{out_dir}: no such folder")
    if not path.is_file():
        raise ReportError(f"{out_dir}: not a finished sweep (no summary.json)")
    try:
        summary = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ReportError(f"{path}: unreadable ({err})") from None
    if not isinstance(summary, dict) or not isinstance(summary.get("trials"), list):
        raise ReportError(f"{path}: not a sweep summary (no trials)")
    for key in ("sweep", "metric", "mode"):
        if key not in summary:
            raise ReportError(f"{path}: not a sweep summary (no {key!r})")
    return summary


def build_report(out_dir: Path | str, tracker: Any = None) -> Path:
    """Write `<out_dir>/report/index.html` and its PNGs; log them to the tracker's parent run
    (a `SweepTracker`) when one is given. Returns the path of index.html."""
    out_dir = Path(out_dir).resolve()
    summary = load_summary(out_dir)
    report_dir = out_dir / REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = [
        plot_history(summary, report_dir / "history.png"),
        plot_importance(summary, out_dir, report_dir / "importance.png"),
        plot_curves(summary, report_dir / "learning_curves.png"),
        plot_parallel(summary, report_dir / "parallel_coordinates.png"),
        plot_gap(summary, report_dir / "generalization_gap.png"),
    ]
    index = report_dir / "index.html"
    tmp = report_dir / ".index.html.tmp"
    tmp.write_text(render_html(summary, plots))
    tmp.replace(index)  # never half-written
    log.info("report: %s", index)
    if tracker is not None:
        tracker.log_artifact(report_dir, REPORT_DIR)
    return index


# -- plots ----------------------------------------------------------------------------------------
# matplotlib's object-oriented API with the Agg canvas: no pyplot, so no global backend is
# switched (a notebook that runs a sweep keeps its inline plots).


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
        "color": STATUS_COLOURS.get(row["status"], "#9467bd"),
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
            best = value if best is None else (max if mode == "max" else min)(best, value)
            ax.scatter(i, value, color=STATUS_COLOURS.get(row["status"], "#9467bd"), zorder=3,
                       marker="X" if row["status"] in STOPPED else "o", s=50)  # fmt: skip
        running.append(best if best is not None else math.nan)
    ax.step(range(1, len(rows) + 1), running, where="post", color="black", label="running best")
    ax.set_xlabel("trial (in order)")
    ax.set_ylabel(f"best {metric}")
    ax.set_xticks(range(1, len(rows) + 1))
    ax.grid(alpha=0.3)
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], color=STATUS_COLOURS.get(s, "#9467bd"), linestyle="none",
               marker="X" if s in STOPPED else "o", label=s)
        for s in sorted({r["status"] for r in rows})
    ]  # fmt: skip
    ax.legend(handles=[*handles, *ax.get_lines()[:1]], fontsize=8, loc="best")
    return Plot(title, caption, _save(fig, path))


def param_importances(summary: dict[str, Any], out_dir: Path) -> tuple[dict[str, float], str]:
    """Optuna's importances over the sweep's study, and a note on what was left out or why
    there are none. Degenerate studies (under 2 complete trials, only constant parameters)
    give no importances and a note, never an exception."""
    journal = out_dir / STUDY_FILE
    if not journal.is_file():
        return {}, f"No Optuna study ({STUDY_FILE}) beside the summary."
    import optuna
    from optuna.trial import TrialState

    from automl.resume import study_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=summary["sweep"], storage=study_storage(out_dir))
    except KeyError:
        return {}, f"The Optuna journal has no study named {summary['sweep']!r}."
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"Importance needs at least 2 complete trials; this study has {len(complete)}."
    # conditional branches (e.g. `train.learning_rate[peft.lora_rank=0]`) exist in some trials
    # only; Optuna ranks the parameters every complete trial has, and constant ones say nothing
    shared = set.intersection(*(set(t.params) for t in complete))
    constant = sorted(p for p in shared if len({repr(t.params[p]) for t in complete}) == 1)
    varied = sorted(shared - set(constant))
    partial = sorted(set().union(*(set(t.params) for t in complete)) - shared)
    notes = []
    if constant:
        notes.append("constant in every complete trial (no importance): " + ", ".join(constant))
    if partial:
        notes.append("left out, set in only some trials: " + ", ".join(partial))
    if not varied:
        return {}, "No parameter varied across the complete trials. " + "; ".join(notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importances = optuna.importance.get_param_importances(
                study, params=varied, evaluator=_evaluator()
            )
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        return {}, f"Optuna could not rank the parameters: {err}"
    clean = {k: float(v) for k, v in importances.items() if math.isfinite(v)}
    if not clean or not any(clean.values()):
        return {}, "Optuna found no parameter that explains the objective. " + "; ".join(notes)
    return clean, "; ".join(notes)


def _evaluator() -> Any:
    """fANOVA (Optuna's default), seeded so the report is reproducible."""
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(seed=0)


def plot_importance(summary: dict[str, Any], out_dir: Path, path: Path) -> Plot:
    title = "Hyperparameter importance"
    caption = (
        f"Optuna's fANOVA importance of each hyperparameter for best {summary['metric']} "
        "(sums to 1), over the study's complete trials."
    )
    importances, note = param_importances(summary, out_dir)
    if not importances:
        return Plot(title, caption, note=note)
    names = list(importances)[::-1]  # most important on top
    fig = _figure(9.0, 0.5 * len(names) + 1.6)
    ax = fig.add_subplot()
    ax.barh(names, [importances[n] for n in names], color="#1f77b4")
    for y, name in enumerate(names):
        ax.text(importances[name], y, f" {importances[name]:.2f}", va="center", fontsize=9)
    ax.set_xlabel("importance")
    ax.set_xlim(0, max(importances.values()) * 1.15)
    ax.grid(axis="x", alpha=0.3)
    return Plot(title, caption, _save(fig, path), note=note)


def _curve_plot(
    summary: dict[str, Any], path: Path, ylabel: str, value: Any, zero_line: bool = False
) -> str:
    """One line per trial over epochs: `value(history_row)` or None to skip a point."""
    fig = _figure()
    ax = fig.add_subplot()
    best = summary.get("best_trial")
    for row in summary["trials"]:
        points = [(h["epoch"], value(h)) for h in row["history"] if value(h) is not None]
        if not points:
            continue
        xs, ys = zip(*points, strict=True)
        style = _style(row, best)
        label = row["trial_id"] + (" (best)" if row["trial_id"] == best else "")
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
    ax.legend(fontsize=7, ncols=2 if len(summary["trials"]) > 8 else 1, loc="best")
    return _save(fig, path)


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
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
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
    rows = [r for r in summary["trials"] if r["best_value"] is not None and r["params"]]
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


# -- HTML -----------------------------------------------------------------------------------------

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222;
       padding: 0 1em; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; }
td.id, td.status { text-align: left; font-family: monospace; white-space: nowrap; }
.badge { font-family: sans-serif; font-size: 0.75em; font-weight: bold; color: white;
         background: #888; border-radius: 3px; padding: 1px 4px; }
tr.pruned_overfit .badge { background: #c00; } tr.stopped_early .badge { background: #d70; }
tr.best { background: #e6f4e6; font-weight: bold; }
tr.pruned_overfit td.status { color: #b00; } tr.pruned_overfit { background: #fbeaea; }
tr.stopped_early td.status { color: #b60; } tr.stopped_early { background: #fdf3e6; }
tr.failed { background: #eee; color: #777; }
img { max-width: 100%; border: 1px solid #eee; }
.note { background: #fff8dc; border-left: 4px solid #e0c050; padding: 0.5em 1em; }
.caption { color: #555; font-size: 0.9em; }
"""
BADGES = {"pruned_overfit": "PRUNED", "stopped_early": "STOPPED", "failed": "FAILED"}


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _badge(status: str) -> str:
    return f'<span class="badge">{BADGES[status]}</span> ' if status in BADGES else ""


def trial_table(summary: dict[str, Any]) -> str:
    """One row per trial; the best marked ★, pruned / stopped / failed marked and tinted."""
    metric, best = summary["metric"], summary.get("best_trial")
    keys = sorted({k for r in summary["trials"] for k in r["params"]})
    head = ["trial", "status", f"best {metric}", "best epoch", "epochs run", "wall s", *keys]
    lines = ["<table>", "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in summary["trials"]:
        status = row["status"]
        classes = [status] + (["best"] if row["trial_id"] == best else [])
        star = " ★" if row["trial_id"] == best else ""
        reason = html.escape(row.get("reason") or "", quote=True)
        cells = [
            f'<td class="id">{html.escape(row["trial_id"])}{star}</td>',
            f'<td class="status" title="{reason}">{_badge(status)}{html.escape(status)}</td>',
            f"<td>{_fmt(row['best_value'])}</td>",
            f"<td>{_fmt(row['best_epoch'])}</td>",
            f"<td>{_fmt(row['epochs_run'])}</td>",
            f"<td>{row['wall_s']:.1f}</td>",
            *(f"<td>{html.escape(_fmt(row['params'].get(k)))}</td>" for k in keys),
        ]
        lines.append(f'<tr class="{" ".join(classes)}">' + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def render_html(summary: dict[str, Any], plots: Sequence[Plot]) -> str:
    e = html.escape
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.get("statuses", {}).items()))
    best = summary.get("best_trial")
    meta = (
        f"objective: {summary['mode']} {summary['metric']} (each trial scored by its best epoch)"
        f" · {summary.get('num_trials', len(summary['trials']))} trials ({statuses})"
        f" · {summary.get('wall_s', '?')} s"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Sweep {e(summary['sweep'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Sweep {e(summary['sweep'])}</h1>",
        f'<p class="meta">{e(meta)}<br>data: {e(str(summary.get("data", "?")))}</p>',
        f"<p><b>Best:</b> trial {e(str(best))}, {e(summary['metric'])} = "
        f"{e(_fmt(summary.get('best_value')))} at epoch {e(_fmt(summary.get('best_epoch')))}; "
        f"exported to {e(str(summary.get('export_dir')))}</p>",
        "<h2>Trials</h2>",
        trial_table(summary),
        '<p class="caption">★ best trial (its checkpoint is the exported model) · PRUNED: '
        "stopped for overfitting · STOPPED: stopped early (ASHA or the time budget) · FAILED: "
        "an error or a diverged loss; hover a status for the reason.</p>",
    ]
    for plot in plots:
        parts.append(f"<h2>{e(plot.title)}</h2>")
        if plot.file:
            parts.append(f'<img src="{e(plot.file)}" alt="{e(plot.title)}">')
            parts.append(f'<p class="caption">{e(plot.caption)}</p>')
        if plot.note:
            parts.append(f'<p class="note">{e(plot.note)}</p>')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


# -- after the fact: the CLI ---------------------------------------------------------------------


def find_sweep_run(uri: str, sweep: str) -> str:
    """The run id of the sweep's latest MLflow parent run, in any experiment."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiments = [x.experiment_id for x in client.search_experiments()]
    runs = client.search_runs(
        experiments,
        filter_string=f"tags.automl.sweep = '{sweep}' and tags.automl.role = 'sweep'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    ) if experiments else []  # fmt: skip
    if not runs:
        raise ReportError(f"no MLflow run of sweep {sweep!r} at the tracking URI")
    return str(runs[0].info.run_id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="automl-report",
        description="Write an HTML report (plots + trial table) of a finished sweep.",
    )
    parser.add_argument("sweep_dir", type=Path, help="a sweep's output folder, e.g. outputs/smoke")
    parser.add_argument(
        "--tracking-uri",
        help="also log the report to the sweep's MLflow parent run (under report/)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        index = build_report(args.sweep_dir)
        if args.tracking_uri:
            from mlflow.tracking import MlflowClient

            from automl.tracking import redact

            summary = load_summary(args.sweep_dir.resolve())
            run_id = find_sweep_run(args.tracking_uri, summary["sweep"])
            MlflowClient(args.tracking_uri).log_artifacts(run_id, str(index.parent), REPORT_DIR)
            print(f"logged to run {run_id} at {redact(args.tracking_uri)}", file=sys.stderr)
    except ReportError as err:
        print(f"automl-report: {err}", file=sys.stderr)
        return 2
    print(index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
