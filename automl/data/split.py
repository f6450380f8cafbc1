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
    by_class = list(_indices_by_class(labels, rng).values())
    counts = [max(0, min(round(len(m) * val_fraction), len(m) - keep)) for m in by_class]
    if not any(counts):  # every class too small to give one (150 classes of 5 at 0.1)
        counts = _from_the_whole(by_class, round(len(labels) * val_fraction), keep, rng)
    val_idx = [i for members, n in zip(by_class, counts, strict=True) for i in members[:n]]
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


def _from_the_whole(
    by_class: list[list[int]], target: int, keep: int, rng: np.random.Generator
) -> list[int]:
    """How many of each class go to the second side when rounding class by class gives none:
    `target` in all (the fraction of the whole), one a class in turn, the classes with most
    examples first (ties in a seeded order), each keeping `keep` on the first side."""
    order = sorted(rng.permutation(len(by_class)), key=lambda c: -len(by_class[c]))
    counts = [0] * len(by_class)
    while target > 0 and any(len(by_class[c]) - keep > counts[c] for c in order):
        for c in order:
            if target > 0 and len(by_class[c]) - keep > counts[c]:
                counts[c] += 1
                target -= 1
    return counts


def _indices_by_class(labels: Sequence[int], rng: np.random.Generator) -> dict[int, list[int]]:
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    return {c: [int(i) for i in rng.permutation(m)] for c, m in sorted(by_class.items())}
