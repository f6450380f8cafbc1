"""A trial resumed from its epoch checkpoint continues exactly where it stopped."""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

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
    assert not checkpoint.is_slim(folder)  # a trial restarted from it trains on
    # a copy into Ray's storage that a kill cut short (search/storage.py)
    (folder / f".{checkpoint.LAST_FILE}.1a2b3c4d{checkpoint.PARTIAL_SUFFIX}").write_bytes(b"x")
    checkpoint.slim(folder)
    assert {p.name for p in folder.iterdir()} == {checkpoint.BEST_FILE, checkpoint.PROGRESS_FILE}
    assert checkpoint.is_slim(folder)  # a trial restarted from it ends at once
    progress = checkpoint.read_progress(folder)
    assert progress is not None and progress.epoch == conf.train.epochs


def test_an_outcome_file_cut_short_reads_as_none_recorded(tmp_path: Path) -> None:
    """Written in place into Ray's storage, a kill mid-write left it empty: every resume then
    failed on it (JSONDecodeError). Now written whole; one cut short reads as no outcome."""
    checkpoint.slim(tmp_path, {"status": "failed", "reason": "RuntimeError: boom"})
    assert checkpoint.read_outcome(tmp_path) == {"status": "failed", "reason": "RuntimeError: boom"}
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint.OUTCOME_FILE]  # no temp left
    for cut in ("", '{"status": "fai'):
        (tmp_path / checkpoint.OUTCOME_FILE).write_text(cut)
        assert checkpoint.read_outcome(tmp_path) is None


@contextmanager
def storages_tagged_as(location: str) -> Iterator[None]:
    """While saving, torch.save records every tensor as living on `location` (e.g. "cuda:1"):
    the file is what a trial on that GPU writes, made on a machine without one."""
    entry = (1, lambda storage: location, lambda storage, where: None)
    torch.serialization._package_registry.append(entry)
    torch.serialization._package_registry.sort(key=lambda e: e[0])
    try:
        yield
    finally:
        torch.serialization._package_registry.remove(entry)


def write_at_epoch(folder: Path, epoch: int, tagged: str | None = None) -> Any:
    def report(metrics: dict[str, float], write: Callable[[Path], None], improved: bool) -> None:
        if metrics["epoch"] == epoch:
            folder.mkdir()
            with storages_tagged_as(tagged) if tagged else nullcontext():
                write(folder)

    return report


def test_a_checkpoint_written_on_gpu_1_resumes_on_a_cpu_only_node(
    setup: tuple[Config, object], tmp_path: Path
) -> None:
    conf, data = setup
    saved = tmp_path / "ckpt"
    full = run_trial(conf, data, write_at_epoch(saved, 1, tagged="cuda:1"))  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="CUDA"):  # the file really points at a GPU
        torch.load(saved / checkpoint.OPTIMIZER_FILE, weights_only=True)
    resumed = run_trial(conf, data, resume_from=saved)  # type: ignore[arg-type]
    assert [h["val_loss"] for h in resumed.history] == pytest.approx(
        [h["val_loss"] for h in full.history], rel=1e-5
    )


class NotATensor:
    """Anything pickle can rebuild: weights_only loading must refuse it."""


def test_resume_refuses_to_unpickle_arbitrary_objects(
    setup: tuple[Config, object], tmp_path: Path
) -> None:
    conf, data = setup
    saved = tmp_path / "ckpt"
    run_trial(conf, data, write_at_epoch(saved, 1))  # type: ignore[arg-type]
    extra = torch.load(saved / checkpoint.OPTIMIZER_FILE, weights_only=True)  # tensors only
    torch.save({**extra, "payload": NotATensor()}, saved / checkpoint.OPTIMIZER_FILE)
    with pytest.raises(pickle.UnpicklingError, match="NotATensor"):
        run_trial(conf, data, resume_from=saved)  # type: ignore[arg-type]


def test_the_fp16_gradient_scaler_state_is_checkpointed(
    setup: tuple[Config, object], tmp_path: Path
) -> None:
    from automl.model.build import build_model

    conf, data = setup
    model, _ = build_model(conf.model, conf.peft, data.label_names, data.pad_token_id)  # type: ignore[attr-defined]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    scaler.load_state_dict({**scaler.state_dict(), "scale": 256.0, "_growth_tracker": 7})
    checkpoint.save(tmp_path, model, None, optimizer, scheduler, checkpoint.Progress(1), scaler)

    fresh = torch.amp.GradScaler("cpu")
    checkpoint.resume(tmp_path, model, optimizer, scheduler, fresh)
    assert fresh.state_dict() == scaler.state_dict()
    assert fresh.get_scale() == 256.0


def test_a_checkpoint_that_trained_more_tensors_is_refused_on_resume_in_one_line(
    setup: tuple[Config, object], tmp_path: Path
) -> None:
    """A checkpoint from before a tensor was frozen (DeBERTa's relative-position table since
    2026-12-06): the optimizer's saved state no longer fits, a ValueError in the trial."""
    from automl.model.build import build_model
    from automl.model.load import ModelError

    conf, data = setup
    model, _ = build_model(conf.model, conf.peft, data.label_names, data.pad_token_id)  # type: ignore[attr-defined]

    def optimizer_of(m: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.AdamW([p for p in m.parameters() if p.requires_grad])

    optimizer = optimizer_of(model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    checkpoint.save(tmp_path, model, None, optimizer, scheduler, checkpoint.Progress(1))
    next(p for p in model.parameters() if p.requires_grad).requires_grad_(False)  # now frozen
    fewer = optimizer_of(model)
    with pytest.raises(ModelError, match="resumes only with the version that wrote it$"):
        checkpoint.resume(tmp_path, model, fewer, torch.optim.lr_scheduler.LambdaLR(
            fewer, lambda step: 1.0))  # fmt: skip
