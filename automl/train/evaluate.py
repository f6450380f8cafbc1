"""Evaluation of a model on a tokenized split: loss, accuracy, macro-F1."""

from __future__ import annotations

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
    """Validation loss, accuracy and macro-F1 over the whole split."""
    model.eval()
    loss_sum, predictions = 0.0, np.empty(len(split), dtype=np.int64)
    for idx in sorted_batches(split.lengths, batch_size):
        batch = {k: v.to(device) for k, v in collate(split, idx, pad_token_id).items()}
        with autocast():
            out = model(**batch)
        loss_sum += out.loss.float().item() * len(idx)
        predictions[idx] = out.logits.argmax(dim=-1).cpu().numpy()
    return {
        "val_loss": loss_sum / len(split),
        "val_accuracy": float((predictions == split.labels).mean()),
        "val_f1": macro_f1(split.labels, predictions),
    }


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean F1 over the classes that occur in either labels or predictions."""
    scores = []
    for c in np.union1d(y_true, y_pred):
        tp = np.sum((y_pred == c) & (y_true == c))
        fp = np.sum((y_pred == c) & (y_true != c))
        fn = np.sum((y_pred != c) & (y_true == c))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return float(np.mean(scores))
