"""`--debug` (and `debug=true` for the Hydra commands): the one-line error becomes the typed
exception with its traceback, for a bug report; without it, one line and exit 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from automl.config.schema import Config, ConfigError


def _export(tmp: Path) -> tuple[Callable[[list[str]], None], list[str], type[Exception]]:
    from automl.cli.export import main
    from automl.export.reexport import ExportError

    return main, [str(tmp / "no-sweep")], ExportError


def _evaluate(tmp: Path) -> tuple[Callable[[list[str]], None], list[str], type[Exception]]:
    from automl.cli.evaluate import main
    from automl.data.task import DataError

    return main, [str(tmp / "model"), str(tmp / "missing.csv")], DataError


def _reproduce(tmp: Path) -> tuple[Callable[[list[str]], None], list[str], type[Exception]]:
    from automl.cli.reproduce import main
    from automl.export.reproduce import ReproduceError

    return main, [str(tmp / "provenance.json")], ReproduceError


@pytest.mark.parametrize("command", [_export, _evaluate, _reproduce])
def test_debug_raises_what_is_otherwise_one_line(
    command: Callable[[Path], tuple[Callable[[list[str]], None], list[str], type[Exception]]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    main, argv, error = command(tmp_path)
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and len(err) == 1 and err[0].startswith("error: "), err
    with pytest.raises(error):
        main([*argv, "--debug"])


def test_debug_true_raises_from_a_hydra_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from automl.cli.app import hydra_app

    def run(conf: Config) -> None:
        raise ConfigError("config: train.epochs: refused here")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["app", "experiment=smoke"])
    with pytest.raises(SystemExit) as exited:
        hydra_app(run)()
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "error: config: train.epochs: refused here"
    monkeypatch.setattr(sys, "argv", ["app", "experiment=smoke", "debug=true"])
    with pytest.raises(SystemExit) as exited:  # Hydra prints the job's traceback, exit 1
        hydra_app(run)()
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert "Traceback" in err and "ConfigError: config: train.epochs: refused here" in err, err
