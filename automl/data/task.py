"""A labelled text-classification task in memory: texts, integer labels, label names."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path


class DataError(ValueError):
    """Unusable data; the message is one line naming the source and the problem."""


class DataFileMissing(DataError):
    """A data file that is not there, with its path as configured (callers that know where
    the path is read from add how to mend it)."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"{path}: file not found")
        self.path = path


def label_number(text: str) -> Decimal | None:
    """A label's value where it is a number, exactly: `1.0` and `1` one value; ids past 2**53
    (which floats would merge) and `1_0` (which Python's float reads as 10) not. The one
    notion of "a numeric label" for ordering, comparing and the quality report."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() and "_" not in text else None


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
