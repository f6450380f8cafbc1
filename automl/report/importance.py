"""Hyperparameter importance from the sweep's Optuna study (its journal file)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

from automl.console import first_line
from automl.report.plots import Plot, _figure, _save
from automl.search.study import STUDY_FILE


def param_importances(summary: dict[str, Any], out_dir: Path) -> tuple[dict[str, float], str]:
    """Optuna's importances over the sweep's study, and a note on what was left out or why
    there are none. Degenerate studies (under 2 complete trials, only constant parameters)
    give no importances and a note, never an exception."""
    journal = out_dir / STUDY_FILE
    if not journal.is_file():
        return {}, f"No Optuna study ({STUDY_FILE}) beside the summary."
    import optuna
    from optuna.trial import TrialState

    from automl.search.study import existing_study, study_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:  # a journal damaged in the middle (a full disk, an edit): a note, the page still builds
        study = existing_study(study_storage(out_dir), summary["sweep"])
    except Exception as err:
        return {}, f"The Optuna journal ({STUDY_FILE}) cannot be read: {first_line(err, 200)}"
    if study is None:  # a journal cut short in its first record reads as no study at all
        return {}, (
            f"The Optuna journal has no study named {summary['sweep']!r} (another sweep's, or "
            "cut short?)."
        )
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"Importance needs at least 2 complete trials; this study has {len(complete)}."
    # conditional branches (e.g. `train.learning_rate[peft.lora_rank=0]`) exist in some trials
    # only; Optuna ranks the parameters every complete trial has, and constant ones say nothing
    shared = set.intersection(*(set(t.params) for t in complete))
    constant = sorted(p for p in shared if len({repr(t.params[p]) for t in complete}) == 1)
    # a range an extension round changed: Optuna refuses to rank a parameter whose
    # distribution differs between trials (the whole plot was lost to it)
    changed = sorted(p for p in shared if len({repr(t.distributions[p]) for t in complete}) > 1)
    varied = sorted(shared - set(constant) - set(changed))
    partial = sorted(set().union(*(set(t.params) for t in complete)) - shared)
    notes = []
    if constant:
        notes.append("constant in every complete trial (no importance): " + ", ".join(constant))
    if partial:
        notes.append("left out, set in only some trials: " + ", ".join(partial))
    if changed:
        notes.append("left out, its range changed between rounds: " + ", ".join(changed))
    if not varied:
        return {}, "No parameter varied across the complete trials. " + "; ".join(notes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            importances = optuna.importance.get_param_importances(
                study, params=varied, evaluator=_evaluator(), target=_metric_target(study)
            )
    except (ValueError, RuntimeError, ZeroDivisionError) as err:
        return {}, f"Optuna could not rank the parameters: {err}"
    clean = {k: float(v) for k, v in importances.items() if math.isfinite(v)}
    if not clean or not any(clean.values()):
        return {}, "Optuna found no parameter that explains the objective. " + "; ".join(notes)
    return clean, "; ".join(notes)


def _metric_target(study: Any) -> Any:
    """A two-objective study (sweep.second_objective) is ranked for its first value, the
    metric; the second, trainable parameters, is a function of the configuration."""
    return (lambda trial: trial.values[0]) if len(study.directions) > 1 else None


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
