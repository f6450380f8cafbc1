"""Seeded, stratified splits and caps: class proportions kept, every class represented."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from automl.data.task import DataError, LabeledTexts

_SAMPLE_TOLERANCE = 0.05  # of `n`: rounding class by class is kept within it


def stratified_sample(labels: Sequence[int], n: int, rng: np.random.Generator) -> list[int]:
    """Indices of about `n` examples with the class proportions kept, at least one of every
    class: each class its share rounded, as sweeps recorded their data (a resumed sweep, an
    export or a reproduction checks it is the same). Where that lands more than 5 % from `n`
    (200 classes of 5 capped at 500 gave 400: each 2.5 rounds to 2, too few for a test
    split), the shares are rounded down and the rows left go to the largest remainders."""
    members = list(_indices_by_class(labels, rng).values())
    shares = [len(m) * n / len(labels) for m in members]
    counts = [max(1, round(share)) for share in shares]
    if abs(sum(counts) - n) > _SAMPLE_TOLERANCE * n:  # (no draw: the splits cut next from
        counts = _largest_remainders(members, shares, n)  # `rng` stay as they were)
    return sorted(i for m, k in zip(members, counts, strict=True) for i in m[:k])


def _largest_remainders(members: list[list[int]], shares: list[float], n: int) -> list[int]:
    """Each class its share rounded down (at least one), then one more each to the classes
    with the largest remainders (ties in class order) until `n`."""
    counts = [min(len(m), max(1, math.floor(s))) for m, s in zip(members, shares, strict=True)]
    order = sorted(range(len(members)), key=lambda c: math.floor(shares[c]) - shares[c])
    left = n - sum(counts)
    for c in order:
        if left <= 0:
            break
        if counts[c] < len(members[c]) and counts[c] < shares[c]:
            counts[c] += 1
            left -= 1
    return counts


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
    target = round(len(labels) * val_fraction)
    if sum(counts) * 2 < target:  # most classes too small to give one (150 intents of 5)
        counts = _topped_up(by_class, counts, target, val_fraction, keep, rng)
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


def _topped_up(
    by_class: list[list[int]],
    counts: list[int],
    target: int,
    fraction: float,
    keep: int,
    rng: np.random.Generator,
) -> list[int]:
    """Class by class rounding lost most of the share: `target` in all (the fraction of the
    whole), one more at a time to the class furthest below its own share (ties in a seeded
    order), each class keeping `keep` on the first side."""
    counts = list(counts)
    room = [len(m) - keep - n for m, n in zip(by_class, counts, strict=True)]
    order = sorted(  # sorted keeps the seeded order among equals
        rng.permutation(len(by_class)), key=lambda c: counts[c] - len(by_class[c]) * fraction
    )
    total = sum(counts)
    while total < target and any(r > 0 for r in room):
        for c in order:  # a round: one more to each class with room, furthest below first
            if total >= target:
                break
            if room[c] > 0:
                counts[c] += 1
                room[c] -= 1
                total += 1
    return counts


def _indices_by_class(labels: Sequence[int], rng: np.random.Generator) -> dict[int, list[int]]:
    by_class: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        by_class.setdefault(label, []).append(i)
    return {c: [int(i) for i in rng.permutation(m)] for c, m in sorted(by_class.items())}
