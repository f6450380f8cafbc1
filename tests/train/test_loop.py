"""The per-trial loop: learns an easy task, keeps the best epoch, reports, survives divergence."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from conftest import traced_trial
from torch import nn

import automl.train.loop
from automl.config.resolve import to_config
from automl.config.schema import (
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    PeftConfig,
    TrainConfig,
)
from automl.data.batching import POW2_EDGES, STRATIFIED_FROM
from automl.data.load import load_task_data
from automl.data.sampling import batches_over
from automl.data.tokenized import PreparedData, tokenize
from automl.model.build import build_model
from automl.model.state import trainable_state
from automl.train import checkpoint
from automl.train.device import pick_device
from automl.train.evaluate import evaluate, macro_f1
from automl.train.loop import (
    TrialResult,
    epoch_batcher,
    forward_batch,
    is_better,
    optimizer_step,
    run_trial,
    settle_batching,
)

CPU = torch.device("cpu")


def prepare(conf: Config, tokenizer: Any) -> PreparedData:
    return tokenize(load_task_data(conf.data), tokenizer, conf.model.max_length)


class Recorder:
    """A `report` hook that keeps every call and, through the checkpoint writer it is handed,
    a copy of the trainable weights at the end of each epoch."""

    def __init__(self, root: Path, after: Callable[[int], None] | None = None) -> None:
        self.root = root
        self.calls: list[tuple[dict[str, float], bool]] = []
        self.states: list[dict[str, torch.Tensor]] = []
        self.after = after

    def __call__(
        self, metrics: dict[str, float], write: Callable[[Path], None], is_best: bool
    ) -> None:
        from safetensors.torch import load_file

        epoch = len(self.calls) + 1
        folder = self.root / f"epoch-{epoch}"
        folder.mkdir(parents=True)
        write(folder)
        self.calls.append((dict(metrics), is_best))
        self.states.append(load_file(str(folder / checkpoint.LAST_FILE)))
        if self.after is not None:
            self.after(epoch)


class Built:
    """Patches run_trial's `build_model` to keep a handle on the model it builds."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, poison_at_build: bool = False) -> None:
        self.model: nn.Module | None = None
        self.poison_at_build = poison_at_build
        monkeypatch.setattr(automl.train.loop, "build_model", self)

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[nn.Module, Any]:
        model, info = build_model(*args, **kwargs)
        if self.poison_at_build:
            poison(model)
        self.model = model
        return model, info

    def poison(self) -> None:
        assert self.model is not None
        poison(self.model)


def poison(model: nn.Module) -> None:
    """Make every trainable weight NaN: the next forward pass gives a NaN loss."""
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.fill_(math.nan)


def weights_equal(model: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    params = dict(model.named_parameters())
    assert set(state) <= set(params)
    return all(torch.equal(params[n].detach().cpu(), t) for n, t in state.items())


# ---------------------------------------------------------------------------------------------
# A real run on the easy task


EPOCHS = 4  # with train.seed=0 the easy task is solved by epoch 3 (see conftest.py)


def test_the_easy_task_is_decided_by_keywords(
    easy_csv: Callable[..., Path], easy_words: dict[str, list[str]]
) -> None:
    task = load_task_data(DataConfig(source="csv", path=str(easy_csv(rows=30, seed=1))))
    assert task.label_names == sorted(easy_words)
    assert task.test is not None  # the held-out split (data.test_fraction) counts too
    labels = task.train.labels + task.val.labels + task.test.labels
    assert Counter(labels) == {0: 10, 1: 10, 2: 10}
    texts = task.train.texts + task.val.texts + task.test.texts
    for text, label in zip(texts, labels, strict=True):
        words = text.split()
        for i, name in enumerate(task.label_names):
            assert sum(w in easy_words[name] for w in words) == (3 if i == label else 0)


@pytest.fixture(scope="module")
def easy_run(
    easy_csv_file: Path,
    tiny_config: Callable[..., Config],
    tokenizer: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[PreparedData, TrialResult, Recorder]:
    conf = tiny_config(
        data__path=str(easy_csv_file), train__epochs=EPOCHS, train__learning_rate=1e-2
    )
    data = prepare(conf, tokenizer)
    with pytest.MonkeyPatch.context() as monkeypatch:
        built = Built(monkeypatch)

        def wreck_after_last_epoch(epoch: int) -> None:
            if epoch == EPOCHS:  # the returned model must be restored from the best epoch's copy
                built.poison()

        recorder = Recorder(tmp_path_factory.mktemp("easy-run"), after=wreck_after_last_epoch)
        result = run_trial(conf, data, report=recorder)
    assert result.model is built.model
    return data, result, recorder


def test_easy_task_is_learned(easy_run: tuple[PreparedData, TrialResult, Recorder]) -> None:
    data, result, _ = easy_run
    majority = max(Counter(data.val.labels.tolist()).values()) / len(data.val)
    assert majority < 0.4
    assert result.status == "completed" and result.message == ""
    assert result.epochs_run == EPOCHS == len(result.history)
    assert result.best["val_accuracy"] >= 0.8
    assert result.best["val_f1"] >= 0.8
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    assert result.info.trainable_params == result.info.total_params  # full fine-tuning
    assert result.train_samples_per_s > 0


def test_best_epoch_is_the_best_then_the_lowest_loss(
    easy_run: tuple[PreparedData, TrialResult, Recorder],
) -> None:
    """The best accuracy; of epochs equal on it, the lowest validation loss (the easy data
    reaches 1.0 in several epochs), then the first."""
    _, result, _ = easy_run
    ranked = [(-h["val_accuracy"], h["val_loss"], h["epoch"]) for h in result.history]
    assert result.best_epoch == min(ranked)[2]
    assert result.best is result.history[result.best_epoch - 1]
    assert result.best["epoch"] == result.best_epoch
    assert [h["epoch"] for h in result.history] == [1.0, 2.0, 3.0, 4.0]


def test_report_is_called_once_per_epoch_with_is_best_on_improvements(
    easy_run: tuple[PreparedData, TrialResult, Recorder],
) -> None:
    _, result, recorder = easy_run
    assert [m["epoch"] for m, _ in recorder.calls] == [1.0, 2.0, 3.0, 4.0]
    assert [m["val_accuracy"] for m, _ in recorder.calls] == [
        h["val_accuracy"] for h in result.history
    ]
    best: tuple[float, float] = (-1.0, math.inf)  # accuracy, then the lower loss
    for metrics, is_best in recorder.calls:
        score = (metrics["val_accuracy"], -metrics["val_loss"])
        assert is_best == (score > (best[0], -best[1]))
        if is_best:
            best = (metrics["val_accuracy"], metrics["val_loss"])
    assert recorder.calls[0][1] is True


def test_returned_model_holds_the_best_epochs_weights(
    easy_run: tuple[PreparedData, TrialResult, Recorder],
) -> None:
    data, result, recorder = easy_run
    assert weights_equal(result.model, recorder.states[result.best_epoch - 1])
    again = evaluate(result.model, data.val, data.pad_token_id, 64, CPU)
    assert again["val_accuracy"] == result.best["val_accuracy"]
    assert again["val_loss"] == pytest.approx(result.best["val_loss"], rel=1e-5)
    assert again["val_f1"] == pytest.approx(result.best["val_f1"])


def test_the_last_checkpoint_holds_the_best_weights_for_export(
    easy_run: tuple[PreparedData, TrialResult, Recorder],
) -> None:
    from safetensors.torch import load_file

    _, result, recorder = easy_run
    best = load_file(str(recorder.root / f"epoch-{EPOCHS}" / checkpoint.BEST_FILE))
    assert set(best) == set(recorder.states[0])
    assert all(torch.equal(best[n], t) for n, t in recorder.states[result.best_epoch - 1].items())


def test_summary_is_the_cli_line(easy_run: tuple[PreparedData, TrialResult, Recorder]) -> None:
    _, result, _ = easy_run
    summary = json.loads(json.dumps(result.summary()))
    assert summary["status"] == "completed" and "message" not in summary
    assert summary["val_accuracy"] == result.best["val_accuracy"]
    assert summary["best_epoch"] == result.best_epoch
    assert summary["epochs"] == EPOCHS
    assert summary["trainable_params"] == result.info.trainable_params


# ---------------------------------------------------------------------------------------------
# Best-epoch bookkeeping on scripted metrics (the model trains, the scores are ours)


@pytest.fixture(scope="module")
def small_data(
    easy_csv_file: Path, tiny_config: Callable[..., Config], tokenizer: Any
) -> PreparedData:
    conf = tiny_config(data__path=str(easy_csv_file), data__max_examples=60)
    return prepare(conf, tokenizer)


def scripted_evaluate(
    monkeypatch: pytest.MonkeyPatch,
    key: str,
    values: list[float],
    losses: list[float] | None = None,
) -> None:
    """The scores of `key` each epoch, and the validation losses (`losses`; the real ones where
    None), which break ties."""
    real = automl.train.loop.evaluate
    scores = iter(values)
    val_losses = iter(losses or [])

    def fake(*args: Any, **kwargs: Any) -> dict[str, float]:
        metrics = real(*args, **kwargs)
        metrics[key] = next(scores)
        if losses is not None:
            metrics["val_loss"] = next(val_losses)
        return metrics

    monkeypatch.setattr(automl.train.loop, "evaluate", fake)


@pytest.mark.parametrize(
    ("metric", "mode", "values", "flags", "best_epoch"),
    [
        ("val_accuracy", "max", [0.5, 0.9, 0.7, 0.9], [True, True, False, False], 2),
        # the validation losses after `|`: a tie goes to the lower one
        ("val_accuracy", "max", [0.5, 0.9, 0.7, 0.9, "|", 1.0, 0.6, 0.5, 0.4],
         [True, True, False, True], 4),
        ("val_loss", "min", [1.0, 0.8, 0.9, 0.7], [True, True, False, True], 4),
        ("val_accuracy", "max", [0.6, math.nan, 0.5, 0.6], [True, False, False, False], 1),
        ("val_f1", "max", [0.2, 0.1, 0.4, 0.3], [True, False, True, False], 3),
        ("val_balanced_accuracy", "max", [0.3, 0.5, 0.4, 0.4], [True, True, False, False], 2),
    ],
    ids=["max-ties-keep-the-first-at-equal-loss", "max-ties-go-to-the-lower-loss", "min",
         "nan-never-best", "macro-f1", "balanced-accuracy"],
)  # fmt: skip
def test_best_epoch_bookkeeping(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_config: Callable[..., Config],
    small_data: PreparedData,
    metric: str,
    mode: str,
    values: list[float],
    flags: list[bool],
    best_epoch: int,
) -> None:
    # validation losses: as scripted after `|`, else equal (a tie keeps the earlier epoch)
    losses = values[5:] if "|" in values else None if metric == "val_loss" else [1.0] * 4
    values = values[:4]
    scripted_evaluate(monkeypatch, metric, values, losses)
    recorder = Recorder(tmp_path)
    conf = tiny_config(train__epochs=4)
    result = run_trial(conf, small_data, report=recorder, metric=metric, mode=mode)
    assert [flag for _, flag in recorder.calls] == flags
    assert result.best_epoch == best_epoch
    assert result.best[metric] == values[best_epoch - 1]
    assert weights_equal(result.model, recorder.states[best_epoch - 1])
    if best_epoch != 4:
        assert not weights_equal(result.model, recorder.states[-1])


def test_an_open_batch_size_follows_the_training_set(
    tiny_config: Callable[..., Config], small_data: PreparedData
) -> None:
    """train.batch_size=null: 8 on small data (an epoch of 400 steps at 16 needs 6,400
    examples), settled in the config, reported per epoch, and trained with (ceil(n / 8) steps)."""
    conf = tiny_config(train__epochs=1, train__batch_size=None)
    result, _, steps = traced_trial(conf, small_data)
    assert len(small_data.train) < 6_400
    assert conf.train.batch_size == 8
    assert result.history[0]["batch_size"] == 8.0
    assert steps == math.ceil(len(small_data.train) / 8)
    fixed = run_trial(tiny_config(train__epochs=1, train__batch_size=16), small_data)
    assert fixed.history[0]["batch_size"] == 16.0


@pytest.mark.parametrize(
    ("rule", "edges"), [("stratified", "pow2"), ("stratified", "fine"), ("buckets", "fine"),
                        ("pools", "pow2")]
)  # fmt: skip
def test_every_batching_rule_trains_each_row_once_an_epoch(
    tiny_config: Callable[..., Config], small_data: PreparedData, rule: str, edges: str
) -> None:
    conf = tiny_config(
        train__epochs=1, train__batching=rule, train__bucket_edges=edges, train__sampling="natural"
    )
    result, batches, _ = traced_trial(conf, small_data)
    assert sorted(i for rows in batches for i in rows) == list(range(len(small_data.train)))
    assert math.isfinite(result.history[0]["train_loss"])


@pytest.mark.parametrize(
    ("batch_size", "accum", "groups", "forward"),
    [(8, 1, 1, 8), (8, 1, 2, 4), (8, 1, 8, 1), (4, 2, 2, 4), (8, 4, 2, 8), (12, 2, 8, 3)],
)
def test_a_forward_pass_never_holds_two_length_groups(
    batch_size: int, accum: int, groups: int, forward: int
) -> None:
    """A step of batch_size x accum rows in `groups` groups: a forward pass is at most the
    micro-batch and divides a group, so no pass pads one group's rows to another's length."""
    t = TrainConfig(batch_size=batch_size, grad_accum_steps=accum, length_groups_per_step=groups)
    assert forward_batch(t, batch_size) == forward
    assert forward <= batch_size and (batch_size * accum // groups) % forward == 0


@pytest.mark.parametrize("rule", ["stratified", "pools"])
def test_length_groups_per_step_keep_the_steps_and_cut_the_forward_passes(
    tiny_config: Callable[..., Config], small_data: PreparedData, rule: str
) -> None:
    """Steps of 8 rows from 4 length groups: the same ceil(n / 8) optimizer steps as one group
    a step, every row once an epoch, each forward pass 2 rows."""
    conf = tiny_config(
        train__epochs=1, train__batch_size=8, train__length_groups_per_step=4,
        train__batching=rule, train__sampling="natural",
    )  # fmt: skip
    result, seen, steps = traced_trial(conf, small_data)
    assert sorted(i for rows in seen for i in rows) == list(range(len(small_data.train)))
    assert steps == math.ceil(len(small_data.train) / 8)
    assert all(len(rows) <= 2 for rows in seen) and sum(len(r) == 2 for r in seen) >= len(seen) - 1
    assert math.isfinite(result.history[0]["train_loss"])


@pytest.mark.parametrize(("edges", "mixed"), [("fine", False), ("pow2", True)])
def test_bucket_edges_decide_which_lengths_share_a_batch(edges: str, mixed: bool) -> None:
    """9 and 16 tokens share the power-of-two bucket (9..16) but not a fine one (edges 10, 12,
    15, 19), so with the fine edges no batch pads a 9-token row to 16."""
    lengths = np.repeat([9, 16], 40)
    labels = np.tile([0, 1], 40)
    train = TrainConfig(batching="stratified", bucket_edges=edges)
    batcher = epoch_batcher(train, 8, labels, np.random.default_rng(0))
    batches = batches_over(np.arange(80), lengths, batcher)
    assert any(len(set(lengths[b].tolist())) > 1 for b in batches) is mixed


@pytest.mark.parametrize(
    ("num_train", "edges", "rule", "settled_edges"),
    [(STRATIFIED_FROM - 1, "auto", "buckets", "pow2"),
     (STRATIFIED_FROM, "auto", "stratified", "fine"),
     (20, "fine", "buckets", "fine"), (5000, "pow2", "stratified", "pow2")],
)  # fmt: skip
def test_auto_batching_follows_the_training_sets_size(
    num_train: int, edges: str, rule: str, settled_edges: str
) -> None:
    """`auto` picks random coarse buckets on small data and stratified fine ones from
    STRATIFIED_FROM examples; edges the user set are kept."""
    t = TrainConfig(bucket_edges=edges)
    assert t.batching == "auto"
    assert settle_batching(t, num_train) == rule
    assert (t.batching, t.bucket_edges) == (rule, settled_edges)
    assert settle_batching(t, 10**6) == rule  # settled once: an epoch's sample cannot change it


def test_a_trial_records_the_batching_rule_it_trained_with(
    tiny_config: Callable[..., Config], small_data: PreparedData
) -> None:
    """run_trial settles `auto` into a rule (its config names it afterwards), and the batches
    show it: with few examples, random draws inside power-of-two buckets."""
    conf = tiny_config(train__epochs=1, train__sampling="natural")
    assert len(small_data.train) < STRATIFIED_FROM
    _, batches, _ = traced_trial(conf, small_data)
    assert (conf.train.batching, conf.train.bucket_edges) == ("buckets", "pow2")
    edges = np.searchsorted(np.asarray(POW2_EDGES), small_data.train.lengths, side="left")
    in_one_bucket = [len(set(edges[b].tolist())) == 1 for b in batches]
    assert sum(in_one_bucket) >= len(batches) - len(POW2_EDGES) - 1  # leftovers join the next


def test_stratified_batches_mix_the_classes_of_the_epochs_sample() -> None:
    """With rebalanced sampling the epoch repeats rows; the stratified rule must spread the
    classes of the sampled rows (not of the rows at those positions in the dataset)."""
    labels = np.repeat([0, 1], [90, 10])  # one length bucket, a 9:1 dataset
    order = np.concatenate([np.arange(90)[::2], np.tile(np.arange(90, 100), 5)])  # 45 + 50
    rng = np.random.default_rng(0)
    batcher = epoch_batcher(TrainConfig(batching="stratified"), 8, labels[order], rng)
    batches = batches_over(order, np.full(100, 12), batcher)
    assert sorted(np.concatenate(batches).tolist()) == sorted(order.tolist())
    for batch in (b for b in batches if len(b) == 8):
        assert 3 <= int(np.sum(labels[batch] == 1)) <= 5, labels[batch]


def test_runs_are_seeded(tiny_config: Callable[..., Config], small_data: PreparedData) -> None:
    def losses(seed: int) -> tuple[float, float]:
        first = run_trial(tiny_config(train__epochs=1, train__seed=seed), small_data).history[0]
        return first["train_loss"], first["val_loss"]

    assert losses(0) == losses(0)
    assert losses(0) != losses(1)


def test_resuming_from_a_checkpoint_continues_the_same_run(
    tmp_path: Path, tiny_config: Callable[..., Config], small_data: PreparedData
) -> None:
    conf = tiny_config(train__epochs=3)
    recorder = Recorder(tmp_path / "full")
    full = run_trial(conf, small_data, report=recorder)
    later = Recorder(tmp_path / "resumed")
    resumed = run_trial(conf, small_data, report=later, resume_from=tmp_path / "full" / "epoch-1")
    assert [m["epoch"] for m, _ in later.calls] == [2.0, 3.0]  # only the epochs still to run
    keys = ("train_loss", "val_loss", "val_accuracy")
    assert [[h[k] for k in keys] for h in resumed.history] == [
        [h[k] for k in keys] for h in full.history
    ]
    assert resumed.best_epoch == full.best_epoch
    assert weights_equal(resumed.model, trainable_state(full.model))


@pytest.mark.parametrize(
    ("value", "best", "mode", "expected"),
    [
        (0.5, None, "max", True),
        (0.6, 0.5, "max", True),
        (0.5, 0.5, "max", False),
        (0.4, 0.5, "max", False),
        (0.4, 0.5, "min", True),
        (0.5, 0.5, "min", False),
        (math.nan, None, "max", False),
        (math.nan, 0.5, "min", False),
    ],
)
def test_is_better(value: float, best: float | None, mode: str, expected: bool) -> None:
    assert is_better(value, best, mode) is expected


# ---------------------------------------------------------------------------------------------
# Divergence: a status and a message, never an exception


def test_nan_loss_in_the_first_epoch(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_config: Callable[..., Config],
    small_data: PreparedData,
) -> None:
    Built(monkeypatch, poison_at_build=True)
    recorder = Recorder(tmp_path)
    result = run_trial(tiny_config(train__epochs=3), small_data, report=recorder)
    assert result.status == "diverged"
    assert "non-finite training loss" in result.message and "epoch 1" in result.message
    assert (result.epochs_run, result.best_epoch, result.history, result.best) == (0, 0, [], {})
    assert recorder.calls == []
    summary = json.loads(json.dumps(result.summary()))
    assert summary["status"] == "diverged" and summary["val_accuracy"] is None
    assert summary["message"] == result.message


def test_weights_broken_by_the_last_step_of_an_epoch_are_no_best_epoch(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_config: Callable[..., Config],
    small_data: PreparedData,
) -> None:
    """Its training loss was finite, then NaN weights scored every text as one class: the
    accuracy of that class's share, kept as the best epoch (is_better has no best to beat)."""
    built = Built(monkeypatch)
    train_one_epoch = automl.train.loop.train_one_epoch

    def then_broken(state: Any, t: Any, data: PreparedData, epoch: int) -> Any:
        stats = train_one_epoch(state, t, data, epoch)
        if epoch == 2:
            built.poison()
        return stats

    monkeypatch.setattr(automl.train.loop, "train_one_epoch", then_broken)
    recorder = Recorder(tmp_path)
    result = run_trial(tiny_config(train__epochs=3), small_data, report=recorder)
    assert result.status == "diverged"
    assert result.message.startswith("non-finite validation loss (nan) after epoch 2")
    assert result.epochs_run == 1 and result.best_epoch == 1 and len(recorder.calls) == 1
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_nan_loss_later_keeps_the_best_epoch(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tiny_config: Callable[..., Config],
    small_data: PreparedData,
) -> None:
    built = Built(monkeypatch)
    recorder = Recorder(tmp_path, after=lambda epoch: built.poison() if epoch == 1 else None)
    result = run_trial(tiny_config(train__epochs=3), small_data, report=recorder)
    assert result.status == "diverged"
    assert "epoch 2" in result.message
    assert result.epochs_run == 1 and result.best_epoch == 1
    assert len(recorder.calls) == 1
    assert weights_equal(result.model, recorder.states[0])
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


# ---------------------------------------------------------------------------------------------
# Small pure helpers


@pytest.mark.parametrize(
    ("y_true", "y_pred", "expected"),
    [
        ([0, 1, 2, 0], [0, 1, 2, 0], 1.0),
        # class 0: tp 1 fp 1 fn 1 -> 1/2; class 1: tp 2 fp 1 -> 4/5; class 2: fn 1 -> 0
        ([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], (0.5 + 0.8 + 0.0) / 3),
        # a class only predicted still counts (F1 0): (2/3 + 0) / 2
        ([0, 0], [0, 1], 1 / 3),
        ([1, 1, 1, 1], [0, 0, 0, 0], 0.0),
        # the majority-class predictor on 3:1 data: class 0 F1 = 6/7, class 1 F1 = 0
        ([0, 0, 0, 1], [0, 0, 0, 0], 3 / 7),
    ],
)
def test_macro_f1(y_true: list[int], y_pred: list[int], expected: float) -> None:
    assert macro_f1(np.array(y_true), np.array(y_pred)) == pytest.approx(expected)


def test_pick_device() -> None:
    assert pick_device("cpu") == CPU
    if not torch.cuda.is_available():
        assert pick_device("auto") == CPU
        with pytest.raises(ConfigError, match=r"^config: train\.device: cuda, but no CUDA"):
            pick_device("cuda")
    else:  # a GPU machine (make test-gpu's): auto takes it
        assert pick_device("auto").type == pick_device("cuda").type == "cuda"


# ---------------------------------------------------------------------------------------------
# The `automl-train` command line


def run_cli(repo_root: Path, cwd: Path, *overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(repo_root), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "automl.cli.train", *overrides],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow  # a sweep, a cluster or a CLI process
def test_cli_prints_one_json_line(repo_root: Path, tmp_path: Path) -> None:
    proc = run_cli(repo_root, tmp_path, "experiment=smoke", "train.epochs=1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    summary = json.loads(lines[0])
    expected = {
        *("val_accuracy", "val_f1", "val_balanced_accuracy", "val_loss", "train_loss"),
        *("best_epoch", "epochs", "trainable_params", "train_samples_per_s"),
    }
    assert expected <= set(summary)
    assert summary["status"] == "completed"
    assert (summary["epochs"], summary["best_epoch"]) == (1, 1)
    for key in ("val_accuracy", "val_f1", "val_balanced_accuracy"):
        assert 0.0 <= summary[key] <= 1.0, key
    assert summary["trainable_params"] == summary["total_params"] > 0  # smoke: rank 0
    assert summary["train_samples_per_s"] > 0
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # Hydra writes nothing into the working directory


def test_cli_exits_1_when_the_training_diverged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A learning rate of 1e6: no model worth keeping, so a script sees a failure; the
    results line still comes first."""
    from automl.cli.train import main

    monkeypatch.chdir(tmp_path)
    argv = ["automl-train", "experiment=smoke", "train.epochs=1", "train.learning_rate=1e6"]
    monkeypatch.setattr(sys, "argv", [*argv, "data.max_examples=200"])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "diverged"
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: training diverged: non-finite training loss")
    assert last.endswith("in epoch 1")


def test_cli_keeps_the_epoch_the_sweep_metric_chooses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sweep.metric=val_loss sweep.mode=min`: the summary is the lowest-loss epoch's, as a
    sweep's trial would pick it (it was always the most accurate epoch's)."""
    import automl.cli.train as cli

    runs: list[Any] = []
    run_trial = automl.train.loop.run_trial

    def recorded(*args: Any, **kwargs: Any) -> Any:
        runs.append(run_trial(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(automl.train.loop, "run_trial", recorded)  # imported when it trains
    monkeypatch.chdir(tmp_path)
    argv = ["automl-train", "experiment=smoke", "train.epochs=6", "train.learning_rate=0.05"]
    argv += ["data.max_examples=200", "sweep.metric=val_loss", "sweep.mode=min"]
    monkeypatch.setattr(sys, "argv", argv)
    cli.main()
    summary = json.loads(capsys.readouterr().out)
    history = runs[0].history
    lowest = min(history, key=lambda row: row["val_loss"])
    assert lowest is not max(history, key=lambda row: row["val_accuracy"])  # the two differ here
    assert summary["best_epoch"] == int(lowest["epoch"])
    assert summary["val_loss"] == lowest["val_loss"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data=csv", "data.path=/nonexistent.csv"], "error: /nonexistent.csv: file not found"),
        (
            ["experiment=smoke", "peft.frozen_layers=3"],
            "error: peft.frozen_layers: 3 is more than the model's 2 blocks",
        ),
        (  # checked before the data is read (the file is missing too), as a sweep's plan does
            [
                "experiment=smoke",
                "peft.lora_rank=8",
                "peft.target_modules=[quary]",
                "data=csv",
                "data.path=/nonexistent.csv",
            ],
            "error: peft.target_modules: quary: no such linear layer in tiny-bert (its "
            "blocks' linear layers: dense, key, query, value)",
        ),
        (  # automl-sweep's check: here it trained at once
            ["experiment=smoke", "sweep.dry_run=true"],
            "error: config: sweep.dry_run: automl-sweep's check without compute; automl-train "
            "has none (it trains at once): run automl-sweep sweep.dry_run=true to check a config",
        ),
    ],
    ids=["missing-file", "too-deep", "lora-target-typo", "dry-run"],
)
def test_cli_bad_input_is_one_error_line(
    repo_root: Path, tmp_path: Path, overrides: list[str], message: str
) -> None:
    proc = run_cli(repo_root, tmp_path, *overrides)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [message]


# ---------------------------------------------------------------------------------------------
# The real model, end to end


@pytest.mark.slow
def test_minilm_lora_beats_the_majority_class_in_one_epoch(tokenizer: Any) -> None:
    conf = to_config(
        Config(
            model=ModelConfig(),  # model=minilm, the packaged all-MiniLM-L6-v2
            data=DataConfig(max_examples=600),  # 400 stayed at the majority share (2026-12-07)
            train=TrainConfig(
                learning_rate=2e-3,
                epochs=1,
                batch_size=8,
                warmup_ratio=0.0,
                num_threads=1,
                device="cpu",
            ),
            peft=PeftConfig(lora_rank=8, target_modules=["query", "key", "value", "dense"]),
        )
    )
    data = prepare(conf, tokenizer)  # the tiny models borrow exactly this tokenizer
    majority = max(Counter(data.val.labels.tolist()).values()) / len(data.val)
    result = run_trial(conf, data)
    assert result.status == "completed"
    assert result.info.num_blocks == 6
    assert result.info.trainable_params < result.info.total_params / 10
    assert result.best["val_accuracy"] > majority


def test_a_step_the_fp16_scaler_skips_leaves_the_schedule_where_it_is() -> None:
    """Inf gradients: GradScaler skips the update and halves its scale; the warmup/decay
    schedule must not run ahead of the updates (Hugging Face's Trainer does the same)."""
    param = nn.Parameter(torch.ones(2))
    optimizer = torch.optim.AdamW([param], lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: step + 1)
    scaler = torch.amp.GradScaler("cpu", init_scale=4.0)  # the CUDA one's logic, on the CPU
    state = SimpleNamespace(params=[param], optimizer=optimizer, scheduler=scheduler, scaler=scaler)
    scaler.scale((param * float("inf")).sum()).backward()
    optimizer_step(state, max_grad_norm=1.0)  # type: ignore[arg-type]
    assert scheduler.last_epoch == 0 and torch.equal(param.data, torch.ones(2))
    optimizer.zero_grad()
    scaler.scale(param.sum()).backward()
    optimizer_step(state, max_grad_norm=1.0)  # type: ignore[arg-type]
    assert scheduler.last_epoch == 1 and not torch.equal(param.data, torch.ones(2))


def test_fp16_steps_that_overflow_for_ever_end_the_trial_before_nan_reaches_the_weights(
    tiny_config: Callable[..., Config], small_data: PreparedData
) -> None:
    """Each skipped step halves the loss scale: at 0 (after ~165 in a row) the scaler's
    unscaling made NaN gradients that passed its check, AdamW wrote NaN into every weight, and
    the trial was called diverged for a NaN loss after ~165 steps that trained nothing."""
    from automl.train.loop import MAX_SKIPPED_STEPS, setup, train_one_epoch

    conf = tiny_config(train__epochs=100, train__batch_size=8)
    state = setup(conf, small_data, resume_from=None)
    # the CUDA one's logic, on the CPU; a scale high enough that 25 halvings leave it above 1
    state.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    state.params[0].register_hook(lambda grad: grad * float("inf"))
    before = [p.detach().clone() for p in state.params]
    for epoch in range(1, 100):
        stats = train_one_epoch(state, conf.train, small_data, epoch)
        if stats.diverged:
            break
    assert stats.diverged.startswith(
        f"fp16 overflow: {MAX_SKIPPED_STEPS} optimizer steps in a row skipped"
    )
    assert state.scheduler.last_epoch == 0 and state.scaler.get_scale() > 0
    assert all(torch.equal(a, b) for a, b in zip(before, state.params, strict=True))


def test_fp16_steps_that_overflow_every_other_step_end_the_trial_at_a_loss_scale_below_1(
    tiny_config: Callable[..., Config], small_data: PreparedData
) -> None:
    """Never 25 skips in a row, but the scale halves at each and regrows only after 2,000
    clean steps: it fell towards 0 all the same, where NaN gradients pass the scaler."""
    from automl.train.loop import MIN_LOSS_SCALE, setup, train_one_epoch

    conf = tiny_config(train__epochs=100, train__batch_size=8)
    state = setup(conf, small_data, resume_from=None)
    state.scaler = torch.amp.GradScaler("cpu")
    calls: list[int] = []

    def every_other(grad: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return grad * float("inf") if len(calls) % 2 else grad

    state.params[0].register_hook(every_other)
    for epoch in range(1, 100):
        stats = train_one_epoch(state, conf.train, small_data, epoch)
        if stats.diverged:
            break
    assert stats.diverged.startswith("fp16 overflow: loss scale down to 0.5 ")
    assert 0 < state.scaler.get_scale() < MIN_LOSS_SCALE and state.scheduler.last_epoch > 0
    assert all(torch.isfinite(p).all() for p in state.params)


def test_an_fp16_forward_pass_that_overflows_skips_its_step_not_the_trial(
    monkeypatch: pytest.MonkeyPatch, tiny_config: Callable[..., Config], small_data: PreparedData
) -> None:
    """fp16's range ends at 65504: one batch whose logits overflowed failed a healthy trial
    (and its retries, which replay the same batches), where the scaler skips such a step."""
    from automl.train.loop import setup, train_one_epoch

    conf = tiny_config(train__epochs=2, train__batch_size=8)
    state = setup(conf, small_data, resume_from=None)
    state.scaler = torch.amp.GradScaler("cpu")
    real, calls = automl.train.loop.batch_loss, []

    def first_overflows(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("inf") if len(calls) == 1 else loss

    monkeypatch.setattr(automl.train.loop, "batch_loss", first_overflows)
    stats = train_one_epoch(state, conf.train, small_data, 1)
    steps = math.ceil(len(small_data.train) / 8)
    assert not stats.diverged and state.scheduler.last_epoch == steps - 1
    assert math.isfinite(stats.loss_sum) and 0 < stats.loss_mass < len(small_data.train)
    # an epoch whose every step overflowed reports no training loss (none is known; 0.0 would
    # read as the loss falling, NaN is no JSON)
    from automl.train.loop import end_epoch

    monkeypatch.setattr(automl.train.loop, "batch_loss", lambda *a, **k: real(*a, **k) * np.inf)
    stats = train_one_epoch(state, conf.train, small_data, 2)
    assert not stats.diverged and stats.loss_mass == 0
    end_epoch(state, conf, small_data, 2, stats, "val_accuracy", "max", None)
    assert "train_loss" not in state.progress.history[-1]
    assert "val_accuracy" in state.progress.history[-1]
    monkeypatch.setattr(automl.train.loop, "batch_loss", first_overflows)
    # without a scaler (fp32, bf16) the same loss is divergence, at once
    state.scaler, calls[:] = None, []
    stats = train_one_epoch(state, conf.train, small_data, 2)
    assert stats.diverged.startswith("non-finite training loss")


def test_the_optimizer_and_schedule_follow_the_training_options(
    tiny_config: Callable[..., Config], small_data: PreparedData
) -> None:
    """`weight_decay`, `learning_rate`, `warmup_ratio` and `num_threads` reach AdamW, the
    linear warmup/decay schedule and torch: a loop that ignored one passed every test."""
    from automl.train.loop import setup

    threads = torch.get_num_threads()
    conf = tiny_config(train__epochs=2, train__batch_size=8, train__learning_rate=0.04,
                       train__weight_decay=0.123, train__warmup_ratio=0.5,
                       train__num_threads=1)  # fmt: skip
    try:
        state = setup(conf, small_data, resume_from=None)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
    assert {g["weight_decay"] for g in state.optimizer.param_groups} == {0.123}
    total = 2 * math.ceil(len(small_data.train) / 8)
    warmup = int(0.5 * total)
    rates = []
    for _ in range(total):
        rates.append(state.scheduler.get_last_lr()[0])
        state.scheduler.step()
    assert rates[0] == 0.0 and rates[warmup] == pytest.approx(0.04)  # the peak after warmup
    assert rates[warmup // 2] == pytest.approx(0.04 * (warmup // 2) / warmup)
    assert rates[-1] == pytest.approx(0.04 / (total - warmup))  # decays to the last step


def test_gradients_are_clipped_to_max_grad_norm() -> None:
    param = nn.Parameter(torch.zeros(4))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    state = SimpleNamespace(params=[param], optimizer=optimizer, scheduler=scheduler, scaler=None)
    (param * torch.tensor([30.0, 40.0, 0.0, 0.0])).sum().backward()  # gradient norm 50
    optimizer_step(state, max_grad_norm=0.5)  # type: ignore[arg-type]
    assert float(param.grad.norm()) == pytest.approx(0.5)
    assert torch.allclose(param.data, -torch.tensor([0.3, 0.4, 0.0, 0.0]))


@pytest.mark.parametrize(("alpha", "scaling"), [(None, 2.0), (4.0, 0.5)])
def test_lora_alpha_sets_the_adapters_scaling(alpha: float | None, scaling: float) -> None:
    """`peft.lora_alpha` (default 2 x rank) reaches peft: scaling = alpha / rank."""
    cfg = ModelConfig(source="tiny")
    peft = PeftConfig(lora_rank=8, lora_alpha=alpha, lora_dropout=0.0)
    model, _ = build_model(cfg, peft, ["a", "b"], pad_token_id=0)
    scalings = {
        value
        for module in model.modules()
        if isinstance(getattr(module, "scaling", None), dict)
        for value in module.scaling.values()
    }
    assert scalings == {scaling}


def test_an_epoch_improves_by_the_metric_then_by_the_lower_validation_loss() -> None:
    """The rule the trial keeps its best epoch by, and the sweep's record of it (callback):
    the one search/pareto.rank_key ranks trials by."""
    from automl.train.loop import improves

    best = {"val_accuracy": 0.9, "val_loss": 0.5}
    assert improves({"val_accuracy": 0.5, "val_loss": 9.0}, None, "val_accuracy", "max")
    assert improves({"val_accuracy": 0.91, "val_loss": 0.9}, best, "val_accuracy", "max")
    assert improves({"val_accuracy": 0.9, "val_loss": 0.4}, best, "val_accuracy", "max")
    assert not improves({"val_accuracy": 0.9, "val_loss": 0.5}, best, "val_accuracy", "max")
    assert not improves({"val_accuracy": 0.9}, best, "val_accuracy", "max")  # no loss: kept
    assert not improves({"val_accuracy": 0.89, "val_loss": 0.1}, best, "val_accuracy", "max")
    assert not improves({"val_accuracy": math.nan, "val_loss": 0.1}, None, "val_accuracy", "max")
    assert not improves({"val_loss": 0.1}, best, "val_accuracy", "max")  # no score this epoch
    assert improves({"val_loss": 0.4}, {"val_loss": 0.5}, "val_loss", "min")
