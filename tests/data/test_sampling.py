"""Imbalance handling on the data side: class weights, the epoch's sample, and how the sample
composes with length-aware batching."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from automl.data.batching import length_bucketed_batches
from automl.data.sampling import (
    batches_over,
    class_counts,
    class_quotas,
    class_weights,
    epoch_indices,
)

# 3 classes, 90 : 9 : 1 — the shape of the default data's long tail, in miniature
LABELS = np.array([0] * 90 + [1] * 9 + [2] * 1)


def test_class_counts_include_absent_classes() -> None:
    assert class_counts(np.array([0, 2, 2]), 4).tolist() == [1, 0, 2, 0]


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        # w ∝ 1/n: (1/90, 1/9, 1) / mean -> mean 1, ratios 1 : 10 : 90
        ("balanced", np.array([1 / 90, 1 / 9, 1.0]) / np.mean([1 / 90, 1 / 9, 1.0])),
        # w ∝ 1/sqrt(n)
        ("sqrt", np.array([90, 9, 1]) ** -0.5 / np.mean(np.array([90, 9, 1]) ** -0.5)),
    ],
)
def test_class_weights_from_counts(scheme: str, expected: np.ndarray) -> None:
    weights = class_weights(np.array([90, 9, 1]), scheme)
    assert weights is not None
    np.testing.assert_allclose(weights, expected)
    assert weights.mean() == pytest.approx(1.0)


def test_no_weights_and_uniform_counts_give_uniform_weights() -> None:
    assert class_weights(np.array([90, 9, 1]), "none") is None
    np.testing.assert_allclose(class_weights(np.array([5, 5, 5]), "balanced"), [1.0, 1.0, 1.0])


def test_a_class_absent_from_training_gets_weight_zero_and_the_rest_mean_one() -> None:
    weights = class_weights(np.array([4, 0, 1]), "balanced")
    assert weights is not None
    assert weights[1] == 0.0 and np.isfinite(weights).all()
    assert weights[[0, 2]].mean() == pytest.approx(1.0)
    assert weights[2] / weights[0] == pytest.approx(4.0)


@pytest.mark.parametrize(
    ("scheme", "expected"),
    [
        ("natural", [90, 9, 1]),
        ("balanced", [34, 33, 33]),  # 100 draws in equal shares, the odd one to the lowest id
        # shares ∝ sqrt(90), 3, 1 = 9.49 : 3 : 1 -> 70.2, 22.2, 7.4 of 100
        ("sqrt", [70, 22, 8]),
    ],
)
def test_class_quotas(scheme: str, expected: list[int]) -> None:
    quotas = class_quotas(np.array([90, 9, 1]), scheme)
    assert quotas.tolist() == expected
    assert quotas.sum() == 100


def test_natural_sampling_is_every_index_once_and_draws_nothing() -> None:
    rng = np.random.default_rng(0)
    before = dict(rng.bit_generator.state)
    assert epoch_indices(LABELS, "natural", rng).tolist() == list(range(len(LABELS)))
    assert rng.bit_generator.state == before  # the default run's batches are unchanged


@pytest.mark.parametrize(("scheme", "share"), [("balanced", 0.0), ("sqrt", 0.5)])
def test_sampled_class_proportions_follow_the_scheme_over_many_epochs(
    scheme: str, share: float
) -> None:
    labels = np.array([0] * 600 + [1] * 60 + [2] * 7 + [3] * 50)
    counts = np.array([600, 60, 7, 50], dtype=float)
    expected = counts**share / (counts**share).sum()
    rng = np.random.default_rng(1)
    seen = Counter[int]()
    for _ in range(50):
        idx = epoch_indices(labels, scheme, rng)
        assert len(idx) == len(labels)  # the same number of draws per epoch
        assert ((idx >= 0) & (idx < len(labels))).all()
        seen.update(labels[idx].tolist())
    observed = np.array([seen[c] for c in range(4)]) / (50 * len(labels))
    np.testing.assert_allclose(observed, expected, atol=2e-3)


def test_oversampling_repeats_examples_evenly_and_undersampling_never_repeats() -> None:
    idx = epoch_indices(LABELS, "balanced", np.random.default_rng(0))
    per_example = Counter(idx.tolist())
    majority = [per_example[i] for i in range(90) if i in per_example]
    assert max(majority) == 1 and len(majority) == 34  # 34 distinct of 90, none twice
    assert per_example[99] == 33  # the one-example class, drawn its whole quota
    minority = [per_example[i] for i in range(90, 99)]
    assert max(minority) - min(minority) <= 1  # whole passes first: 33 = 3 x 9 + 6


def test_sampling_is_deterministic_per_seed() -> None:
    def draw(seed: int) -> list[int]:
        return epoch_indices(LABELS, "sqrt", np.random.default_rng(seed)).tolist()

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_unknown_schemes_are_refused() -> None:
    with pytest.raises(ValueError, match="sampling"):
        epoch_indices(LABELS, "uniform", np.random.default_rng(0))
    with pytest.raises(ValueError, match="class weights"):
        class_weights(np.array([1, 2]), "inverse")


def test_sampled_epochs_keep_length_aware_batches_length_homogeneous() -> None:
    """Sample first, then batch by length: the batches cover exactly the sample, and each is as
    length-homogeneous as the batcher makes an unsampled epoch."""
    rng = np.random.default_rng(0)
    n = 2000
    labels = np.where(rng.random(n) < 0.9, 0, rng.integers(1, 6, n))
    lengths = rng.integers(3, 120, n)
    idx = epoch_indices(labels, "balanced", rng)
    batches = batches_over(idx, lengths, lambda ls: length_bucketed_batches(ls, 32, 8, rng))
    assert sorted(np.concatenate(batches).tolist()) == sorted(idx.tolist())
    spread = np.mean([np.ptp(lengths[b]) for b in batches if len(b) == 32])
    plain = np.mean([np.ptp(lengths[rng.permutation(idx)[i : i + 32]]) for i in range(0, n, 32)])
    assert spread < plain / 4  # random batches span ~the whole 3..120 range; these a sliver
    # and the rebalancing survives the batching: class 0 is ~1/6 of the draws, not 90 %
    assert np.mean(labels[np.concatenate(batches)] == 0) == pytest.approx(1 / 6, abs=0.01)
