"""Imbalance handling inside the loop: the class-weighted loss and the sampled epoch."""

from __future__ import annotations

import csv
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import traced_trial

from automl.config.schema import Config
from automl.data.load import load_task_data
from automl.data.sampling import class_counts, class_quotas
from automl.data.tokenized import PreparedData, tokenize
from automl.model.build import build_model
from automl.train.loop import batch_loss, run_trial

SHARES = {"food": 90, "sports": 24, "weather": 8}  # a long tail in miniature


@pytest.fixture(scope="module")
def skewed_data(
    tmp_path_factory: pytest.TempPathFactory,
    easy_words: dict[str, list[str]],
    tiny_config: Callable[..., Config],
    tokenizer: Any,
) -> PreparedData:
    """The easy keyword task with 90 : 24 : 8 examples per class."""
    rng = random.Random(0)
    path = tmp_path_factory.mktemp("skewed") / "skewed.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        for label, n in SHARES.items():
            for _ in range(n):
                writer.writerow([" ".join(rng.sample(easy_words[label], 3) + ["the"]), label])
    conf = tiny_config(data__path=str(path))
    return tokenize(load_task_data(conf.data), tokenizer, conf.model.max_length)


def _batch(data: PreparedData) -> dict[str, torch.Tensor]:
    from automl.data.batching import collate

    labels = data.train.labels
    mixed = np.concatenate([np.flatnonzero(labels == c)[:5] for c in range(3)])  # every class
    return collate(data.train, mixed, data.pad_token_id)


def _model(conf: Config, data: PreparedData) -> torch.nn.Module:
    torch.manual_seed(0)
    model, _ = build_model(conf.model, conf.peft, data.label_names, data.pad_token_id)
    return model.eval()  # no dropout: the same logits on every call


def test_weighted_loss_with_uniform_weights_is_the_plain_loss(
    tiny_config: Callable[..., Config], skewed_data: PreparedData
) -> None:
    model, batch = _model(tiny_config(), skewed_data), _batch(skewed_data)
    with torch.no_grad():
        plain = batch_loss(model, batch)
        assert batch_loss(model, batch, torch.ones(3)) == pytest.approx(plain.item(), rel=1e-6)
        assert batch_loss(model, batch, torch.full((3,), 2.5)) == pytest.approx(plain.item())


def test_weighted_loss_is_the_weighted_mean_of_per_example_losses(
    tiny_config: Callable[..., Config], skewed_data: PreparedData
) -> None:
    model, batch = _model(tiny_config(), skewed_data), _batch(skewed_data)
    weights = torch.tensor([0.2, 1.0, 3.0])
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        each = F.cross_entropy(logits, batch["labels"], reduction="none")
        w = weights[batch["labels"]]
        expected = (w * each).sum() / w.sum()
        assert batch_loss(model, batch, weights).item() == pytest.approx(expected.item(), rel=1e-5)
        assert batch_loss(model, batch, weights).item() != pytest.approx(each.mean().item())


def test_a_tiny_trial_with_balanced_class_weights_runs_and_weighs_its_loss(
    tiny_config: Callable[..., Config], skewed_data: PreparedData
) -> None:
    plain = run_trial(tiny_config(train__epochs=1), skewed_data)
    weighted = run_trial(tiny_config(train__epochs=1, train__class_weights="balanced"), skewed_data)
    assert weighted.status == "completed" and weighted.epochs_run == 1
    epoch = weighted.history[0]
    for key in ("val_accuracy", "val_f1", "val_balanced_accuracy", "val_loss", "train_loss"):
        assert np.isfinite(epoch[key]), key
    # same seed, same batches: only the weighting differs
    assert epoch["train_loss"] != pytest.approx(plain.history[0]["train_loss"], rel=1e-4)


@pytest.mark.parametrize("scheme", ["natural", "sqrt", "balanced"])
def test_the_loop_trains_on_the_sampled_class_mix(
    tiny_config: Callable[..., Config],
    skewed_data: PreparedData,
    scheme: str,
) -> None:
    _, batches, _ = traced_trial(tiny_config(train__epochs=1, train__sampling=scheme), skewed_data)
    seen = Counter(skewed_data.train.labels[[i for rows in batches for i in rows]].tolist())
    counts = class_counts(skewed_data.train.labels, 3)
    assert [seen[c] for c in range(3)] == class_quotas(counts, scheme).tolist()


def test_the_class_weighted_train_loss_does_not_move_with_the_micro_batch(
    tiny_config: Callable[..., Config], skewed_data: PreparedData, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same steps (8 rows each) run as one forward pass or two of 4: the same gradients,
    and so the same train_loss. It was each micro-batch's weighted mean times its row count,
    which moved with the split (an out-of-memory retry halving the micro-batch made it drop,
    and the overfit rule reads it)."""

    import automl.model.build

    def without_dropout(*args: Any) -> Any:  # dropout's draws differ with the batch shapes
        config = tiny(*args)
        config.hidden_dropout_prob = config.attention_probs_dropout_prob = 0.0
        return config

    tiny = automl.model.build._tiny_config
    monkeypatch.setattr(automl.model.build, "_tiny_config", without_dropout)

    def train_loss(batch_size: int, accum: int) -> float:
        conf = tiny_config(
            train__epochs=1, train__class_weights="balanced", train__batch_size=batch_size,
            train__grad_accum_steps=accum, train__mixed_precision=False,
        )  # fmt: skip
        return float(run_trial(conf, skewed_data).history[0]["train_loss"])

    whole, halves = train_loss(8, 1), train_loss(4, 2)
    assert halves == pytest.approx(whole, rel=1e-4)
