"""A sweep killed with SIGKILL at any point resumes to exactly the planned trials, loses nothing,
duplicates nothing in MLflow, and still exports the best model; a finished sweep can be extended;
a trial whose worker dies is retried from its checkpoint."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import mlflow_uri, sweep_runs

pytestmark = pytest.mark.slow  # several sweeps in subprocesses: minutes

REPO = Path(__file__).resolve().parents[2]
TRIALS = 3


def sweep_command(tmp: Path, *overrides: str) -> list[str]:
    return [
        sys.executable, "-m", "automl.cli.sweep", "experiment=smoke",
        f"sweep.num_samples={TRIALS}", f"paths.output_dir={tmp / 'outputs'}",
        f"tracking.uri={mlflow_uri(tmp)}", "ray.num_cpus=2", *overrides,
    ]  # fmt: skip


def run(
    tmp: Path,
    *overrides: str,
    kill_at: str | None = None,
    kill_after: str | None = None,
    kill_worker_at: str | None = None,
    interrupt_at: str | None = None,
    interrupt_with: signal.Signals = signal.SIGINT,
) -> str:
    """Run a sweep in its own process group; SIGKILL the whole group (driver, Ray and its
    workers, as a lost machine would) when a stderr line matches `kill_at`, SIGKILL one
    trial worker when a line matches `kill_worker_at`, or send `interrupt_with` when one
    matches `interrupt_at` (SIGINT to the whole group, as a terminal's Ctrl-C; SIGTERM to the
    driver, as a scheduler), and the sweep must then exit 128 + it; `kill_after`: `kill_at`
    counts only once a line matched it. Returns the stderr seen."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        sweep_command(tmp, *overrides), cwd=tmp, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    seen: list[str] = []
    expected = 0
    assert proc.stderr is not None
    for line in proc.stderr:
        seen.append(line)
        if kill_after and re.search(kill_after, line):
            kill_after = None
            continue
        if kill_at and not kill_after and re.search(kill_at, line):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            _wait_group_gone(proc.pid)
            return "".join(seen)
        if kill_worker_at and re.search(kill_worker_at, line):
            kill_worker_at = None
            family = psutil.Process(proc.pid).children(recursive=True)
            workers = [p for p in family if "ImplicitFunc" in " ".join(_cmdline(p))]
            assert workers, "no trial worker found"
            workers[0].kill()
        if interrupt_at and re.search(interrupt_at, line):
            interrupt_at = None
            if interrupt_with == signal.SIGINT:
                os.killpg(proc.pid, interrupt_with)
            else:
                os.kill(proc.pid, interrupt_with)
            expected = 128 + interrupt_with
    proc.wait(timeout=300)
    text = "".join(seen)
    assert proc.returncode == expected, text[-3000:]
    return text


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _wait_group_gone(pgid: int) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return


def check_finished_sweep(tmp: Path, trials: int = TRIALS) -> dict:
    summary = json.loads((tmp / "outputs" / "smoke" / "summary.json").read_text())
    assert summary["num_trials"] == trials
    assert len({row["trial_id"] for row in summary["trials"]}) == trials
    parents, children = sweep_runs(f"sqlite:///{tmp / 'mlflow.db'}", "smoke")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trial_ids = [c.data.tags["automl.trial_id"] for c in children]
    assert sorted(trial_ids) == sorted(row["trial_id"] for row in summary["trials"])  # no dupes
    assert all(c.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for c in children)
    assert summary["mlflow_run_id"] == parents[0].info.run_id  # the resumed sweep's one run
    state = json.loads((tmp / "outputs" / "smoke" / "sweep_state.json").read_text())
    assert state["mlflow_run_id"] == parents[0].info.run_id  # what the next resume reopens
    assert all(c.data.tags["status"] != "running" for c in children)
    assert {c.info.status for c in children} <= {"FINISHED", "FAILED"}  # none left KILLED
    best = tmp / "outputs" / "smoke" / "best"
    provenance = json.loads((best / "provenance.json").read_text())
    assert provenance["trial_id"] == summary["best_trial"]
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(best)
    assert not list((tmp / "outputs" / "smoke").glob(".best.*"))  # no half-written export
    return summary


# Where each run of the sweep is killed, in order: every resume meets the next kill point
# (a run that resumes an interrupted sweep is itself killed, as a flaky cluster would do it).
KILL_POINTS = [
    ("before the first result", r"trial \w+ started"),
    ("mid-trial", r"trial \w+ epoch 1/"),
    ("between trials", r"trial \w+ (completed|pruned_overfit|stopped_early):"),
    ("during the export", r"exporting trial"),
]


def _partial_runs_are_sound(tmp: Path, where: str) -> None:
    """After a kill: one parent run so far, and no trial with two child runs."""
    parents, children = sweep_runs(f"sqlite:///{tmp / 'mlflow.db'}", "smoke")
    assert len(parents) == 1, f"killed {where}: {len(parents)} parent runs"
    ids = [c.data.tags["automl.trial_id"] for c in children]
    assert len(ids) == len(set(ids)), f"killed {where}: a trial logged twice: {sorted(ids)}"


def _registered_versions(tmp: Path) -> list[str]:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    return sorted(str(v.version) for v in client.search_model_versions("name = 'smoke'"))


@pytest.mark.long
def test_sweep_killed_at_every_point_resumes_exactly_and_extends(tmp_path: Path) -> None:
    """One sweep, killed (SIGKILL to its whole process group) before the first result, then
    on resuming mid-trial, then between trials, then during the export, finishes on the last
    resume with exactly its planned trials; a later run extends the finished sweep on the same
    Optuna study. (One sweep for every kill point: each launch costs seconds of start-up.)"""
    import optuna

    from automl.search.study import study_storage

    for i, (where, kill_at) in enumerate(KILL_POINTS):
        seen = run(tmp_path, *(["sweep.resume=true"] if i else []), kill_at=kill_at)
        assert re.search(kill_at, seen), f"the run meant to die {where} ended:\n{seen[-3000:]}"
        _partial_runs_are_sound(tmp_path, where)
    run(tmp_path, "sweep.resume=true")
    first = check_finished_sweep(tmp_path)
    assert _registered_versions(tmp_path) == ["1"]
    seen = run(tmp_path, "sweep.resume=true")  # finished: exports again, registers no copy
    assert "already has 3 trials; exporting again" in seen
    again = check_finished_sweep(tmp_path)
    same = ("best_trial", "best_value", "test_accuracy")
    assert [again[k] for k in same] == [first[k] for k in same]
    assert _registered_versions(tmp_path) == ["1"]

    run(tmp_path, "sweep.resume=true", f"sweep.num_samples={TRIALS + 2}")
    second = check_finished_sweep(tmp_path, TRIALS + 2)
    old = {row["trial_id"] for row in first["trials"]}
    assert old <= {row["trial_id"] for row in second["trials"]}
    study = optuna.load_study(
        study_name="smoke", storage=study_storage(tmp_path / "outputs" / "smoke")
    )
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == TRIALS + 2  # the sampler saw every trial, none lost or repeated

    # a further extension killed before Ray saved its round, resumed with fewer trials than
    # the sweep has: Ray read num_samples=-1 as no limit and sampled on without end
    state_file = tmp_path / "outputs" / "smoke" / "sweep_state.json"
    state = json.loads(state_file.read_text())
    state.update(phase="running", round=state["round"] + 1)
    state_file.write_text(json.dumps(state))
    seen = run(tmp_path, "sweep.resume=true", f"sweep.num_samples={TRIALS + 1}")
    assert f"already has {TRIALS + 2} trials; nothing to add" in seen
    check_finished_sweep(tmp_path, TRIALS + 2)


def test_a_copy_of_a_sweep_killed_midway_resumes_with_its_own_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray pickles the Optuna searcher with the journal's absolute path: the copy of a sweep
    killed mid-round, resumed, told its trials to the original's journal (and its own marked
    them failed), so the original's study gained trials it never ran. And Ray restores the
    records of trials that had ended with their checkpoints' old paths: the copy's export came
    from the original's checkpoint (a moved folder's: none)."""
    import shutil

    import optuna

    from automl.search.study import study_storage

    # killed in the next trial's first epoch, after Ray saved the ended one (it saves its
    # experiment at every step with TUNE_GLOBAL_CHECKPOINT_S=0)
    ended, epoch = r"trial \w+ (completed|pruned_overfit|stopped_early):", r"trial \w+ epoch 1/"
    monkeypatch.setenv("TUNE_GLOBAL_CHECKPOINT_S", "0")  # (run() passes the environment on)
    seen = run(tmp_path, "tracking.enabled=false", "sweep.keep_checkpoints=true",
               kill_at=epoch, kill_after=ended)  # fmt: skip
    monkeypatch.delenv("TUNE_GLOBAL_CHECKPOINT_S")
    assert re.search(ended, seen) and re.search(epoch, seen.splitlines()[-1]), seen[-3000:]
    original = tmp_path / "outputs" / "smoke"
    before = (original / "optuna.journal").read_bytes()
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(original, elsewhere / "outputs" / "smoke", symlinks=True)
    run(elsewhere, "tracking.enabled=false", "sweep.keep_checkpoints=true", "sweep.resume=true")
    assert (original / "optuna.journal").read_bytes() == before
    summary = json.loads((elsewhere / "outputs" / "smoke" / "summary.json").read_text())
    assert summary["num_trials"] == TRIALS
    kept = [row["checkpoint"] for row in summary["trials"] if row.get("checkpoint")]
    assert len(kept) == TRIALS  # the trial that ended before the kill too, under the copy
    assert all(Path(c).is_relative_to(elsewhere.resolve()) for c in kept), kept
    provenance = json.loads(
        (elsewhere / "outputs" / "smoke" / "best" / "provenance.json").read_text()
    )
    assert provenance["trial_id"] == summary["best_trial"]
    study = optuna.load_study(
        study_name="smoke", storage=study_storage(elsewhere / "outputs" / "smoke")
    )
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == TRIALS, states


def test_resume_keeps_trials_that_rays_saved_state_missed(tmp_path: Path) -> None:
    """Ray saves its trials' states and this sweep's records (the callback state) in separate
    files, at intervals: a kill can leave a trial that had ended saved as running, and records
    older than the trials, or none. (Seen in CI: a resumed sweep of 3 trials summed up 1.)
    The ended trial, restarted by Ray from its slimmed checkpoint, must end at once, and its
    record is rebuilt from the checkpoint. The state may also name the checkpoint before the
    latest (Ray stores it a little after deleting that one): it must still be there."""
    seen = run(tmp_path, "pruner=none", kill_at=KILL_POINTS[2][1])  # between trials
    ended = re.search(r"trial (\w+) completed:", seen)
    assert ended is not None, seen[-3000:]
    experiment = tmp_path / "outputs" / "smoke" / "ray" / "smoke"
    saved = max(experiment.glob("experiment_state-*.json"))
    state = json.loads(saved.read_text())
    for entry in state["trial_data"]:  # as if Ray's last save came before the trial ended
        entry[0] = entry[0].replace('"status": "TERMINATED"', '"status": "RUNNING"')
    saved.write_text(json.dumps(state))
    records = list(experiment.glob("callback-states-*.pkl"))
    assert records, sorted(p.name for p in experiment.iterdir())
    for path in records:  # as if every save of the records had been cut short
        path.unlink()
    torn = experiment / f".{saved.name}.1a2b3c4d.partial"  # a copy the kill cut short
    torn.write_text('{"trial_da')
    resumed = run(tmp_path, "pruner=none", "sweep.resume=true")
    assert not torn.exists()
    summary = check_finished_sweep(tmp_path)
    row = {row["trial_id"]: row for row in summary["trials"]}[ended.group(1)]
    assert row["status"] == "completed", row
    assert row["epochs_run"] == row["params"]["train.epochs"]
    assert [h["epoch"] for h in row["history"]] == list(range(1, row["epochs_run"] + 1))
    assert row["best_value"] == max(h["val_accuracy"] for h in row["history"])
    assert row["checkpoint"] and row["wall_s"] > 0
    # it trained no further, or (Ray's state lagging a checkpoint behind) its last epochs again
    again = [int(e) for e in re.findall(rf"trial {ended.group(1)} epoch (\d+)/", resumed)]
    assert again == list(range(row["epochs_run"] - len(again) + 1, row["epochs_run"] + 1))
    assert "failed" not in {r["status"] for r in summary["trials"]}


def test_ctrl_c_stops_the_sweep_resumably_and_resume_continues_its_trials(tmp_path: Path) -> None:
    """Ray turns a Ctrl-C into an ordinary end of `fit`; the sweep must not take it for one:
    nothing is exported, no trial is closed as `stopped`, and the resume continues the
    interrupted trials from their checkpoints instead of starting a new round."""
    # pruner=none and an epoch before the trial's last: it is surely still running
    seen = run(tmp_path, "pruner=none", interrupt_at=r"trial \w+ epoch 2/[34]")
    assert "stopped: run the same command with sweep.resume=true" in seen
    assert seen.strip().splitlines()[-1] == "error: stopped by Ctrl-C (SIGINT)"
    assert "Tuner.restore(" not in seen  # Ray's own hint names its API, not this command
    _stopped_resumably(tmp_path)
    interrupted = re.search(r"trial (\w+) epoch 2/[34]", seen)
    assert interrupted is not None

    stopped_at = time.time()
    time.sleep(2)
    resumed_at = time.time()
    resumed = run(tmp_path, "pruner=none", "sweep.resume=true")
    assert "resuming smoke" in resumed and "extending" not in resumed
    summary = check_finished_sweep(tmp_path)
    rows = {row["trial_id"]: row for row in summary["trials"]}
    assert "stopped" not in {row["status"] for row in rows.values()}
    # the interrupted trial went on from a checkpoint, not from the start (Ray may not yet
    # have recorded the newest one when the Ctrl-C came: that epoch then runs again)
    trial = interrupted.group(1)
    logged = re.findall(rf"trial {trial} epoch (\d+)/", seen + resumed)
    assert logged.count("1") == 1, resumed[-3000:]
    assert rows[trial]["status"] == "completed" and rows[trial]["retries"] == 0
    assert rows[trial]["epochs_run"] == rows[trial]["params"]["train.epochs"]
    # the time the sweep was stopped is not the trial's: its wall time leaves it out
    assert rows[trial]["paused_s"] >= resumed_at - stopped_at


def _stopped_resumably(tmp: Path) -> None:
    """A stopped sweep: its state still "running" (a resume continues it), nothing exported,
    its MLflow parent run KILLED."""
    out = tmp / "outputs" / "smoke"
    assert json.loads((out / "sweep_state.json").read_text())["phase"] == "running"
    assert not (out / "summary.json").exists() and not (out / "best").exists()
    parents, children = sweep_runs(f"sqlite:///{tmp / 'mlflow.db'}", "smoke")
    assert [p.info.status for p in parents] == ["KILLED"]
    # the trials it stopped: KILLED until resumed, their `status` tag too (it said "running")
    paused = [c for c in children if c.data.tags["status"] == "killed"]
    assert paused and {c.info.status for c in paused} == {"KILLED"}
    assert all(c.data.tags["status"] != "running" for c in children)


def test_sigterm_stops_the_sweep_as_ctrl_c_does(tmp_path: Path) -> None:
    """A scheduler's SIGTERM (a job's time limit, a preempted node) to the driver: the same
    resumable stop, not Ray's stack dump and exit 15 with the running trials in limbo."""
    budget = "sweep.time_budget_s=600"
    seen = run(tmp_path, budget, interrupt_at=r"trial \w+ epoch 1/", interrupt_with=signal.SIGTERM)
    assert seen.strip().splitlines()[-1] == "error: stopped by SIGTERM"
    assert "SIGTERM received" not in seen
    _stopped_resumably(tmp_path)
    # the resume goes on with what is left of the budget: Ray restored the whole of it, so a
    # sweep stopped and resumed again and again (a preempted node) never ran out
    spent = json.loads((tmp_path / "outputs" / "smoke" / "sweep_state.json").read_text())[
        "round_spent_s"
    ]
    assert 0 < spent < 600
    resumed = run(tmp_path, budget, "sweep.resume=true")
    left = re.search(r"smoke: (\d+) s of its 600 s time budget left", resumed)
    assert left is not None, resumed[-3000:]
    assert int(left.group(1)) == round(600 - spent)
    check_finished_sweep(tmp_path)


def test_trial_whose_worker_dies_is_retried_from_its_checkpoint(tmp_path: Path) -> None:
    text = run(
        tmp_path, "sweep.max_failures=2", "pruner=none", kill_worker_at=r"trial \w+ epoch 1/"
    )
    summary = check_finished_sweep(tmp_path)
    assert "failed" not in {row["status"] for row in summary["trials"]}, text[-3000:]
    assert sum(row["retries"] for row in summary["trials"]) >= 1
    assert "retry 1 from its last checkpoint" in text
    for row in summary["trials"]:
        assert row["epochs_run"] == row["params"]["train.epochs"]
