"""A labelled text-classification task in memory: texts, integer labels, label names."""

from __future__ import annotations

from dataclasses import dataclass


class DataError(ValueError):
    """Unusable data; the message is one line naming the source and the problem."""


@dataclass
class LabeledTexts:
    texts: list[str]
    labels: list[int]


@dataclass
class TaskData:
    train: LabeledTexts
    val: LabeledTexts
    label_names: list[str]
    description: str  # where the data came from, for model cards and MLflow
    # Held out for the exported model's final score; no training or selection step reads it.
    test: LabeledTexts | None = None
