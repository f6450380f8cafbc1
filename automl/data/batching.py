"""Training and evaluation batches: length-aware, padded to their own longest row."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from automl.config.schema import AUTO_BATCH_SIZES
from automl.data.tokenized import TokenizedSplit

MIN_STEPS_PER_EPOCH = 400


def auto_batch_size(num_train: int, accum_steps: int = 1) -> int:
    """The micro-batch for `num_train` training examples when the config leaves it open.

    On small data the number of optimizer steps, not the examples per step, limits what an
    epoch learns, and on a CPU smaller length-bucketed batches cost no speed: on the embedded
    task batch 8 beat 16 and 32 after every epoch, at 800 training examples (LoRA, 3 epochs:
    0.757 validation accuracy against 0.624 at batch 32, in the same 48 s) and at 3,171
    (0.894 against 0.869; benchmarks/results/batch_size.md). Larger data, where an epoch has
    steps to spare, keeps the larger batches a GPU runs faster.
    """
    for size in AUTO_BATCH_SIZES:
        if num_train / (size * accum_steps) >= MIN_STEPS_PER_EPOCH:
            return size
    return AUTO_BATCH_SIZES[-1]


# `train.batching: auto` (the default): random batches inside power-of-two length buckets below
# this many training examples, class-stratified fine buckets from it. Chosen on the embedded
# task (README, "Batches are length-aware"): buckets were the better rule at 700, 1,398 and
# 2,101 training examples (LoRA), stratified fine buckets at 3,080; 2,500 sits between.
STRATIFIED_FROM = 2500


def auto_batching(num_train: int) -> str:
    """The batching rule for `num_train` training examples when the config says `auto`.

    Why two rules: fine stratified buckets pad least and on the whole embedded task (3,080
    training examples) learned at least as much per epoch as random batches (+0.4 / +0.5 /
    +0.4 test points after epochs 1-3) and 0.5-1.1 points more than coarse random buckets.
    On smaller data each fine bucket holds only a few batches, whose classes are that
    bucket's (short texts: mostly greetings): at 700 examples they trailed random batches by
    4.0 points after epoch 1 (ten seeds) while coarse random buckets were level (+0.0 / +1.0 /
    +1.0), and at 1,398 and 2,101 coarse buckets led them after epochs 2 and 3.
    """
    return "stratified" if num_train >= STRATIFIED_FROM else "buckets"


def auto_bucket_edges(batching: str) -> str:
    """`train.bucket_edges: auto`: the edges each rule was measured best with (pow2 for random
    buckets, fine for stratified ones; pools have no edges)."""
    return "pow2" if batching == "buckets" else "fine"


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


POW2_EDGES: tuple[int, ...] = (8, 16, 32, 64, 128)
# Token-count edges 1.25x apart (5, 6, 8, 10, 12, 15, 19, 24, 30, 37, ... 6311): above 5 tokens a
# bucket's rows differ in length by at most a quarter, so a batch pads nearly as little as in a
# sorted pool.
FINE_EDGES: tuple[int, ...] = tuple(sorted({round(4 * 1.25**k) for k in range(1, 34)}))
# train.bucket_edges (`auto`: auto_bucket_edges)
BUCKET_EDGES = {"pow2": POW2_EDGES, "fine": FINE_EDGES}


def length_bucket_batches(
    lengths: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    edges: Sequence[int] = POW2_EDGES,
    labels: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Batches drawn inside length buckets, then shuffled (`train.batching=buckets|stratified`).

    Why: sorting by length (`length_bucketed_batches`) removes padding but also sorts by class
    wherever length tracks the label, so a batch holds one or two classes and an epoch teaches
    less. Here a batch shares only a length range and is a sample of its bucket. With `labels`
    (`train.batching=stratified`) every class is spread evenly along its bucket before the
    bucket is cut into batches, so a batch holds its bucket's class mix rather than a random
    draw of it. Finer edges (`FINE_EDGES`) pad less but leave each bucket fewer classes.

    A bucket's leftovers (fewer than `batch_size`) join the next longer bucket, so an epoch has
    ceil(n / batch_size) batches with at most one partial batch, like the other rules (the
    learning-rate schedule counts on that). Deterministic given `rng`.
    """
    order = rng.permutation(len(lengths))
    bucket = np.searchsorted(np.asarray(edges), lengths[order], side="left")
    batches: list[np.ndarray] = []
    carry = np.empty(0, dtype=order.dtype)
    for b in range(len(edges) + 1):
        members = np.concatenate([carry, order[bucket == b]])
        if labels is not None and len(members) > batch_size:
            members = spread_classes(members, labels, rng)
        full = len(members) - len(members) % batch_size
        batches.extend(members[i : i + batch_size] for i in range(0, full, batch_size))
        carry = members[full:]
    if len(carry):
        batches.append(carry)
    return [batches[i] for i in rng.permutation(len(batches))]


def spread_classes(members: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Reorder `members` (already shuffled) so each class is spread evenly along the sequence.

    Systematic sampling per class: a class of n_c rows takes positions (rank + u_c) / n_c on
    [0, 1) with one random offset u_c, then all rows are ordered by position. Any run of k
    consecutive rows then holds about k * n_c / n of each class, and which rows of a class come
    first is as random as the shuffle was.
    """
    classes = labels[members]
    _, inverse, counts = np.unique(classes, return_inverse=True, return_counts=True)
    by_class = np.argsort(inverse, kind="stable")  # grouped by class, shuffled order kept inside
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(members))
    rank[by_class] = np.arange(len(members)) - np.repeat(starts, counts)
    position = (rank + rng.random(len(counts))[inverse]) / counts[inverse]
    return members[np.argsort(position, kind="stable")]


def steps_of_length_groups(groups: list[np.ndarray], per_step: int) -> list[np.ndarray]:
    """Join every `per_step` consecutive (already shuffled) length groups into one optimizer step
    (`train.length_groups_per_step`), each group still its own forward pass.

    Why: a length bucket's class mix is not the data's (on the embedded task short texts are
    mostly greetings), so a step cut from one bucket pulls the model towards that bucket's
    classes; a step made of groups from several buckets averages those pulls out while each
    forward pass still pads only to its own group's longest row. The one partial group goes
    last, so the loop can cut every step at group boundaries; an epoch keeps
    ceil(n / step size) steps.
    """
    if per_step == 1 or not groups:
        return groups
    size = max(len(g) for g in groups)
    ordered = [g for g in groups if len(g) == size] + [g for g in groups if len(g) < size]
    return [np.concatenate(ordered[i : i + per_step]) for i in range(0, len(ordered), per_step)]


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
