"""The Hugging Face `Trainer` side of the comparisons, on our tokenized data and our model."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from automl.data.tokenized import PreparedData, TokenizedSplit


class SplitDataset(torch.utils.data.Dataset):
    """A tokenized split as the rows `DataCollatorWithPadding` pads (no padding stored)."""

    def __init__(self, split: TokenizedSplit) -> None:
        self.split = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids = self.split.input_ids[i]
        return {
            "input_ids": ids,
            "attention_mask": [1] * len(ids),
            "labels": int(self.split.labels[i]),
        }


def training_args(out: Path, *, epochs: int, lr: float, seed: int, **extra: Any) -> Any:
    """Trainer arguments matching our loop: batch 32, AdamW, weight decay 0.01, 10 % linear
    warmup then linear decay, clipping at 1.0, CPU, nothing saved or logged."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        num_train_epochs=epochs,
        learning_rate=lr,
        weight_decay=0.01,
        warmup_steps=0.1,  # < 1: a ratio of the total steps (transformers 5.x)
        max_grad_norm=1.0,
        save_strategy="no",
        logging_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        seed=seed,
        **extra,
    )


def epoch_timer() -> Any:
    """A TrainerCallback adding up the time inside training epochs (no evaluation inside)."""
    from transformers import TrainerCallback

    class EpochTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds = 0.0
            self._started = 0.0

        def on_epoch_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.seconds += time.perf_counter() - self._started

    return EpochTimer()


def accuracy(eval_pred: Any) -> dict[str, float]:
    logits, labels = eval_pred
    return {"accuracy": float((np.argmax(logits, axis=-1) == labels).mean())}


def collator(tokenizer: Any) -> Any:
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer)


def datasets(data: PreparedData) -> tuple[SplitDataset, SplitDataset]:
    return SplitDataset(data.train), SplitDataset(data.val)
