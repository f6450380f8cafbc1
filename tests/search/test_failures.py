"""Sweeps whose trials fail (a learning rate of 1e6 diverges in its first epoch) or are cut off by
the time budget: every trial ends with a final status in summary.json and in MLflow, a failed
trial is never started over under the same id, and a sweep with no good trial exports nothing."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import compose_sweep_config, mlflow_uri, sweep_runs
from optuna.trial import TrialState

from automl.search.study import existing_study, study_storage
from automl.search.sweep import run_sweep
from automl.search.trial import overrides_from_trial

pytestmark = pytest.mark.slow  # whole sweeps on the tiny model

REPO = Path(__file__).resolve().parents[2]
FINAL = {"completed", "pruned_overfit", "stopped_early", "stopped_budget", "failed"}


def _space(tmp: Path, text: str) -> str:
    path = tmp / "space.yaml"
    path.write_text(text)
    return str(path)


def _summary(tmp: Path) -> dict:
    return json.loads((tmp / "outputs" / "smoke" / "summary.json").read_text())


def test_sweep_whose_trials_all_fail_ends_cleanly_exports_nothing_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from automl.cli.sweep import main

    space = _space(tmp_path, "peft.frozen_layers: {type: int, low: 0, high: 1}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [
        "automl-sweep", "experiment=smoke", "train.learning_rate=1e6", "sweep.num_samples=2",
        f"search_space={space}", f"paths.output_dir={tmp_path / 'outputs'}",
        f"tracking.uri={mlflow_uri(tmp_path)}", "ray.num_cpus=2",
    ])  # fmt: skip
    with pytest.raises(SystemExit) as exited:  # a script or CI job sees that nothing came out
        main()
    assert exited.value.code == 1
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "error: nothing exported: smoke (all trials failed)"
    monkeypatch.setattr(sys, "argv", [*sys.argv, "sweep.dry_run=true"])
    main()  # the next command in this process starts clean: a dry run exits 0
    summary = _summary(tmp_path)
    assert summary["outcome"] == "all_trials_failed"
    assert summary["statuses"] == {"failed": 2}
    assert summary["best_trial"] is None and summary["export_dir"] is None
    assert not (tmp_path / "outputs" / "smoke" / "best").exists()
    assert all("non-finite" in row["reason"] for row in summary["trials"])
    # each was retried (sweep.max_failures=1) and its retry did not train again: the same seed
    # from the same checkpoint diverges again
    assert all(row["reason"].endswith("(a retry; not trained again)") for row in summary["trials"])
    assert all(row["retries"] == 1 for row in summary["trials"])
    parents, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "smoke")
    assert len(parents) == 1 and parents[0].info.status == "FAILED"
    assert parents[0].data.tags["status"] == "all_trials_failed"
    assert len(children) == 2
    for child in children:
        assert child.info.status == "FAILED" and child.data.tags["status"] == "failed"
        assert "non-finite" in child.data.tags["status_reason"]


def test_a_trial_that_diverged_is_not_trained_again_on_a_reused_actor(tmp_path: Path) -> None:
    """The retry of a trial that diverged on the CPU ends at once. Noted in Ray's own trial
    folder, the note was missed whenever the first attempt ran on an actor reused from an
    earlier trial (that folder differs between a fresh and a reused actor)."""
    # the random sampler (seed 0) draws 1e-2, 1e6, 1e-2: the second trial diverges, on the
    # actor the first trial ran on
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", "sampler=random", "sampler.seed=0", "sweep.num_samples=3",
        "sweep.max_concurrent=1", "sweep.max_failures=1", "sweep.reuse_actors=true",
        "pruner=none", "train.epochs=1", "tracking.enabled=false",
        "search_space="
        + _space(tmp_path, "train.learning_rate: {type: categorical, choices: [1.0e6, 1.0e-2]}\n"),
    )  # fmt: skip
    run_sweep(conf)
    rows = _summary(tmp_path)["trials"]
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["retries"] == 1, [r["status"] for r in rows]
    assert failed[0]["reason"].endswith("(a retry; not trained again)"), failed[0]["reason"]
    assert [row["status"] for row in rows].count("completed") == 2


def test_trials_cut_off_by_the_time_budget_end_with_a_final_status(tmp_path: Path) -> None:
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", "train.epochs=200", "sweep.num_samples=2",
        "sweep.time_budget_s=15", "pruner=none",
        "search_space=" + _space(tmp_path, "peft.frozen_layers: {type: int, low: 0, high: 1}\n"),
    )  # fmt: skip
    outcome = run_sweep(conf)
    summary = _summary(tmp_path)
    assert {row["status"] for row in summary["trials"]} <= FINAL, summary["statuses"]
    cut = [row for row in summary["trials"] if row["status"] == "stopped_budget"]
    assert cut, summary["statuses"]
    for row in cut:
        assert "time budget" in row["reason"] and row["epochs_run"] < 200
    scored = [row for row in cut if row["best_value"] is not None]
    if scored:  # at least one epoch ran: its best epoch still counts and is exported
        assert summary["best_trial"] in {row["trial_id"] for row in scored}
        assert outcome.export_dir is not None and outcome.export_dir.is_dir()
    # the Optuna study holds every scored trial as the summary does, cut-off ones too (Ray ends
    # them without telling the searcher: they were marked failed, so the sampler, the importance
    # plot and a resume that runs the rest never learnt from them)
    study = existing_study(study_storage(tmp_path / "outputs" / "smoke"), "smoke")
    told = sorted(
        (json.dumps(overrides_from_trial(t.params)), t.value)
        for t in study.get_trials(states=(TrialState.COMPLETE,))
    )
    expected = sorted(
        (json.dumps(row["params"]), row["best_value"])
        for row in summary["trials"]
        if row["best_value"] is not None and row["status"] != "failed"
    )
    assert told == expected
    parents, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "smoke")
    assert parents[0].info.status in ("FINISHED", "FAILED")
    assert len(children) == len(summary["trials"])
    assert all(child.info.status != "RUNNING" for child in children)
    assert {child.data.tags["status"] for child in children} <= FINAL


def test_a_budget_that_ends_before_any_epoch_says_what_to_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """MiniLM on the whole corpus: an epoch takes ~25 s here; one second of budget sees none."""
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", "model=minilm", "data.max_examples=null",
        "sweep.num_samples=2", "sweep.time_budget_s=1",
    )  # fmt: skip
    with caplog.at_level("WARNING", logger="automl.sweep"):
        outcome = run_sweep(conf)
    summary = _summary(tmp_path)
    assert summary["outcome"] == "time_budget_ran_out" and outcome.export_dir is None
    assert all(row["epochs_run"] == 0 for row in summary["trials"])
    assert (
        "sweep.time_budget_s=1 ran out before any trial finished an epoch: raise it, or make an "
        "epoch shorter (data.max_examples, a smaller model)"
    ) in caplog.messages


def _sweep(tmp: Path, *overrides: str, kill_after_failure_at: str | None = None) -> str:
    """Run the CLI sweep; with `kill_after_failure_at`, SIGKILL its process group at the first
    stderr line matching it that follows a trial's failure. Returns the stderr seen."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [
        sys.executable, "-m", "automl.cli.sweep", "experiment=smoke",
        f"paths.output_dir={tmp / 'outputs'}", f"tracking.uri={mlflow_uri(tmp)}",
        "ray.num_cpus=2", *overrides,
    ]  # fmt: skip
    proc = subprocess.Popen(
        command, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    seen: list[str] = []
    failed = False
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        failed = failed or re.search(r"trial \w+ failed:", line) is not None
        if failed and kill_after_failure_at and re.search(kill_after_failure_at, line):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return "".join(seen)
    proc.wait(timeout=600)
    assert proc.returncode == 0, "".join(seen)[-3000:]
    assert not kill_after_failure_at, "no trial failed before the end"
    return "".join(seen)


@pytest.mark.long
def test_failed_trial_is_not_started_over_when_the_sweep_resumes(tmp_path: Path) -> None:
    # the random sampler (seed 0) draws 1e-2, 1e6, 1e-2: the second trial diverges
    overrides = [
        "sampler=random", "sampler.seed=0", "sweep.num_samples=3", "sweep.max_concurrent=1",
        "sweep.max_failures=0", "pruner=none", "train.epochs=3",
        "search_space="
        + _space(tmp_path, "train.learning_rate: {type: categorical, choices: [1.0e6, 1.0e-2]}\n"),
    ]  # fmt: skip
    first = _sweep(tmp_path, *overrides, kill_after_failure_at=r"trial \w+ epoch 2/")
    failed = re.findall(r"trial (\w+) failed:", first)
    assert len(failed) == 1
    second = _sweep(tmp_path, *overrides, "sweep.resume=true")
    assert not re.search(rf"trial {failed[0]} started", second), second[-3000:]
    summary = _summary(tmp_path)
    assert summary["num_trials"] == 3
    rows = {row["trial_id"]: row for row in summary["trials"]}
    assert rows[failed[0]]["status"] == "failed"
    assert summary["best_trial"] != failed[0] and summary["export_dir"]
    parents, children = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "smoke")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    statuses = {c.data.tags["automl.trial_id"]: c.info.status for c in children}
    assert statuses[failed[0]] == "FAILED"
    assert sorted(statuses) == sorted(rows)  # one child run per trial, none duplicated
    assert all(status == "FINISHED" for tid, status in statuses.items() if tid != failed[0])


def test_ray_shuts_down_even_when_closing_the_mlflow_run_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A sweep that fails, and whose MLflow store then fails too (a server gone): the cluster
    this sweep started is still shut down, and the sweep's own error is the one raised (the
    store's hid it), the store's a warning."""
    import ray

    import automl.search.sweep as sweep_module
    from automl.tracking.runs import SweepTracker

    def fit_fails(*args: object) -> None:
        raise RuntimeError("a trial broke the sweep")

    def store_gone(*args: object) -> None:
        raise ConnectionError("the tracking server went away")

    shutdowns: list[bool] = []
    monkeypatch.setattr(sweep_module, "init_ray", lambda conf, plan: True)  # "we started it"
    monkeypatch.setattr(ray, "shutdown", lambda: shutdowns.append(True))
    monkeypatch.setattr(sweep_module, "_fit", fit_fails)
    monkeypatch.setattr(SweepTracker, "end_sweep", store_gone)
    conf = compose_sweep_config(tmp_path, "experiment=smoke")
    with pytest.raises(RuntimeError, match="a trial broke the sweep"):
        run_sweep(conf)
    assert shutdowns == [True]
    assert "the sweep's runs were not ended (the tracking server went away)" in caplog.text


def test_a_store_that_fails_during_the_sweep_is_one_line_naming_the_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An MLflow server gone mid-sweep was MLflow's REST-client traceback."""
    import ray
    from mlflow.exceptions import MlflowException

    import automl.search.sweep as sweep_module
    from automl.cli.sweep import main

    def store_fails(*args: object) -> None:
        try:
            raise ConnectionError("refused")
        except ConnectionError:
            raise RuntimeError("a Tune callback failed") from MlflowException(
                "API request to http://u:secret@host:5000/api failed\nwith 3 more lines"
            )

    monkeypatch.setattr(sweep_module, "init_ray", lambda conf, plan: True)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.setattr(sweep_module, "_fit", store_fails)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        "sys.argv", ["automl-sweep", "experiment=smoke", f"paths.output_dir={tmp_path}/out",
                     f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", "hydra.run.dir=."],
    )  # fmt: skip
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(
        f"error: MLflow (store sqlite:///{tmp_path}/mlflow.db) failed: API request to"
    )
    assert "secret" not in err and "once the store works again" in err
    assert err.endswith("with sweep.resume=true (debug=true shows the traceback)")
    parents, _ = sweep_runs(f"sqlite:///{tmp_path / 'mlflow.db'}", "smoke")
    assert [p.info.status for p in parents] == ["FAILED"]


def test_a_resume_with_nothing_to_resume_opens_a_parent_run_of_its_own(
    tmp_path: Path, shared_ray: Any
) -> None:
    """`sweep.resume=true` where the output folder holds no run of the sweep (another
    `paths.output_dir`, or deleted outputs) starts afresh: it reopened the latest parent run
    of the sweep's name in the shared store and ended it with its own results."""
    shared_ray()
    space = _space(tmp_path, "peft.frozen_layers: {type: int, low: 0, high: 1}\n")
    common = ("experiment=smoke", "sweep.num_samples=1", "train.epochs=1", f"search_space={space}")
    run_sweep(compose_sweep_config(tmp_path, *common))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (first,), _ = sweep_runs(uri, "smoke")
    elsewhere = compose_sweep_config(tmp_path, *common, "sweep.resume=true")
    elsewhere.paths.output_dir = str(tmp_path / "elsewhere")
    # a study left there (its state file deleted): not this sweep's history
    (tmp_path / "elsewhere" / "smoke").mkdir(parents=True)
    shutil.copy(tmp_path / "outputs" / "smoke" / "optuna.journal", tmp_path / "elsewhere" / "smoke")
    run_sweep(elsewhere)
    study = existing_study(study_storage(tmp_path / "elsewhere" / "smoke"), "smoke")
    assert study is not None and len(study.trials) == 1  # its own trial alone
    parents, children = sweep_runs(uri, "smoke")
    assert len(parents) == 2 and len(children) == 2
    again = next(p for p in parents if p.info.run_id == first.info.run_id)
    assert again.data.tags == first.data.tags and again.data.metrics == first.data.metrics


@pytest.mark.slow  # a sweep's data prepared
def test_a_sweep_of_the_name_started_meanwhile_on_a_shared_storage_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two sweeps of one name from two output folders on one `paths.storage`, started
    together: each was planned before the other had marked the storage's folder, and the later
    one deleted the earlier one's live Ray experiment as its own fresh start."""
    import automl.search.sweep as sweep_module
    from automl.config.schema import ConfigError
    from automl.search.state import OWNER_FILE, mark_owner, storage_lock_file, sweep_lock

    storage = tmp_path / "shared"
    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", "tracking.enabled=false", f"paths.storage={storage}",
        "paths.storage_shared=true",
    )  # fmt: skip
    # the other driver holds the storage's lock of the name
    with sweep_lock(storage, "smoke", storage_lock_file("smoke")):
        with pytest.raises(ConfigError, match=r"^config: sweep.name: sweep smoke is running in"):
            run_sweep(conf)
    # ... or it ran, and marked the folder its own, after this sweep was planned
    real = sweep_module.prepare_data_for_models

    def meanwhile(*args: Any, **kwargs: Any) -> Any:
        prepared = real(*args, **kwargs)
        mark_owner(storage / "smoke", "another-sweep", tmp_path / "elsewhere" / "smoke")
        return prepared

    monkeypatch.setattr(sweep_module, "prepare_data_for_models", meanwhile)
    with pytest.raises(ConfigError, match=r"^config: paths.storage: .* in .*elsewhere/smoke, not"):
        run_sweep(conf)
    assert (storage / "smoke" / OWNER_FILE).is_file()  # the other sweep's folder stays
