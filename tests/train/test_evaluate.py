"""The scores every epoch reports: accuracy, macro-F1, balanced accuracy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

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
def test_scores_match_sklearn_on_random_imbalanced_predictions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.choice(6, size=40, p=[0.6, 0.2, 0.1, 0.05, 0.03, 0.02])
    y_pred = np.where(rng.random(40) < 0.6, y_true, rng.integers(0, 6, 40))
    y_pred[0] = 6  # a class predicted but never true
    got = scores(y_true, y_pred, "val_")
    assert set(got) == {"val_accuracy", "val_f1", "val_balanced_accuracy"}
    assert got["val_accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert got["val_f1"] == pytest.approx(
        f1_score(y_true, y_pred, average="macro", zero_division=0)
    )
    with pytest.warns(UserWarning):  # sklearn's own note about class 6; ours stays quiet
        expected = balanced_accuracy_score(y_true, y_pred)
    assert got["val_balanced_accuracy"] == pytest.approx(expected)


def test_majority_predictor_scores_high_accuracy_and_low_macro_scores() -> None:
    """The failure the issue is about, in numbers: 47.5 % of one class, 21 classes."""
    y_true = np.array([0] * 95 + [c for c in range(1, 21) for _ in range(5)] + [1] * 5)
    got = scores(y_true, np.zeros_like(y_true))
    assert got["accuracy"] == pytest.approx(95 / 200)
    assert got["balanced_accuracy"] == pytest.approx(1 / 21)
    assert got["f1"] < 0.04
