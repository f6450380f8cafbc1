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


def test_model_settings_a_space_choosing_the_model_never_reads_are_named_as_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """`search_space=models model.max_length=256`: minilm and tiny_bert took their own files'
    lengths without a word (a Hub id or a folder takes it)."""
    from automl.cli.sweep import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [
        "automl-sweep", "search_space=models", "model.max_length=256", "tracking.enabled=false",
        "sweep.dry_run=true", f"paths.output_dir={tmp_path / 'out'}",
    ])  # fmt: skip
    main()
    err = capfd.readouterr().err
    warned = [line for line in err.splitlines() if "on the command line is ignored" in line]
    assert len(warned) == 1, err[-2000:]
    assert "model.max_length=256" in warned[0] and "['minilm', 'tiny_bert']" in warned[0]
    assert "each takes its conf/model file's settings" in warned[0]


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


def test_more_threads_than_a_trials_cpus_is_warned() -> None:
    from automl.config.schema import Config
    from automl.search.plan import threads_warning

    conf = Config()
    conf.train.num_threads, conf.resources.cpus_per_trial = 4, 2
    assert "train.num_threads=4 is above resources.cpus_per_trial=2" in str(threads_warning(conf))
    for threads in (None, 2):  # a trial's CPUs (unset), or no more than them
        conf.train.num_threads = threads
        assert threads_warning(conf) is None
