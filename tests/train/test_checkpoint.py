"""A trial resumed from its epoch checkpoint continues exactly where it stopped."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from automl.config.resolve import to_config
from automl.config.schema import Config, DataConfig, ModelConfig, PeftConfig, TrainConfig
from automl.data.prepare import prepare_data
from automl.train import checkpoint
from automl.train.loop import run_trial


@pytest.fixture(scope="module")
def setup() -> tuple[Config, object]:
    torch.set_num_threads(1)
    conf = to_config(
        Config(
            model=ModelConfig(source="tiny", max_length=32),
            data=DataConfig(max_examples=300),
            train=TrainConfig(learning_rate=1e-2, epochs=3, batch_size=16, num_threads=1),
            peft=PeftConfig(lora_rank=4, frozen_layers=1),
        )
    )
    return conf, prepare_data(conf)


@pytest.mark.parametrize("stop_after", [1, 2])
def test_resume_matches_an_uninterrupted_run(
    setup: tuple[Config, object], tmp_path: Path, stop_after: int
) -> None:
    conf, data = setup
    saved = tmp_path / "ckpt"

    def keep(epoch: int) -> Callable[[dict[str, float], Callable[[Path], None], bool], None]:
        def report(
            metrics: dict[str, float], write: Callable[[Path], None], improved: bool
        ) -> None:
            if metrics["epoch"] == epoch:
                saved.mkdir()
                write(saved)

        return report

    full = run_trial(conf, data, keep(stop_after))  # type: ignore[arg-type]
    resumed = run_trial(conf, data, resume_from=saved)  # type: ignore[arg-type]
    assert resumed.epochs_run == conf.train.epochs == full.epochs_run
    for a, b in zip(full.history, resumed.history, strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    assert resumed.best_epoch == full.best_epoch
    assert resumed.best["val_accuracy"] == full.best["val_accuracy"]


def test_slim_keeps_only_the_best_weights(setup: tuple[Config, object], tmp_path: Path) -> None:
    conf, data = setup
    folder = tmp_path / "ckpt"

    def report(metrics: dict[str, float], write: Callable[[Path], None], improved: bool) -> None:
        folder.mkdir(exist_ok=True)
        write(folder)

    run_trial(conf, data, report)  # type: ignore[arg-type]
    assert {p.name for p in folder.iterdir()} >= {checkpoint.BEST_FILE, checkpoint.LAST_FILE}
    checkpoint.slim(folder)
    assert {p.name for p in folder.iterdir()} == {checkpoint.BEST_FILE, checkpoint.PROGRESS_FILE}
