"""What `automl-sweep` says about the command line it was given."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest


def test_a_value_the_search_space_samples_is_named_as_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`train.epochs=2` beside a space that samples train.epochs: the trials would run 2 to 4
    epochs, so the command says so; a value the space leaves alone is not named."""
    from automl.cli.sweep import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [
        "automl-sweep", "experiment=smoke", "train.epochs=2", "train.batch_size=8",
        "sweep.dry_run=true", f"paths.output_dir={tmp_path / 'out'}",
    ])  # fmt: skip
    main()  # a dry run: exit 0
    err = capfd.readouterr().err
    warned = [line for line in err.splitlines() if "on the command line is ignored" in line]
    assert len(warned) == 1, err[-2000:]
    assert "train.epochs=2" in warned[0] and "smoke.yaml samples it (int [2, 4])" in warned[0]
    assert "batch_size" not in err.split("sweep smoke:")[0]


def test_outside_a_command_no_values_count_as_given() -> None:
    from automl.cli.app import command_line_values

    assert command_line_values() == {}  # run_sweep called from Python: no command line
