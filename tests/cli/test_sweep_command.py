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


def test_overrides_are_read_as_typed_by_key_or_group() -> None:
    from automl.cli.app import overridden_values

    typed = ["+train.x=1e-4", "++sweep.resume=true", "~peft.lora_rank", "~train.y=3",
             "data.path=[a,b]", "model=hf", "train.epochs=2"]  # fmt: skip
    assert overridden_values(typed) == {
        "train.x": "1e-4",  # not 0.0001: the warning quotes the command line
        "sweep.resume": "true",
        "data.path": "[a,b]",
        "model": "hf",  # a group: a space that samples `model` ignores it
        "train.epochs": "2",
    }
