"""The scores every epoch reports: accuracy, macro-F1, balanced accuracy."""

from __future__ import annotations

import numpy as np
import pytest

from automl.train.evaluate import balanced_accuracy, scores


@pytest.mark.parametrize(
    ("y_true", "y_pred", "expected"),
    [
        ([0, 1, 2, 0], [0, 1, 2, 0], 1.0),
        # recalls: class 0 1/2, class 1 2/2, class 2 0/1 -> 1/2
        ([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], 0.5),
        # the majority-class predictor on 3:1 data: 75 % accuracy, balanced accuracy 1/2
        ([0, 0, 0, 1], [0, 0, 0, 0], 0.5),
        # a class only predicted (2) has no recall to average: (1/2 + 1) / 2
        ([0, 0, 1], [0, 2, 1], 0.75),
    ],
)
def test_balanced_accuracy_is_the_mean_recall_over_true_classes(
    y_true: list[int], y_pred: list[int], expected: float
) -> None:
    assert balanced_accuracy(np.array(y_true), np.array(y_pred)) == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_their_definitions_on_random_imbalanced_predictions(seed: int) -> None:
    """Counted here from each class's hits and misses (the code calls scikit-learn: the same
    calls here would only compare it with itself)."""
    rng = np.random.default_rng(seed)
    y_true = rng.choice(6, size=40, p=[0.6, 0.2, 0.1, 0.05, 0.03, 0.02])
    y_pred = np.where(rng.random(40) < 0.6, y_true, rng.integers(0, 6, 40))
    y_pred[0] = 6  # a class predicted but never true
    got = scores(y_true, y_pred, "val_")
    assert set(got) == {"val_accuracy", "val_f1", "val_balanced_accuracy"}
    assert got["val_accuracy"] == pytest.approx(np.mean(y_true == y_pred))
    f1s, recalls = [], []
    for c in sorted(set(y_true) | set(y_pred)):  # macro: every class either side names
        hits, support = int(np.sum((y_true == c) & (y_pred == c))), int(np.sum(y_true == c))
        false_alarms = int(np.sum((y_pred == c) & (y_true != c)))
        f1s.append(2 * hits / (2 * hits + false_alarms + (support - hits)))
        if support:  # a class that is never true has no recall to average
            recalls.append(hits / support)
    assert got["val_f1"] == pytest.approx(np.mean(f1s))
    assert got["val_balanced_accuracy"] == pytest.approx(np.mean(recalls))


def test_majority_predictor_scores_high_accuracy_and_low_macro_scores() -> None:
    """The failure the issue is about, in numbers: nearly half one class (95 of 200), 21 classes."""
    y_true = np.array([0] * 95 + [c for c in range(1, 21) for _ in range(5)] + [1] * 5)
    got = scores(y_true, np.zeros_like(y_true))
    assert got["accuracy"] == pytest.approx(95 / 200)
    assert got["balanced_accuracy"] == pytest.approx(1 / 21)
    assert got["f1"] < 0.04
