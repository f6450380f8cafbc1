"""Imbalance handling on the data side: class weights for the loss and the epoch's sample.

A topic with 7 training examples next to one with 1,700 is seen 250 times less often; a model
that never predicts it loses little accuracy and a whole class of macro-F1. Two remedies, both
derived from the training split's class counts n_c and both smoothed by an exponent:

- class weights for the cross-entropy, w_c ∝ n_c^-p (p = 1 `balanced`, 1/2 `sqrt`), mean 1;
- the epoch's sample: as many draws as there are training examples, class c getting a share
  ∝ n_c^q (q = 1 `natural`, 1/2 `sqrt`, 0 `balanced`), with replacement where a class is
  oversampled.

The sampler only chooses *which* indices an epoch holds; any length-aware batcher then groups
them (`batches_over`), so rebalancing does not undo the padding savings.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

WEIGHT_SCHEMES = {"none": 0.0, "sqrt": 0.5, "balanced": 1.0}  # exponent p in n_c^-p
SAMPLING_SCHEMES = {"natural": 1.0, "sqrt": 0.5, "balanced": 0.0}  # exponent q in n_c^q

# A batcher: (lengths, ...) -> batches of positions into `lengths` (e.g. length_bucketed_batches)
Batcher = Callable[[np.ndarray], list[np.ndarray]]


def class_counts(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Examples per class id, zeros included for classes absent from `labels`."""
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)


def class_weights(counts: np.ndarray, scheme: str) -> np.ndarray | None:
    """Cross-entropy weights ∝ n_c^-p, mean 1 over the classes present; None for `none`.

    A class absent from training gets weight 0: it has no examples to weigh, and an infinite
    weight would only poison the normalisation."""
    if scheme not in WEIGHT_SCHEMES:
        raise ValueError(f"class weights: unknown scheme {scheme!r}")
    if scheme == "none":
        return None
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.zeros_like(counts)
    weights[present] = counts[present] ** -WEIGHT_SCHEMES[scheme]
    return weights / weights[present].mean()


def class_quotas(counts: np.ndarray, scheme: str) -> np.ndarray:
    """Draws per class in one epoch: sum(counts) draws shared ∝ n_c^q (largest remainders)."""
    if scheme not in SAMPLING_SCHEMES:
        raise ValueError(f"sampling: unknown scheme {scheme!r}")
    counts = np.asarray(counts, dtype=np.int64)
    present = counts > 0
    share = np.zeros(len(counts))
    share[present] = counts[present].astype(np.float64) ** SAMPLING_SCHEMES[scheme]
    exact = share / share.sum() * counts.sum()
    quotas = np.floor(exact).astype(np.int64)
    # hand the draws lost to rounding to the largest fractional parts (ties: lower class id)
    short = int(counts.sum() - quotas.sum())
    quotas[np.argsort(-(exact - quotas), kind="stable")[:short]] += 1
    return quotas


def epoch_indices(labels: np.ndarray, scheme: str, rng: np.random.Generator) -> np.ndarray:
    """The training indices one epoch visits, unordered (the batcher shuffles them).

    `natural` is every index once and draws nothing from `rng`, so the default run is exactly
    what it was before sampling existed. Otherwise each class gets its quota: whole shuffled
    passes over its examples, then part of one more (an example repeats only when its class is
    oversampled, and never twice more often than its classmates)."""
    if scheme not in SAMPLING_SCHEMES:
        raise ValueError(f"sampling: unknown scheme {scheme!r}")
    labels = np.asarray(labels, dtype=np.int64)
    if scheme == "natural":
        return np.arange(len(labels))
    counts = class_counts(labels, int(labels.max()) + 1 if len(labels) else 0)
    quotas = class_quotas(counts, scheme)
    parts: list[np.ndarray] = []
    for c in np.flatnonzero(quotas):
        members = np.flatnonzero(labels == c)
        passes = -(-int(quotas[c]) // len(members))  # ceil
        drawn = np.concatenate([rng.permutation(members) for _ in range(passes)])
        parts.append(drawn[: quotas[c]])
    return np.concatenate(parts) if parts else np.arange(0)


def batches_over(indices: np.ndarray, lengths: np.ndarray, batcher: Batcher) -> list[np.ndarray]:
    """Batch an epoch's `indices` with a length-aware `batcher` that knows nothing of sampling.

    The batcher sees the lengths of the sampled rows (duplicates included) and returns positions
    into them; mapping the positions back gives dataset indices, batched by length as before."""
    indices = np.asarray(indices, dtype=np.int64)
    return [indices[pos] for pos in batcher(lengths[indices])]
