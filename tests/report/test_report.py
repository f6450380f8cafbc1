"""The sweep report, built from a synthetic summary.json and Optuna journal (no training)."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from conftest import mlflow_uri
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial
from PIL import Image

from automl.cli.report import find_sweep_run, main
from automl.report.importance import param_importances
from automl.report.page import ReportError, build_report
from automl.search.study import study_storage

SWEEP = "synth"
LR = "train.learning_rate"
LR_FULL = (
    "train.learning_rate[peft.lora_rank=0]"  # a conditional branch, as the search space names it
)
# (trial id, status, lora rank, learning rate, frozen layers, val_accuracy per epoch)
TRIALS = [
    ("t1", "completed", 8, 2e-3, 0, [0.50, 0.62, 0.70, 0.71]),
    ("t2", "pruned_overfit", 0, 5e-5, 1, [0.55, 0.54, 0.52]),
    ("t3", "completed", 4, 1e-3, 2, [0.45, 0.58, 0.66, 0.69]),
    ("t4", "stopped_early", 16, 4e-3, 1, [0.30]),
    ("t5", "completed", 8, 3e-3, 0, [0.52, 0.68, 0.74, 0.73]),
    ("t6", "failed", 0, 9e-5, 2, []),
]


def _history(accs: list[float]) -> list[dict[str, float]]:
    return [
        {"epoch": e, "val_accuracy": a, "val_loss": 1.5 - a + 0.05 * e * e,
         "train_loss": 1.4 - 0.3 * e, "val_f1": a / 2}
        for e, a in enumerate(accs, start=1)
    ]  # fmt: skip


def _row(tid: str, status: str, rank: int, lr: float, frozen: int, accs: list[float]) -> dict:
    best = max(accs) if accs else None
    return {
        "trial_id": tid,
        "params": {"peft.lora_rank": rank, LR: lr, "peft.frozen_layers": frozen},
        "status": status,
        "reason": "val_accuracy did not improve for 2 epochs" if status == "pruned_overfit" else "",
        "history": _history(accs),
        "best_value": best,
        "best_epoch": accs.index(best) + 1 if accs else 0,
        "wall_s": 3.0 * len(accs),
        "epochs_run": len(accs),
    }


def write_summary(out_dir: Path, rows: list[dict[str, Any]]) -> None:
    scored = [r for r in rows if r["best_value"] is not None]
    best = max(scored, key=lambda r: r["best_value"]) if scored else None
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {
        "sweep": SWEEP, "metric": "val_accuracy", "mode": "max",
        "best_value": best["best_value"] if best else None,
        "best_trial": best["trial_id"] if best else None,
        "best_epoch": best["best_epoch"] if best else None,
        "best_config": best["params"] if best else None,
        "export_dir": None, "num_trials": len(rows),
        "statuses": {s: sum(r["status"] == s for r in rows) for s in {r["status"] for r in rows}},
        "trial_epochs": sum(r["epochs_run"] for r in rows), "wall_s": 42.0,
        "label_names": ["a", "b"], "data": "synthetic", "trials": rows,
    }  # fmt: skip
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))


def write_study(out_dir: Path, trials: list[tuple[dict[str, Any], float | None]]) -> None:
    """An Optuna journal like OptunaSearch leaves: branch-named params, value = best metric."""
    study = optuna.create_study(
        study_name=SWEEP, storage=study_storage(out_dir), direction="maximize"
    )
    for params, value in trials:
        dists = {
            "peft.lora_rank": CategoricalDistribution([0, 4, 8, 16]),
            "peft.frozen_layers": IntDistribution(0, 2),
            LR: FloatDistribution(1e-4, 5e-3, log=True),
            LR_FULL: FloatDistribution(1e-5, 1e-4, log=True),
        }
        state = TrialState.FAIL if value is None else TrialState.COMPLETE
        study.add_trial(
            create_trial(
                params=params, distributions={k: dists[k] for k in params}, value=value, state=state
            )
        )


def _study_params(rank: int, lr: float, frozen: int) -> dict[str, Any]:
    return {"peft.lora_rank": rank, LR_FULL if rank == 0 else LR: lr, "peft.frozen_layers": frozen}


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / SWEEP
    write_summary(out, [_row(*t) for t in TRIALS])
    write_study(
        out, [(_study_params(r, lr, f), max(a) if a else None) for _, _, r, lr, f, a in TRIALS]
    )
    return out


class FakeTracker:
    def __init__(self) -> None:
        self.logged: list[tuple[Path, str | None]] = []

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        self.logged.append((path, artifact_path))


@pytest.fixture(scope="module")
def report(sweep_dir: Path) -> tuple[Path, FakeTracker]:
    tracker = FakeTracker()
    return build_report(sweep_dir, tracker), tracker


def test_a_report_written_but_not_logged_says_so(
    sweep_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MLflow failing as the files went to it made the sweep say "report: not written" of a
    page on disk."""
    import shutil

    class RefusingStore(FakeTracker):
        def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
            raise PermissionError("artifact root not writable")

    copy = Path(shutil.copytree(sweep_dir, tmp_path / SWEEP))
    with caplog.at_level(logging.WARNING, logger="automl"):
        index = build_report(copy, RefusingStore())
    assert index.is_file()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING][-1] == (
        f"report: written to {index}, not logged to MLflow (PermissionError: artifact root not "
        "writable)"
    )


def test_index_references_every_png(report: tuple[Path, FakeTracker]) -> None:
    index, _ = report
    assert index == index.parent.parent / "report" / "index.html" and index.is_file()
    page = index.read_text()
    refs = re.findall(r'<img src="([^"]+)"', page)
    pngs = sorted(p.name for p in index.parent.glob("*.png"))
    assert sorted(refs) == pngs
    assert set(pngs) == {
        "history.png", "importance.png", "learning_curves.png",
        "parallel_coordinates.png", "generalization_gap.png",
    }  # fmt: skip
    assert "<script" not in page and "http" not in page  # offline: nothing to fetch


def test_pngs_are_real_images(report: tuple[Path, FakeTracker]) -> None:
    index, _ = report
    for png in index.parent.glob("*.png"):
        assert png.stat().st_size > 8_000, png.name
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width >= 600 and image.height >= 200
            extrema = image.convert("L").getextrema()
            assert extrema[0] < 100 < extrema[1], f"{png.name} is blank"


def test_table_lists_every_trial_and_marks_pruned_and_best(
    report: tuple[Path, FakeTracker],
) -> None:
    page = report[0].read_text()
    rows = {tid: cls for cls, tid in re.findall(r'<tr class="([^"]+)"><td class="id">(\w+)', page)}
    assert set(rows) == {t[0] for t in TRIALS}
    assert rows["t2"] == "pruned_overfit" and rows["t4"] == "stopped_early"
    assert rows["t5"] == "completed best" and "t5 ★" in page
    pruned = re.search(r'<tr class="pruned_overfit">.*?</tr>', page)
    assert pruned and "PRUNED" in pruned.group() and "did not improve" in pruned.group()
    assert "<th>train.learning_rate</th>" in page and "0.002" in page


def test_logs_the_reports_own_files_to_the_tracker(report: tuple[Path, FakeTracker]) -> None:
    """Its files, not the folder: another process's drawing (`.drawing-*`) went with it."""
    index, tracker = report
    logged = {path.name for path, where in tracker.logged if where == "report"}
    assert "index.html" in logged and "history.png" in logged
    assert logged == {p.name for p in index.parent.iterdir() if not p.name.startswith(".")}


def test_importance_leaves_out_branches_with_a_note(sweep_dir: Path) -> None:
    summary = json.loads((sweep_dir / "summary.json").read_text())
    importances, note = param_importances(summary, sweep_dir)
    assert set(importances) == {"peft.lora_rank", "peft.frozen_layers"}
    assert abs(sum(importances.values()) - 1.0) < 1e-6
    assert LR in note and LR_FULL in note


@pytest.mark.parametrize(
    "study, expected",
    [
        (None, "No Optuna study"),
        ([], "has 0"),
        ([(_study_params(8, 1e-3, 0), 0.7)], "has 1"),
        (
            [(_study_params(8, 1e-3, 0), 0.7), (_study_params(8, 1e-3, 0), 0.6)],
            "No parameter varied",
        ),
    ],
    ids=["no-journal", "no-trials", "one-complete", "constant-params"],
)
def test_importance_degenerate_cases_give_a_note(
    tmp_path: Path, study: list | None, expected: str
) -> None:
    rows = [_row("t1", "completed", 8, 1e-3, 0, [0.7]), _row("t2", "failed", 8, 2e-3, 0, [])]
    write_summary(tmp_path, rows)
    if study is not None:
        write_study(tmp_path, study)
    importances, note = param_importances(
        json.loads((tmp_path / "summary.json").read_text()), tmp_path
    )
    assert importances == {} and expected in note
    page = build_report(tmp_path).read_text()  # the page still builds, with the note
    assert expected in page and not (tmp_path / "report" / "importance.png").exists()


def test_a_journal_damaged_in_the_middle_leaves_a_note_not_a_half_written_report(
    tmp_path: Path,
) -> None:
    """A bad line before the journal's end made Optuna raise: automl-report stopped with a
    traceback after deleting the old page, which was never written again."""
    write_summary(tmp_path, [_row("t1", "completed", 8, 1e-3, 0, [0.7])])
    write_study(tmp_path, [(_study_params(8, 1e-3, 0), 0.7), (_study_params(8, 2e-3, 0), 0.6)])
    journal = tmp_path / "optuna.journal"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join([lines[0], '{"op_code": 4, "worker\n', *lines[1:]]))
    page = build_report(tmp_path).read_text()
    assert "The Optuna journal (optuna.journal) cannot be read" in page
    assert (tmp_path / "report" / "history.png").is_file()


def test_importance_of_the_one_varied_parameter_names_the_constant_ones(tmp_path: Path) -> None:
    write_summary(tmp_path, [_row("t1", "completed", 8, 1e-3, 0, [0.7])])
    write_study(tmp_path, [(_study_params(8, 1e-3, 0), 0.7), (_study_params(8, 2e-3, 0), 0.6)])
    importances, note = param_importances(
        json.loads((tmp_path / "summary.json").read_text()), tmp_path
    )
    assert importances == {LR: 1.0}
    assert "constant in every complete trial" in note and "peft.frozen_layers" in note


def test_cli_on_a_folder_that_is_not_a_sweep_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in (tmp_path, tmp_path / "missing"):
        assert main([str(folder)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: ")
    (tmp_path / "summary.json").write_text("{not json")
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_cli_on_a_file_says_it_is_a_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert main([str(tmp_path / "notes.txt")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'notes.txt'}: a file, not a folder\n"


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (lambda row: row.pop("history"), "trial t1: no 'history'"),
        (lambda row: row.update(wall_s="12 s"), "trial t1: 'wall_s' is '12 s', not a int or"),
        (lambda row: row.update(params=None), "trial t1: 'params' is None, not a dict"),
        (lambda row: row.update(best_value="0.7"), "trial t1: 'best_value' is '0.7', not a"),
        (lambda row: row["history"][0].pop("epoch"), "trial t1: 'history' holds something"),
    ],
    ids=["no-history", "wall-s-text", "params-null", "value-text", "epoch-left-out"],
)
def test_cli_on_an_edited_summary_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], edit: Any, problem: str
) -> None:
    """A hand-edited or cut summary.json was a KeyError/TypeError traceback in the drawing."""
    row = _row("t1", "completed", 8, 1e-3, 0, [0.7])
    edit(row)
    write_summary(tmp_path, [row])
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and problem in err, err


def test_cli_that_cannot_write_the_report_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_summary(tmp_path, [_row("t1", "completed", 8, 1e-3, 0, [0.7])])
    (tmp_path / "report").write_text("mine")  # where the report goes, a file of the user's
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == f"error: cannot write the report: {tmp_path / 'report'}: File exists\n"
    assert (tmp_path / "report").read_text() == "mine"


@pytest.mark.parametrize(
    ("uri", "culprit"),
    [("sqlite:///{tmp}/none.db", "no such MLflow store"), ("ftp://host/x", "unsupported scheme"),
     ("http://127.0.0.1:9", "127.0.0.1:9")],
)  # fmt: skip
def test_cli_refuses_a_store_it_cannot_log_to_before_writing_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], uri: str, culprit: str
) -> None:
    write_summary(tmp_path, [_row("t1", "completed", 8, 1e-3, 0, [0.7])])
    before = sorted(tmp_path.rglob("*"))
    assert main([str(tmp_path), "--tracking-uri", uri.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: --tracking-uri: ") and culprit in err
    assert sorted(tmp_path.rglob("*")) == before  # no store created, no report written


def test_a_store_named_by_a_sqlite_uri_filename_is_found(tmp_path: Path) -> None:
    """`sqlite:///file:/path/mlflow.db?mode=rw&uri=true` (SQLite's URI filenames, which
    SQLAlchemy passes on) was refused as "no such MLflow store": `file:/path...` is no file."""
    from mlflow.tracking import MlflowClient

    from automl.cli.report import check_report_store
    from automl.tracking.uri import sqlite_path

    uri = mlflow_uri(tmp_path)
    MlflowClient(uri).search_experiments()  # the store's tables
    check_report_store(f"sqlite:///file:{sqlite_path(uri)}?mode=rw&uri=true")
    with pytest.raises(ReportError, match="no such MLflow store"):
        check_report_store(f"sqlite:///{tmp_path / 'none.db'}")


@pytest.mark.slow  # a sweep, a cluster or a CLI process
def test_cli_writes_and_logs_to_the_sweeps_mlflow_run(
    sweep_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri(tmp_path)
    client = MlflowClient(uri)
    experiment = client.create_experiment(
        "anything", artifact_location=(tmp_path / "mlruns").as_uri()
    )  # not ./mlruns of the folder the tests run in

    client.create_run(experiment, tags={"automl.sweep": "other", "automl.role": "sweep"})
    run = client.create_run(experiment, tags={"automl.sweep": SWEEP, "automl.role": "sweep"})
    assert main([str(sweep_dir), "--tracking-uri", uri]) == 0
    assert capsys.readouterr().out.strip() == str(sweep_dir / "report" / "index.html")
    logged = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/index.html", "report/history.png"} <= logged
    with pytest.raises(ReportError, match="no MLflow run of sweep 'nope'"):
        find_sweep_run(uri, "nope")


def test_cli_logs_to_the_run_the_summary_names_not_a_later_sweep_of_that_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlflow.tracking import MlflowClient

    uri = mlflow_uri(tmp_path)
    client = MlflowClient(uri)
    experiment = client.create_experiment("x", artifact_location=(tmp_path / "mlruns").as_uri())
    tags = {"automl.sweep": SWEEP, "automl.role": "sweep"}
    ours = client.create_run(experiment, tags=tags, start_time=1_000)
    later = client.create_run(experiment, tags=tags, start_time=2_000)  # another sweep, same name
    sweep_dir = tmp_path / "sweep"
    write_summary(sweep_dir, [_row("t1", "completed", 8, 1e-3, 0, [0.7])])
    summary = json.loads((sweep_dir / "summary.json").read_text())
    (sweep_dir / "summary.json").write_text(
        json.dumps({**summary, "mlflow_run_id": ours.info.run_id})
    )
    assert main([str(sweep_dir), "--tracking-uri", uri]) == 0
    assert client.list_artifacts(ours.info.run_id, "report")
    assert not client.list_artifacts(later.info.run_id, "report")
    capsys.readouterr()

    (sweep_dir / "summary.json").write_text(json.dumps({**summary, "mlflow_run_id": "0" * 32}))
    (sweep_dir / "report" / "index.html").write_text("the earlier report")
    assert main([str(sweep_dir), "--tracking-uri", uri]) == 2
    # refused before drawing: the earlier report is as it was
    assert (sweep_dir / "report" / "index.html").read_text() == "the earlier report"
    err = capsys.readouterr().err
    missing = "0" * 32
    # the last line: MLflow's own log handler, bound to an earlier test's captured stream,
    # may complain before it when the suite runs together
    assert err.splitlines()[-1] == (
        f"error: sweep {SWEEP!r} logged to MLflow run {missing}, which is not at the tracking URI"
    )
    assert not client.list_artifacts(later.info.run_id, "report")  # no guess by name
    capsys.readouterr()
    (sweep_dir / "summary.json").write_text(json.dumps({**summary, "mlflow_run_id": None}))
    assert main([str(sweep_dir), "--tracking-uri", uri]) == 2  # untracked: no run of its own
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: sweep {SWEEP!r} ran with tracking.enabled=false: it has no MLflow run to log "
        "the report to"
    )
    assert not client.list_artifacts(later.info.run_id, "report")
    # its run deleted in the UI: the report went into the trash, "logged" (and `mlflow gc`
    # then removed it)
    client.delete_run(ours.info.run_id)
    (sweep_dir / "summary.json").write_text(
        json.dumps({**summary, "mlflow_run_id": ours.info.run_id})
    )
    capsys.readouterr()
    assert main([str(sweep_dir), "--tracking-uri", uri]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: sweep {SWEEP!r} logged to MLflow run {ours.info.run_id}, which was deleted: "
        "restore it in the MLflow UI (or `mlflow runs restore`) first"
    )


def test_a_report_over_an_earlier_one_keeps_none_of_its_images(
    sweep_dir: Path, tmp_path: Path
) -> None:
    """A fresh sweep of the name with one trial: the earlier sweep's parallel-coordinates and
    Pareto PNGs stayed in report/ (the page no longer showed them) and went to the new MLflow
    run with the folder."""
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(sweep_dir, out)
    build_report(out)
    assert (out / "report" / "parallel_coordinates.png").is_file()
    (out / "report" / "confusion_matrix.png").write_bytes(b"an earlier sweep's")
    write_summary(out, [_row("t1", "completed", 8, 1e-3, 0, [0.7])])  # one trial, no test
    build_report(out)
    left = {p.name for p in (out / "report").iterdir()}
    assert "parallel_coordinates.png" not in left and "confusion_matrix.png" not in left
    assert "index.html" in left


def test_a_failed_trials_value_is_no_running_best(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial that reached 0.93 and then crashed is never exported: the running best line
    rose to it while the export (and the best-trial star) stayed at 0.90."""
    import automl.report.plots as plots

    drawn: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or str(path))
    rows = [_row("t1", "completed", 8, 1e-3, 0, [0.9]), _row("t2", "failed", 8, 2e-3, 0, [0.93])]
    write_summary(tmp_path, rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    plots.plot_history(summary, tmp_path / "history.png")
    (running,) = [
        line for line in drawn[0].axes[0].get_lines() if line.get_label() == "running best"
    ]
    assert list(running.get_ydata()) == [0.9, 0.9]


def test_an_older_or_edited_side_file_leaves_its_section_out(
    sweep_dir: Path, tmp_path: Path
) -> None:
    """A test_evaluation.json without balanced_accuracy and a data_quality.json without its
    duplicates were a KeyError traceback in `automl-report`."""
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(sweep_dir, out)
    evaluation = {"confusion_matrix": [[1]], "labels": ["a"], "per_class": [], "accuracy": 1.0}
    (out / "test_evaluation.json").write_text(json.dumps(evaluation))
    quality = {"sizes": {"train": 3}, "classes": {"smallest": []}, "truncation": {},
               "leakage": {}, "num_classes": 1}  # fmt: skip
    (out / "data_quality.json").write_text(json.dumps(quality))
    page = build_report(out).read_text()
    assert "Held-out test" not in page and "Data quality" not in page


def test_importance_leaves_out_a_range_an_extension_round_changed(tmp_path: Path) -> None:
    """Optuna refuses `params=` when one parameter's distribution differs between trials:
    widening a range in a later round lost the whole importance plot."""
    write_summary(tmp_path, [_row("t1", "completed", 8, 1e-3, 0, [0.7])])
    study = optuna.create_study(
        study_name=SWEEP, storage=study_storage(tmp_path), direction="maximize"
    )
    for i, (low, high) in enumerate([(0, 2)] * 3 + [(0, 4)] * 3):  # round 2 widened it
        study.add_trial(
            create_trial(
                params={LR: 5e-4 * (i + 1), "peft.frozen_layers": i % 3},
                distributions={LR: FloatDistribution(1e-4, 5e-3, log=True),
                               "peft.frozen_layers": IntDistribution(low, high)},
                value=0.5 + 0.05 * i,
            )
        )  # fmt: skip
    importances, note = param_importances(
        json.loads((tmp_path / "summary.json").read_text()), tmp_path
    )
    assert set(importances) == {LR}
    assert "its range changed between rounds: peft.frozen_layers" in note


def test_dollar_signs_in_names_are_drawn_as_written_and_a_failed_drawing_keeps_the_old_report(
    sweep_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Matplotlib read `$...$` as math: a searched model named `my$model_$x^` (or a class
    `$$`) failed the drawing with a many-line traceback, after the earlier report was deleted."""
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(sweep_dir, out)
    earlier = build_report(out).read_text()
    summary = json.loads((out / "summary.json").read_text())
    for row in summary["trials"]:
        row["params"]["model.name"] = "my$model_$x^"
    (out / "summary.json").write_text(json.dumps(summary))
    evaluation = {"confusion_matrix": [[2, 0], [1, 3]], "labels": ["$$", "a $5 or $10 tip"],
                  "per_class": [], "accuracy": 0.83, "macro_f1": 0.8, "balanced_accuracy": 0.8,
                  "num_examples": 6}  # fmt: skip
    (out / "test_evaluation.json").write_text(json.dumps(evaluation))
    assert main([str(out)]) == 0, capsys.readouterr().err
    assert (out / "report" / "confusion_matrix.png").is_file()
    assert "my$model_$x^" in (out / "report" / "index.html").read_text()
    # a drawing that fails all the same leaves the earlier page and its images whole
    (out / "summary.json").write_text(
        json.dumps(json.loads((sweep_dir / "summary.json").read_text()))
    )
    build_report(out)
    before = {p.name: p.read_bytes() for p in (out / "report").iterdir()}

    def broken(*args: Any) -> None:
        raise ValueError("a plot\nthat failed")

    import automl.report.page as page

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(page, "plot_gap", broken)
        assert main([str(out)]) == 2
    # (the error's lines only: an earlier test's logging handler may write here too)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "cannot draw the report (ValueError: a plot);" in err[0], err
    assert {p.name: p.read_bytes() for p in (out / "report").iterdir()} == before
    assert [p.name for p in (out / "report").iterdir() if p.name.startswith(".")] == []
    killed, drawing = out / "report" / ".drawing-killed", out / "report" / ".drawing-now"
    for folder in (killed, drawing):
        folder.mkdir()
        (folder / "history.png").write_bytes(b"half")
    hour_ago = time.time() - 3600
    for path in (killed, killed / "history.png"):  # a kill mid-drawing an hour ago left it
        os.utime(path, (hour_ago, hour_ago))
    build_report(out)
    # another process's drawing now (automl-report while the sweep finishes) is left to it
    assert [p.name for p in (out / "report").iterdir() if p.name.startswith(".")] == [
        ".drawing-now"
    ]
    assert earlier  # (the first report was drawn from the same summary)


def test_a_trial_exported_by_the_smallest_within_rule_is_not_called_the_best(
    tmp_path: Path,
) -> None:
    rows = [
        _row("t1", "completed", 8, 1e-3, 0, [0.85]),
        _row("t2", "completed", 16, 2e-3, 0, [0.9]),
    ]
    write_summary(tmp_path, rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    summary.update(best_trial="t1", best_value=0.85, best_epoch=1,
                   export_rule={"rule": "smallest_within", "tolerance": 0.05,
                                "top_trial": "t2", "top_value": 0.9})  # fmt: skip
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    page = build_report(tmp_path).read_text()
    assert "<b>Chosen:</b> trial t1" in page and "Best:" not in page
    assert "the top trial is t2, val_accuracy = 0.9" in page
    assert "★ the trial chosen for export" in page and "BUDGET: cut short" in page
    summary["export_rule"]["without_checkpoint"] = "t3"
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    assert (
        "(trial t3, the rule's choice, had lost its checkpoint)"
        in build_report(tmp_path).read_text()
    )


def test_a_blocked_export_is_not_called_a_lost_checkpoint(tmp_path: Path) -> None:
    write_summary(tmp_path, [_row("t1", "completed", 8, 1e-3, 0, [0.85])])
    summary = json.loads((tmp_path / "summary.json").read_text())
    summary["export_blocked"] = "/x/best holds files and is not an exported model"
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    page = build_report(tmp_path).read_text()
    assert "its checkpoint is gone" not in page
    assert "not exported: /x/best holds files" in page
    # with the trials it has: resume=true alone starts a new round where a budget cut it
    assert f"sweep.resume=true sweep.num_samples={summary['num_trials']} to export" in page


def test_a_summary_with_a_mode_or_name_it_cannot_draw_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_summary(tmp_path, [_row("t1", "completed", 8, 1e-3, 0, [0.85])])
    summary = json.loads((tmp_path / "summary.json").read_text())
    for key, value, problem in [("mode", "maximize", "not max or min"), ("sweep", 5, "sweep is 5")]:
        (tmp_path / "summary.json").write_text(json.dumps({**summary, key: value}))
        assert main([str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and problem in err, err


def test_best_epoch_cells_are_escaped_and_a_trial_without_epochs_shows_none(
    tmp_path: Path,
) -> None:
    row = _row("t1", "completed", 8, 1e-3, 0, [0.85])
    row["history"][0]["val_f1"] = "<script>x()</script>"
    write_summary(tmp_path, [row, _row("t2", "failed", 8, 1e-3, 0, [])])
    page = build_report(tmp_path).read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    (failed,) = re.findall(r'<tr class="failed">.*?</tr>', page)
    assert re.findall(r"<td>([^<]*)</td>", failed)[1] == "–"  # best epoch, after best value


def test_every_status_a_trial_can_end_with_is_drawn_and_explained() -> None:
    """`stopped` (Ray ended the round while the trial ran, no time budget) had no badge, no
    caption and the budget's colour: read as cut by a budget, or drawn as completed."""
    from automl.report.page import BADGES
    from automl.report.plots import STATUS_COLOURS, STOPPED
    from automl.search.callback import STATUSES

    for status in STATUSES:
        assert status in STATUS_COLOURS, status
        if status != "completed":
            assert status in BADGES and (status in STOPPED or status == "failed"), status
    assert len(set(STATUS_COLOURS.values())) == len(STATUS_COLOURS)  # told apart
    assert len(set(BADGES.values())) == len(BADGES)


def test_the_caption_explains_every_badge(report: tuple[Path, FakeTracker]) -> None:
    from automl.report.page import BADGES

    caption = report[0].read_text().split('<p class="caption">')[1].split("</p>")[0]
    assert all(f"{badge}:" in caption for badge in BADGES.values()), caption


def test_a_failed_trials_value_is_not_on_the_parallel_plots_scale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial that reached 0.93 and then crashed topped the colour scale and the metric's
    axis, as if it were the best; the other plots leave it out."""
    import automl.report.plots as plots

    drawn: list[Any] = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or str(path))
    rows = [
        _row("t1", "completed", 8, 1e-3, 0, [0.9]),
        _row("t2", "completed", 8, 3e-3, 0, [0.8]),
        _row("t3", "failed", 8, 2e-3, 0, [0.93]),
    ]
    write_summary(tmp_path, rows)
    summary = json.loads((tmp_path / "summary.json").read_text())
    plots.plot_parallel(summary, tmp_path / "parallel.png")
    labels = {t.get_text() for t in drawn[0].axes[0].texts}
    assert "0.9" in labels and not any(label.startswith("0.93") for label in labels)
