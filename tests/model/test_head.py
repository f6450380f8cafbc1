"""A checkpoint that already is a classifier: its head rows follow the label names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from automl.config.schema import ModelConfig, PeftConfig
from automl.model.build import build_model
from automl.model.head import named_labels, output_layer

THEIRS = ["neg", "neu", "pos"]


def _save_classifier(folder: Path, arch: str, names: list[str] | None, **extra: Any) -> Any:
    """A tiny classifier saved the way transformers saves a fine-tuned one: its head trained
    for `names` (None: labels nobody named)."""
    from transformers import (
        AutoModelForSequenceClassification,
        BertConfig,
        GPT2Config,
        RobertaConfig,
    )

    labels = {"num_labels": 3}
    if names is not None:
        labels |= {
            "id2label": dict(enumerate(names)),
            "label2id": {n: i for i, n in enumerate(names)},
        }
    size = {"vocab_size": 100, "pad_token_id": 0, **labels, **extra}
    config = {
        "bert": lambda: BertConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                   intermediate_size=16, **size),
        "roberta": lambda: RobertaConfig(hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=16, max_position_embeddings=40, **size),
        "gpt2": lambda: GPT2Config(n_embd=8, n_layer=2, n_head=2, n_positions=40, **size),
    }[arch]()  # fmt: skip
    torch.manual_seed(1)
    model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)  # a trained head: rows far from a fresh one's
    model.save_pretrained(folder)
    return model


def _head(model: Any, num_labels: int) -> torch.nn.Linear:
    found = output_layer(model, num_labels)
    assert found is not None
    return found[1]


def _rows_from(new: torch.nn.Linear, old: torch.nn.Linear) -> list[int | None]:
    """Which of the checkpoint's rows each class's row is (None: a fresh one)."""

    def same(i: int, j: int) -> bool:
        bias = new.bias is None or torch.equal(new.bias[i], old.bias[j])
        return bias and torch.equal(new.weight[i], old.weight[j])

    return [
        next((j for j in range(old.out_features) if same(i, j)), None)
        for i in range(new.out_features)
    ]


def _build(folder: Path, labels: list[str], rank: int = 0) -> Any:
    torch.manual_seed(0)
    model, _ = build_model(
        ModelConfig(source="pretrained", name_or_path=str(folder)),
        PeftConfig(lora_rank=rank), labels, pad_token_id=0,
    )  # fmt: skip
    return model


@pytest.mark.parametrize("arch", ["bert", "roberta", "gpt2"])  # classifier, .out_proj, score
def test_each_known_class_starts_from_its_own_row(tmp_path: Path, arch: str) -> None:
    """transformers reused the rows by position: `pos, neg, neu` started `pos` from `neg`'s
    row, and one more class (a size mismatch) discarded the whole head."""
    old = _head(_save_classifier(tmp_path, arch, THEIRS), 3)
    for labels, rows in (
        (["pos", "neg", "neu"], [2, 0, 1]),  # the same classes in another order
        (["food", "neg", "neu", "pos"], [None, 0, 1, 2]),  # new data with one more class
        (["food", "sport", "tech"], [None, None, None]),  # other classes: nothing reused
        (THEIRS, [0, 1, 2]),  # the model's own classes: its head as it is
    ):
        model = _build(tmp_path, labels)
        assert _rows_from(_head(model, len(labels)), old) == rows, labels
        assert model.config.id2label == dict(enumerate(labels))
        assert model.config.label2id == {n: i for i, n in enumerate(labels)}
        out = model(input_ids=torch.tensor([[5, 6, 7]]), labels=torch.tensor([len(labels) - 1]))
        assert out.logits.shape == (1, len(labels)) and torch.isfinite(out.loss)


def test_lora_trains_the_remapped_head(tmp_path: Path) -> None:
    old = _head(_save_classifier(tmp_path, "bert", THEIRS), 3)
    model = _build(tmp_path, ["pos", "extra", "neg"], rank=4)
    head = model.base_model.model.classifier.modules_to_save["default"]  # peft's trained copy
    assert _rows_from(head, old) == [2, None, 0]
    assert head.weight.requires_grad and head.bias.requires_grad


def test_labels_nobody_named_keep_transformers_reuse(tmp_path: Path) -> None:
    """LABEL_0.. cannot be matched by name: a same-size head loads as transformers loads it."""
    old = _head(_save_classifier(tmp_path, "bert", None), 3)
    assert named_labels(_build(tmp_path, ["x", "y", "z"]).config) == ["x", "y", "z"]
    from transformers import AutoConfig

    assert named_labels(AutoConfig.from_pretrained(tmp_path)) is None
    assert _rows_from(_head(_build(tmp_path, ["x", "y", "z"]), 3), old) == [0, 1, 2]


def test_a_multi_label_checkpoint_trains_with_single_label_loss(tmp_path: Path) -> None:
    """Its problem_type made the model's own loss binary cross-entropy, which fails on one
    class id per text."""
    _save_classifier(tmp_path, "bert", THEIRS, problem_type="multi_label_classification")
    model = _build(tmp_path, THEIRS)
    out = model(input_ids=torch.tensor([[5, 6, 7], [8, 9, 10]]), labels=torch.tensor([0, 2]))
    expected = torch.nn.functional.cross_entropy(out.logits, torch.tensor([0, 2]))
    assert torch.allclose(out.loss, expected)


def test_named_classes_without_head_weights_keep_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A base model whose config names labels but whose weights hold no head: its random rows
    are not passed off as the checkpoint's."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=16, num_labels=3, id2label=dict(enumerate(THEIRS)),
                        label2id={n: i for i, n in enumerate(THEIRS)})  # fmt: skip
    BertModel(config).save_pretrained(tmp_path)
    with caplog.at_level("INFO", logger="automl.model.head"):
        model = _build(tmp_path, ["neg", "pos"])
    assert "0 of 2 classes start from the checkpoint's rows (new: neg, pos)" in caplog.text
    assert model.config.id2label == {0: "neg", 1: "pos"}
