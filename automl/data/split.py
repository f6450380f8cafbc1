"""Seeded, stratified splits and caps: class proportions kept, every class represented."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from automl.data.task import DataError, LabeledTexts


def stratified_sample(labels: Sequence[int], n: int, rng: np.random.Generator) -> list[int]:
    """Indices of about `n` examples with the class proportions kept (at least one per class)."""
    by_class = _indices_by_class(labels, rng)
    total = len(labels)
    keep: list[int] = []
    for members in by_class.values():
        keep.extend(members[: max(1, round(len(members) * n / total))])
    return sorted(keep)


def stratified_split(
    texts: list[str],
    labels: list[int],
    val_fraction: float,
    rng: np.random.Generator,
    where: str,
    *,
    key: str = "val_fraction",
    keep: int = 1,
    allow_empty: bool = False,
) -> tuple[LabeledTexts, LabeledTexts]:
    """Seeded split keeping class proportions; each class keeps at least `keep` examples on
    the first side (so a class with one example stays in train). `allow_empty`: a set too
    small to give any example to the second side returns it empty instead of failing."""
    val_idx: list[int] = []
    for members in _indices_by_class(labels, rng).values():
        n_val = max(0, min(round(len(members) * val_fraction), len(members) - keep))
        val_idx.extend(members[:n_val])
    if (not val_idx and not allow_empty) or len(val_idx) == len(labels):
        raise DataError(
            f"{where}: too few examples ({len(labels)}) to split off {key}={val_fraction}"
        )
    in_val = set(val_idx)
    train_idx = [i for i in range(len(labels)) if i not in in_val]
    val_idx.sort()

    def pick(idx: list[int]) -> LabeledTexts:
        return LabeledTexts([texts[i] for i in idx], [labels[i] for i in idx])

    return pick(train_idx), pick(val_idx)


def _indices_by_class(labels: Sequence[int], rng: np.random.Generator) -> dict[int, list[int]]:
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    return {c: [int(i) for i in rng.permutation(m)] for c, m in sorted(by_class.items())}
