"""Evaluation of a model on a tokenized split: loss, accuracy, macro-F1, balanced accuracy.

Accuracy alone hides a model that never predicts the small classes (on the default data the
majority class is 48.5 %); macro-F1 and balanced accuracy (mean per-class recall) expose it.
"""

from __future__ import annotations

import warnings
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from torch import nn

from automl.data.batching import collate, sorted_batches
from automl.data.tokenized import TokenizedSplit


@torch.no_grad()
def evaluate(
    model: nn.Module,
    split: TokenizedSplit,
    pad_token_id: int,
    batch_size: int,
    device: torch.device,
    autocast: Any = nullcontext,
) -> dict[str, float]:
    """Validation loss (unweighted, comparable across loss weightings) and scores."""
    model.eval()
    loss_sum, predictions = 0.0, np.empty(len(split), dtype=np.int64)
    for idx in sorted_batches(split.lengths, batch_size):
        batch = {k: v.to(device) for k, v in collate(split, idx, pad_token_id).items()}
        with autocast():
            out = model(**batch)
        loss_sum += out.loss.float().item() * len(idx)
        predictions[idx] = out.logits.argmax(dim=-1).cpu().numpy()
    return {"val_loss": loss_sum / len(split), **scores(split.labels, predictions, "val_")}


def scores(y_true: np.ndarray, y_pred: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Accuracy, macro-F1 and balanced accuracy of predicted class ids, keys prefixed."""
    return {
        f"{prefix}accuracy": float(np.mean(y_true == y_pred)) if len(y_true) else float("nan"),
        f"{prefix}f1": macro_f1(y_true, y_pred),
        f"{prefix}balanced_accuracy": balanced_accuracy(y_true, y_pred),
    }


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean F1 over the classes that occur in either labels or predictions."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes that occur in the labels (sklearn's definition)."""
    from sklearn.metrics import balanced_accuracy_score

    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected, those count against precision only
        warnings.simplefilter("ignore", UserWarning)
        return float(balanced_accuracy_score(y_true, y_pred))
