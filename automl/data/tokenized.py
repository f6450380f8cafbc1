"""Tokenize once in the driver; trials share the result through Ray's object store."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from automl.data.fingerprint import data_fingerprint
from automl.data.task import DataError, LabeledTexts, TaskData


@dataclass
class TokenizedSplit:
    input_ids: list[list[int]]
    labels: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(x) for x in self.input_ids), dtype=np.int64, count=len(self))

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class PreparedData:
    """Tokenized once in the driver and shared with every trial (Ray's object store)."""

    train: TokenizedSplit
    val: TokenizedSplit
    label_names: list[str]
    pad_token_id: int
    description: str
    val_texts: list[str]  # kept so an exported model can be re-evaluated through a pipeline
    # sha256 of the (text, label) pairs + counts (data/fingerprint.py): provenance of an export
    fingerprint: dict[str, Any] = field(default_factory=dict)
    # The held-out test split: read only after the best trial is chosen (export evaluation).
    test: TokenizedSplit | None = None
    test_texts: list[str] = field(default_factory=list)
    quality: dict[str, Any] = field(default_factory=dict)  # data/quality.py's report, or empty
    # The texts and labels it was tokenized from: the driver's, for MLflow's dataset inputs
    # (so the data is read once); trials do not get them.
    task: TaskData | None = field(default=None, repr=False, compare=False)

    def without_test(self) -> PreparedData:
        """What trials get: the same data with the test split (and the raw texts) left out, so
        no training or selection step can read it."""
        return replace(self, test=None, test_texts=[], task=None)


def tokenize(
    task: TaskData, tokenizer: Any, max_length: int, fingerprint: dict[str, Any] | None = None
) -> PreparedData:
    """Tokenize every split once (no padding: batches are padded to their own longest row).
    `fingerprint`: the task's `data_fingerprint`, where the caller has it (it hashes every row)."""

    def encode(split: LabeledTexts) -> TokenizedSplit:
        ids = tokenizer(split.texts, truncation=True, max_length=max_length)["input_ids"]
        return TokenizedSplit(list(ids), np.asarray(split.labels, dtype=np.int64))

    if tokenizer.pad_token_id is None:
        raise DataError("tokenizer has no pad token; set one before tokenizing")
    return PreparedData(
        train=encode(task.train),
        val=encode(task.val),
        label_names=task.label_names,
        pad_token_id=int(tokenizer.pad_token_id),
        description=task.description,
        val_texts=task.val.texts,
        fingerprint=fingerprint if fingerprint is not None else data_fingerprint(task),
        test=encode(task.test) if task.test is not None else None,
        test_texts=list(task.test.texts) if task.test is not None else [],
        task=task,
    )
