"""What every command does with runs that came to nothing: each job of a multirun still runs,
and the command exits 1 at the end with one line naming each (a later job's bad input, exit 2,
still reports the earlier ones). A Ctrl-C is one line and exit 130, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from automl.config.schema import Config, ConfigError


def _app(ran: list[int]) -> Callable[[], None]:
    from automl.cli.app import hydra_app

    def run(conf: Config) -> int:
        ran.append(conf.train.epochs)
        if conf.train.epochs == 3:
            raise ConfigError("config: train.epochs: 3 is refused here")
        if conf.train.epochs == 5:
            raise KeyboardInterrupt
        return conf.train.epochs

    return hydra_app(run, lambda epochs: f"job with {epochs} epochs" if epochs == 2 else None)


def _multirun(
    epochs: str, tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[object, list[int], list[str]]:
    """The app over `-m train.epochs=<epochs>`: its exit code, the jobs it ran, its stderr."""
    monkeypatch.chdir(tmp)
    ran: list[int] = []
    monkeypatch.setattr(sys, "argv", ["app", "-m", "experiment=smoke", f"train.epochs={epochs}"])
    with pytest.raises(SystemExit) as exited:
        _app(ran)()
    return exited.value.code, ran, capsys.readouterr().err.strip().splitlines()


def _refused(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> list[str]:
    """The app over `argv`: it must exit 2 before any job runs; its stderr lines."""
    monkeypatch.setattr(sys, "argv", ["app", *argv])
    ran: list[int] = []
    with pytest.raises(SystemExit) as exited:
        _app(ran)()
    assert exited.value.code == 2 and not ran
    return capsys.readouterr().err.strip().splitlines()


def test_a_multirun_finishes_every_job_then_exits_1_naming_those_that_came_to_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, ran, err = _multirun("1,2,4,2", tmp_path, monkeypatch, capsys)
    assert code == 1 and ran == [1, 2, 4, 2]
    assert err[-1] == "error: job with 2 epochs; job with 2 epochs"


def test_a_later_jobs_bad_input_still_reports_the_earlier_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, ran, err = _multirun("2,3,4", tmp_path, monkeypatch, capsys)
    assert code == 2 and ran == [2, 3]  # the bad input stops the multirun
    assert err[-2:] == [
        "error: config: train.epochs: 3 is refused here",
        "error: job with 2 epochs",  # reported on the way out
    ]


def test_ctrl_c_stops_the_multirun_with_one_line_and_exit_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        code, ran, err = _multirun("2,5,4", tmp_path, monkeypatch, capsys)
    except KeyboardInterrupt:  # escaping, it would end the whole test session instead
        pytest.fail("the app let KeyboardInterrupt out")
    assert code == 130 and ran == [2, 5]  # the jobs after it do not run
    assert err[-2:] == ["error: stopped by Ctrl-C (SIGINT)", "error: job with 2 epochs"]
    assert not any("KeyboardInterrupt" in line for line in err)  # no traceback of it


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (  # an interpolation resolves only when the config is typed: a traceback, exit 1
            ["data=csv", "data.path=${oc.env:AUTOML_TEST_UNSET_VARIABLE}"],
            "error: config: ",
        ),
        (  # Hydra's own flags compose outside its error report: a traceback, exit 1
            ["experiment=smok", "--help"],
            "error: config: ",
        ),
        (  # flags Hydra refuses together: a ValueError traceback, exit 1
            ["-m", "--cfg", "job", "experiment=smoke"],
            "error: command line: Only one of --run, --multirun, --cfg",
        ),
        (["--resolve", "experiment=smoke"], "error: command line: The --resolve flag can only"),
    ],
    ids=["unset-environment-variable", "help-with-a-bad-option", "multirun-and-cfg", "resolve"],
)
def test_hydras_errors_outside_the_pre_check_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUTOML_TEST_UNSET_VARIABLE", raising=False)
    err = _refused(argv, monkeypatch, capsys)
    assert err[-1].startswith(expected) and "Traceback" not in "\n".join(err), err


def test_ctrl_c_while_the_grid_is_checked_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import automl.cli.app

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(automl.cli.app, "check_overrides", interrupted)
    try:
        code, ran, err = _multirun("1,2", tmp_path, monkeypatch, capsys)
    except KeyboardInterrupt:
        pytest.fail("the app let KeyboardInterrupt out")
    assert code == 130 and ran == [] and err == ["error: stopped by Ctrl-C (SIGINT)"]


def test_a_multirun_into_an_output_folder_it_cannot_write_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hydra writes its record of a multirun under `paths.output_dir` before the first job:
    a file there was a NotADirectoryError traceback, exit 1."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "results").write_text("a file, not a folder")
    argv = ["-m", "experiment=smoke", "train.epochs=1,2", "paths.output_dir=results"]
    err = _refused(argv, monkeypatch, capsys)
    assert err == [f"error: config: paths.output_dir: {tmp_path / 'results'} is not a folder"]


def test_a_jobs_own_error_is_not_reported_as_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HYDRA_FULL_ERROR=1 (or under a debugger) Hydra raises what a job raised: an
    OmegaConf error from the code (a bug) stays one, not "error: config: ...", exit 2."""
    from omegaconf.errors import ValidationError

    from automl.cli.app import hydra_app

    def run(conf: Config) -> None:
        raise ValidationError("a bug in the job")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HYDRA_FULL_ERROR", "1")
    monkeypatch.setattr(sys, "argv", ["app", "experiment=smoke"])
    with pytest.raises(ValidationError, match="a bug in the job"):
        hydra_app(run)()


@pytest.mark.parametrize(
    ("swept", "problem"),
    [("data.path=good.csv,missing.csv", "missing.csv: file not found"),
     ("data.text_column=text,body", "no column 'body'")],
)  # fmt: skip
def test_a_later_jobs_data_is_read_before_the_first_job_runs(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    swept: str,
    problem: str,
) -> None:
    """A missing file or column of the second job failed only after the first job's run."""
    monkeypatch.chdir(tmp_path)
    rows = "".join(f"text {i} about {'ab'[i % 2]},{'ab'[i % 2]}\n" for i in range(40))
    (tmp_path / "good.csv").write_text("text,label\n" + rows)
    argv = ["-m", "experiment=smoke", "data=csv", "data.path=good.csv", swept]
    err = _refused(argv, monkeypatch, capsys)
    assert err[-1].startswith("error: job ") and problem in err[-1], err
    assert err[-1].count("file not found") <= 1, err  # the job named, the message not repeated


def test_a_bug_in_the_grid_check_is_not_reported_as_a_command_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ValueError from the pre-check's own code (a bug) stays a traceback, not
    "error: command line: ...", exit 2 (the words for Hydra's flags refused together)."""
    from automl.cli.app import hydra_app

    def check_job(conf: Config) -> None:
        raise ValueError("operands could not be broadcast together")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["app", "-m", "experiment=smoke", "train.seed=1,2"])
    with pytest.raises(ValueError, match="operands could not be broadcast"):
        hydra_app(lambda conf: None, None, check_job)()
