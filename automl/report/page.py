"""`automl-report`: an offline HTML report of a finished sweep, built from its summary.json.

automl-report outputs/smoke                                 # -> outputs/smoke/report/index.html
automl-report outputs/smoke --tracking-uri sqlite:///mlflow.db   # and log it to the sweep's run

The report is one HTML page and a few PNGs beside it (no JavaScript, no CDN: it opens offline):
the trial table, the optimization history, Optuna's hyperparameter importance (from the study's
journal), learning curves, parallel coordinates and the generalization gap. `automl-sweep` writes
it at the end of every sweep and logs it to the sweep's MLflow parent run under `report/`.
"""

from __future__ import annotations

import html
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from automl.config.paths import read_json_object, write_text_atomic
from automl.console import counted
from automl.export.evaluation import CONFUSION_FILE
from automl.export.portable import portable_path
from automl.provenance import masked_line
from automl.report.importance import plot_importance
from automl.report.pareto_plot import plot_pareto
from automl.report.plots import (
    Plot,
    literal_text,
    plot_curves,
    plot_gap,
    plot_history,
    plot_parallel,
)
from automl.report.sections import quality_section, test_section
from automl.search.state import finish_again
from automl.search.summary import CHECKPOINT_GONE, SCORE_NAMES, best_epoch_scores

log = logging.getLogger("automl.report")


REPORT_DIR = "report"
DRAWING = ".drawing-"  # report/.drawing-*: the report being drawn
# a drawing folder untouched this long was left by a kill; a younger one may be another
# process's drawing now (`automl-report` while the sweep finishes), which deleting would fail
STALE_DRAWING_S = 15 * 60


class ReportError(Exception):
    """The folder is not a finished sweep (one line, for the CLI)."""


def load_summary(out_dir: Path) -> dict[str, Any]:
    """The sweep's summary.json, checked enough to draw from."""
    path = out_dir / "summary.json"
    if not out_dir.is_dir():
        raise ReportError(
            f"{out_dir}: {'a file, not a folder' if out_dir.exists() else 'no such folder'}"
        )
    if not path.is_file():
        raise ReportError(f"{out_dir}: not a finished sweep (no summary.json)")
    summary = read_json_object(
        path, ("trials", "sweep", "metric", "mode"), "a sweep summary", ReportError
    )
    if not isinstance(summary["trials"], list):
        raise ReportError(f"{path}: not a sweep summary (trials is not a list)")
    for key in ("sweep", "metric"):
        if not isinstance(summary[key], str):
            raise ReportError(f"{path}: not a sweep summary ({key} is {summary[key]!r})")
    if summary["mode"] not in ("max", "min"):
        raise ReportError(
            f"{path}: not a sweep summary (mode is {summary['mode']!r}, not max or min)"
        )
    for number, row in enumerate(summary["trials"], start=1):
        problem = _row_problem(row)
        if problem:  # a hand-edited or cut file: a traceback deep in the drawing otherwise
            named = row.get("trial_id") if isinstance(row, dict) else None
            which = f"trial {named}" if isinstance(named, str) else f"trial {number}"
            raise ReportError(f"{path}: {which}: {problem}")
    return summary


# what the page reads of each trial, and the types it draws them as
_ROW_FIELDS: dict[str, tuple[type, ...]] = {
    "trial_id": (str,), "status": (str,), "history": (list,), "wall_s": (int, float),
    "params": (dict,), "best_value": (int, float, type(None)),
    "best_epoch": (int, type(None)), "epochs_run": (int, type(None)),
}  # fmt: skip


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return f"not a trial's record ({type(row).__name__})"
    for key, types in _ROW_FIELDS.items():
        if key not in row:
            return f"no {key!r}"
        if not isinstance(row[key], types) or isinstance(row[key], bool):
            return f"{key!r} is {row[key]!r}, not a {' or '.join(t.__name__ for t in types)}"
    if not all(isinstance(epoch, dict) and "epoch" in epoch for epoch in row["history"]):
        return "'history' holds something other than epochs' metrics"
    return None


PLOT_FILES = ("history.png", "importance.png", "learning_curves.png",
              "parallel_coordinates.png", "generalization_gap.png", "pareto.png")  # fmt: skip
REPORT_FILES = (*PLOT_FILES, CONFUSION_FILE, "index.html")  # what a report is, its page last


def _untouched_for(folder: Path) -> float:
    """Seconds since anything was written in `folder` (its files' and its own mtimes)."""
    try:
        times = [folder.stat().st_mtime, *(p.stat().st_mtime for p in folder.iterdir())]
    except OSError:  # gone meanwhile (its drawing finished)
        return 0.0
    return time.time() - max(times)


def build_report(out_dir: Path | str, tracker: Any = None) -> Path:
    """Write `<out_dir>/report/index.html` and its PNGs; log them to the tracker's parent run
    (a `SweepTracker`) when one is given. Returns the path of index.html."""
    out_dir = Path(out_dir).resolve()
    summary = load_summary(out_dir)
    report_dir = out_dir / REPORT_DIR
    report_dir.mkdir(parents=True, exist_ok=True)
    # drawn in a folder of its own, then moved in: a plot that failed to draw had already
    # deleted the earlier report. Inside report/ (one filesystem for the move); one a kill
    # left goes now, before the folder is logged
    for left in report_dir.glob(f"{DRAWING}*"):
        if _untouched_for(left) > STALE_DRAWING_S:
            shutil.rmtree(left, ignore_errors=True)
    drawing = Path(tempfile.mkdtemp(prefix=DRAWING, dir=report_dir))
    try:
        with literal_text():
            history, importance, curves, parallel, gap, pareto = (drawing / f for f in PLOT_FILES)
            plots = [
                plot_history(summary, history),
                plot_importance(summary, out_dir, importance),
                plot_curves(summary, curves),
                plot_parallel(summary, parallel),
                plot_gap(summary, gap),
                plot_pareto(summary, pareto),
            ]
            sections = [test_section(out_dir, drawing), quality_section(out_dir)]
        write_text_atomic(
            drawing / "index.html", render_html(summary, plots, [x for x in sections if x])
        )
        # an earlier report's images go: a plot that is only a note now (a one-trial sweep
        # started afresh under the name) left the old sweep's PNG, logged to the new MLflow run
        for name in REPORT_FILES:  # the page last
            if (drawing / name).exists():
                os.replace(drawing / name, report_dir / name)
            else:
                (report_dir / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(drawing, ignore_errors=True)
    index = report_dir / "index.html"
    log.info("report: %s", index)
    if tracker is not None:
        try:
            for path in report_files(report_dir):
                tracker.log_artifact(path, REPORT_DIR)
        except Exception as err:  # the page is written: said as such, not "not written"
            log.warning(
                "report: written to %s, not logged to MLflow (%s: %s)", index,
                type(err).__name__, masked_line(err),
            )  # fmt: skip
    return index


def report_files(report_dir: Path) -> list[Path]:
    """The report's own files, what goes to MLflow: not the whole folder, which may hold
    another process's drawing (`.drawing-*`) half-written."""
    return [report_dir / name for name in REPORT_FILES if (report_dir / name).is_file()]


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
tr.stopped_budget .badge { background: #86a; } tr.stopped_budget td.status { color: #649; }
tr.failed { background: #eee; color: #777; } tr.diverged .badge { background: #555; }
tr.stopped .badge { background: #a8a920; }
img { max-width: 100%; border: 1px solid #eee; }
.note { background: #fff8dc; border-left: 4px solid #e0c050; padding: 0.5em 1em; }
.caption { color: #555; font-size: 0.9em; }
"""


BADGES = {
    "pruned_overfit": "PRUNED",
    "stopped_early": "STOPPED",
    "stopped_budget": "BUDGET",
    "stopped": "ENDED",
    "diverged": "DIVERGED",
    "failed": "FAILED",
}


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
    extras = [c for c in ("origin", "pareto", "trainable_params") if summary["trials"]
              and c in summary["trials"][0]]  # fmt: skip
    head = ["trial", "status", f"best {metric}", "best epoch", "epochs run", "wall s", *extras]
    others = [k for k in SCORE_NAMES if k != metric]  # every score, whichever is the objective
    head += [f"{SCORE_NAMES[k]} (best epoch)" for k in others]
    head += keys
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
            f"<td>{_fmt(row['best_epoch'] or None)}</td>",  # 0: no epoch ran
            f"<td>{_fmt(row['epochs_run'])}</td>",
            f"<td>{row['wall_s']:.1f}</td>",
            *(f'<td class="id">{html.escape(_fmt(row.get(c)))}</td>' for c in extras),
            *(f"<td>{html.escape(_fmt(best_epoch_scores(row).get(k)))}</td>" for k in others),
            *(f"<td>{html.escape(_fmt(row['params'].get(k)))}</td>" for k in keys),
        ]
        row_class = html.escape(" ".join(classes), quote=True)
        lines.append(f'<tr class="{row_class}">' + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _best_line(summary: dict[str, Any]) -> str:
    """Which trial was exported and where it went, or why nothing was exported."""
    e = html.escape
    best = summary.get("best_trial")
    if best is None:
        why = str(summary.get("outcome", "no_trial_scored")).replace("_", " ")
        return f"<p><b>Nothing exported:</b> {e(why)}.</p>"
    metric, rule = summary["metric"], summary.get("export_rule") or {}
    top = rule.get("top_trial")
    chosen = (
        f"trial {e(str(best))}, {e(metric)} = {e(_fmt(summary.get('best_value')))} at epoch "
        f"{e(_fmt(summary.get('best_epoch')))}"
    )
    lost = rule.get("without_checkpoint")
    if lost:  # the rule's choice had lost its checkpoint (an extended sweep)
        chosen += f" (trial {e(str(lost))}, the rule's choice, had lost its checkpoint)"
    if top is not None and top != best:  # sweep.export_rule=smallest_within, or a lost checkpoint
        chosen += (
            f" (rule {e(str(rule.get('rule')))}: the top trial is {e(str(top))}, "
            f"{e(metric)} = {e(_fmt(rule.get('top_value')))})"
        )
    label = "Chosen" if top is not None and top != best else "Best"
    return f"<p><b>{label}:</b> {chosen}; {_where(summary)}</p>"


def _where(summary: dict[str, Any]) -> str:
    blocked = summary.get("export_blocked")
    if blocked and not summary.get("export_dir"):  # the checkpoint is kept; the folder was not
        return (
            f"not exported: {html.escape(str(blocked))}; move it, then run the same command with "
            f"{finish_again(int(summary.get('num_trials') or 0))} to export"
        )
    where = portable_path(str(summary.get("export_dir") or CHECKPOINT_GONE))
    unregistered = summary.get("registration_error")
    return f"exported to {html.escape(where)}" + (
        f"; {html.escape(str(unregistered))}" if unregistered else ""
    )


def render_html(
    summary: dict[str, Any], plots: Sequence[Plot], sections: Sequence[str] = ()
) -> str:
    """The page; `sections` (report/sections.py: test evaluation, data quality) follow the
    trial table as ready HTML."""
    e = html.escape
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.get("statuses", {}).items()))
    meta = (
        f"objective: {summary['mode']} {summary['metric']} (each trial scored by its best epoch)"
        f" · {counted(summary.get('num_trials', len(summary['trials'])), 'trial')} ({statuses})"
        f" · {summary.get('wall_s', '?')} s"
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Sweep {e(summary['sweep'])}</title><style>{CSS}</style></head><body>",
        f"<h1>Sweep {e(summary['sweep'])}</h1>",
        f'<p class="meta">{e(meta)}<br>data: {e(portable_path(str(summary.get("data", "?"))))}</p>',
        _best_line(summary),
        "<h2>Trials</h2>",
        trial_table(summary),
        '<p class="caption">★ the trial chosen for export · PRUNED: stopped for overfitting · '
        "STOPPED: stopped early by ASHA · BUDGET: cut short by the sweep's time budget · "
        "ENDED: Ray ended the round while it ran · "
        "DIVERGED: a non-finite loss after a scored epoch (its best epoch counts) · FAILED: an "
        "error, or a loss diverged in the first epoch; hover a status for the reason.</p>",
        *sections,
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
