"""A fingerprint of a task's data: the same (text, label) pairs give the same hash on any machine.

Why: a reproduction, or a model card, has to say *which* data a model was trained on without
naming a path that exists only on the machine that ran the sweep.
"""

from __future__ import annotations

import hashlib
from typing import Any

from automl.data.task import LabeledTexts, TaskData


def _splits(task: TaskData) -> dict[str, LabeledTexts]:
    splits = {"train": task.train, "val": task.val}
    test = getattr(task, "test", None)  # a held-out split, where the task has one
    if isinstance(test, LabeledTexts) and test.texts:
        splits["test"] = test
    return splits


def data_fingerprint(task: TaskData) -> dict[str, Any]:
    """sha256 over each split's sorted (text, label name) pairs, plus the counts per split;
    and `rows_sha256` over all the pairs whatever their split (the same file split with
    another `data.seed` or `val_fraction` keeps it: registry promotion compares those).

    Sorted, so the order rows were read in does not matter; label *names*, so a relabelling
    (same names, other ids) does not either. The split a row lands in does matter."""
    digest = hashlib.sha256()
    counts: dict[str, int] = {}
    every: list[tuple[str, str]] = []
    for name, split in _splits(task).items():
        pairs = sorted(
            (text, task.label_names[label])
            for text, label in zip(split.texts, split.labels, strict=True)
        )
        counts[name] = len(pairs)
        every += pairs
        digest.update(f"[{name}:{len(pairs)}]".encode())
        _add(digest, pairs)
    rows = hashlib.sha256()
    _add(rows, sorted(every))
    return {
        "sha256": digest.hexdigest(), "counts": counts, "num_labels": len(task.label_names),
        "rows_sha256": rows.hexdigest(),
    }  # fmt: skip


def _add(digest: Any, pairs: list[tuple[str, str]]) -> None:
    for text, label in pairs:
        digest.update(text.encode("utf-8") + b"\x1f" + label.encode("utf-8") + b"\x1e")


def fingerprint_mismatch(recorded: dict[str, Any], actual: dict[str, Any]) -> str | None:
    """None when they match, else a short phrase saying how they differ (for a one-line error)."""
    if recorded.get("sha256") == actual.get("sha256"):
        return None
    rc, ac = recorded.get("counts", {}), actual.get("counts", {})
    # a record without rows_sha256 predates 2026-12-07, when the embedded English corpus's
    # loader stopped reading one trivia question as 72 one-letter texts (71 rows fewer)
    fewer = _total(rc) - _total(ac)
    older = (
        "; the embedded chatterbot corpus reads 71 rows fewer since 2026-12-07 (72 one-letter "
        "texts were one trivia question)"
        if "rows_sha256" not in recorded and actual.get("rows_sha256") and fewer == 71
        else ""
    )
    if rc != ac:
        return f"counts differ (recorded {rc}, now {ac}){older}"
    return f"content differs (sha256 {str(recorded.get('sha256'))[:12]} != {actual['sha256'][:12]})"


def _total(counts: Any) -> int:
    return sum(n for n in counts.values() if isinstance(n, int)) if isinstance(counts, dict) else 0
