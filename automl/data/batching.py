"""Training and evaluation batches: length-aware, padded to their own longest row."""

from __future__ import annotations

import numpy as np
import torch

from automl.data.tokenized import TokenizedSplit


def length_bucketed_batches(
    lengths: np.ndarray, batch_size: int, pool_batches: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Shuffle, sort by length inside pools of `pool_batches` batches, then shuffle the batches.

    Most of the padding goes (short texts batch together) while each batch still mixes classes:
    sorting the whole set would also sort it by class on data where length tracks the topic.
    """
    order = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    batches: list[np.ndarray] = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Evaluation batches: fully sorted by length (order does not matter when not learning)."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def collate(split: TokenizedSplit, idx: np.ndarray, pad_token_id: int) -> dict[str, torch.Tensor]:
    """Pad one batch to its longest row (right padding) and build the attention mask."""
    rows = [split.input_ids[i] for i in idx]
    width = max(len(r) for r in rows)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        attention[i, : len(row)] = 1
    labels = torch.from_numpy(split.labels[idx])
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}
