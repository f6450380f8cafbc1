"""Data-quality report before any compute: duplicates, leakage across splits, empty texts,
truncation, small classes, imbalance.

Why: a validation (or test) text that is also in the training set scores the model on what it
memorised; a class of three examples cannot be learned nor measured; a long tail cut at
`model.max_length` loses what it says. None of this needs a model, so it is checked (and, with
`data.quality=fail`, refused) before a trial starts.

Near duplicates are exact duplicates after normalisation (lowercase, punctuation and extra
whitespace dropped): "Hello, World!" and "hello world" share a key. Hashing the keys keeps the
check linear in the data size.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from unicodedata import category, normalize

import numpy as np

from automl.config.paths import write_text_atomic
from automl.console import counted, listed
from automl.data.task import DataError, LabeledTexts, TaskData, label_number

_TOKEN = re.compile(r"\w+|[^\w\s]")  # words, and single other characters (kept: symbols)
# Unicode's symbol categories a key keeps: math (`<`, `+`), currency and other (emoji); their
# meaning differs (`<=50K`, `>50K`), unlike punctuation's or a modifier's (`` ` ``, `^`)
_KEPT = ("Sm", "Sc", "So")
REPORT_FILE = "data_quality.json"
Key = Callable[[str], str]  # a text's near-duplicate key


def normalise(text: str) -> str:
    """The near-duplicate key: case-folded words and symbols (emoji, `+`, `<`, `$`, `€`) joined
    by one space; punctuation (and backticks, carets) dropped. Empty for a text of those alone
    (`:)`)."""
    return " ".join(
        token  # NFKC: a tokenizer reads `café` composed or not, and full-width letters, alike
        for token in _TOKEN.findall(normalize("NFKC", normalize("NFKC", text).casefold()))
        if len(token) > 1 or token.isalnum() or token == "_" or category(token) in _KEPT
    )


def near_key(text: str) -> str:
    """What near-duplicates share: the normalised text, or, where that is empty (`:)` and
    `:(`), the text itself, so such texts match only their exact copies."""
    return normalise(text) or text


def splits_of(task: TaskData) -> dict[str, LabeledTexts]:
    """The task's splits by name, the test split only where there is one."""
    splits = {"train": task.train, "val": task.val}
    if task.test is not None:
        splits["test"] = task.test
    return splits


def duplicates_within(texts: Sequence[str], key: Key = near_key) -> dict[str, int]:
    """Extra copies inside one split: rows minus distinct texts (exact) or keys (near)."""
    return {
        "exact": len(texts) - len(set(texts)),
        "near": len(texts) - len({key(t) for t in texts}),
    }


def overlap(reference: Sequence[str], other: Sequence[str], key: Key = near_key) -> dict[str, int]:
    """Rows of `other` whose text (exact) or key (near, exact included) is in `reference`."""
    exact, keys = set(reference), {key(t) for t in reference}
    return {
        "exact": sum(t in exact for t in other),
        "near": sum(key(t) in keys for t in other),
    }


def conflicting_labels(splits: Mapping[str, LabeledTexts], key: Key = near_key) -> int:
    """Near-duplicate keys that carry more than one label anywhere in the data."""
    labels: dict[str, set[int]] = {}
    for split in splits.values():
        for text, label in zip(split.texts, split.labels, strict=True):
            labels.setdefault(key(text), set()).add(label)
    return sum(len(v) > 1 for v in labels.values())


def similar_label_names(names: Sequence[str]) -> list[list[str]]:
    """Label names that differ only in case, spacing or punctuation (`Sport`, `sport `): most
    likely one class typed two ways, which the model must then tell apart."""
    groups: dict[Decimal | str, list[str]] = {}
    for name in names:
        groups.setdefault(_label_key(name), []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def _label_key(name: str) -> Decimal | str:
    """Numbers by value, exactly (`label_number`: `1` and `1.0` alike, `-1` and `1` not, ids
    past float's or Decimal's arithmetic precision apart), other names normalised."""
    value = label_number(name)
    return (normalise(name) or name) if value is None else value


def truncation(lengths: Mapping[str, np.ndarray], max_length: int) -> dict[str, Any]:
    """Texts longer than `max_length` tokens (untruncated lengths): they lose their tail."""
    every = np.concatenate([np.asarray(v) for v in lengths.values()]) if lengths else np.zeros(0)
    over = int((every > max_length).sum())
    return {
        "max_length": max_length,
        "count": over,
        "share": round(over / len(every), 4) if len(every) else 0.0,
        "longest": int(every.max()) if len(every) else 0,
        "per_split": {k: int((np.asarray(v) > max_length).sum()) for k, v in lengths.items()},
    }


def class_balance(
    splits: Mapping[str, LabeledTexts], names: Sequence[str], min_examples: int
) -> dict[str, Any]:
    """Class sizes: the majority's share of train, the smallest classes, classes too small to
    learn or to measure (absent from a split that scores the model)."""
    total = Counter(label for s in splits.values() for label in s.labels)
    train = Counter(splits["train"].labels)
    majority, majority_n = train.most_common(1)[0] if train else (0, 0)
    n_train = sum(train.values())
    smallest = sorted(range(len(names)), key=lambda c: (total[c], names[c]))[:3]
    return {
        "counts": {names[c]: total[c] for c in range(len(names))},
        "majority": names[majority],
        "majority_share": round(majority_n / n_train, 4) if n_train else 0.0,
        "smallest": [[names[c], total[c]] for c in smallest],
        "imbalance_ratio": round(max(total.values()) / max(1, min(total[c] for c in smallest)), 1),
        "min_examples": min_examples,
        "below_min": [names[c] for c in range(len(names)) if total[c] < min_examples],
        "missing_from": {
            name: [names[c] for c in range(len(names)) if total[c] and c not in present]
            for name, s in splits.items()
            if name != "train"
            for present in [set(s.labels)]
        },
    }


def assess(
    task: TaskData, lengths: Mapping[str, np.ndarray], max_length: int, min_class_examples: int
) -> dict[str, Any]:
    """The whole report. `lengths`: untruncated token lengths per split name."""
    splits = splits_of(task)
    # each text's near-duplicate key, worked out once (five checks read it)
    normalised = {t: normalise(t) for s in splits.values() for t in s.texts}

    def key(text: str) -> str:  # near_key, from the keys above
        return normalised[text] or text

    report: dict[str, Any] = {
        "data": task.description,
        "sizes": {name: len(s.texts) for name, s in splits.items()},
        "num_classes": len(task.label_names),
        "empty_texts": {name: sum(not t.strip() for t in s.texts) for name, s in splits.items()},
        "no_word_texts": {
            name: sum(bool(t.strip()) and not normalised[t] for t in s.texts)
            for name, s in splits.items()
        },
        "duplicates": {name: duplicates_within(s.texts, key) for name, s in splits.items()},
        "leakage": {
            f"train->{name}": overlap(splits["train"].texts, s.texts, key)
            for name, s in splits.items()
            if name != "train"
        },
        "conflicting_labels": conflicting_labels(splits, key),
        "similar_label_names": similar_label_names(task.label_names),
        "truncation": truncation(lengths, max_length),
        "classes": class_balance(splits, task.label_names, min_class_examples),
    }
    if "test" in splits:
        report["leakage"]["val->test"] = overlap(splits["val"].texts, splits["test"].texts, key)
    report["problems"] = problems(report)
    report["warnings"] = warnings(report)
    return report


def problems(report: Mapping[str, Any]) -> list[str]:
    """What `data.quality=fail` refuses: leakage, empty texts, classes below the minimum."""
    out = []
    for pair, counts in report["leakage"].items():
        if counts["near"]:
            a, b = pair.split("->")
            out.append(
                f"{counted(counts['near'], b + ' text')} also in {a} ({counts['exact']} exact)"
            )
    empty = sum(report["empty_texts"].values())
    if empty:
        out.append(counted(empty, "empty text"))
    classes = report["classes"]
    if classes["below_min"]:
        out.append(
            f"{counted(len(classes['below_min']), 'class')} below "
            f"{classes['min_examples']} examples: {listed(classes['below_min'])}"
        )
    return out


def warnings(report: Mapping[str, Any]) -> list[str]:
    """Worth knowing, not refused: duplicates in train, conflicting or look-alike labels,
    truncation, missing classes."""
    out = []
    dup = report["duplicates"]["train"]
    if dup["near"]:
        out.append(f"{counted(dup['near'], 'duplicate text')} in train ({dup['exact']} exact)")
    if report["conflicting_labels"]:
        n = report["conflicting_labels"]
        out.append(f"{counted(n, 'text')} {'carries' if n == 1 else 'carry'} more than one label")
    for group in report.get("similar_label_names", []):  # absent from older reports
        out.append(
            "labels that differ only in case, spacing or punctuation: "
            + " / ".join(repr(name) for name in group)
        )
    trunc = report["truncation"]
    if trunc["count"]:
        out.append(
            f"{counted(trunc['count'], 'text')} ({trunc['share']:.1%}) longer than "
            f"{trunc['max_length']} tokens {'is' if trunc['count'] == 1 else 'are'} truncated "
            f"(longest {trunc['longest']})"
        )
    for split, missing in report["classes"]["missing_from"].items():
        if missing:
            have = "has" if len(missing) == 1 else "have"
            out.append(
                f"{counted(len(missing), 'class')} {have} no {split} example: {listed(missing)}"
            )
    return out


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A few printable lines: sizes and balance, then each problem and warning."""
    sizes = " / ".join(f"{n} {name}" for name, n in report["sizes"].items())
    c = report["classes"]
    smallest = ", ".join(f"{name} {n}" for name, n in c["smallest"])
    lines = [
        f"data quality: {sizes}, {report['num_classes']} classes; majority {c['majority']} "
        f"{c['majority_share']:.1%} of train; smallest (all splits): {smallest}"
    ]
    lines += [f"data quality: problem: {p}" for p in report["problems"]]
    lines += [f"data quality: warning: {w}" for w in report["warnings"]]
    return lines


def metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """A handful of numbers for MLflow."""
    leak = report["leakage"]
    return {
        "dq_train_duplicates": report["duplicates"]["train"]["near"],
        "dq_leakage_val": leak.get("train->val", {}).get("near", 0),
        "dq_leakage_test": leak.get("train->test", {}).get("near", 0),
        "dq_truncated_share": report["truncation"]["share"],
        "dq_majority_share": report["classes"]["majority_share"],
        "dq_problems": len(report["problems"]),
    }


def write(report: Mapping[str, Any], out_dir: Path) -> Path | None:
    """`<out_dir>/data_quality.json`; nothing when the report is off (empty)."""
    if not report:
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_FILE
    write_text_atomic(path, json.dumps(report, indent=2))
    return path


def enforce_before_tokens(task: TaskData, mode: str, min_class_examples: int) -> None:
    """`fail`: its problems (leakage, empty texts, small classes) need no tokens, so they stop
    the run as soon as the rows are read, not after the tokenizer loaded and every split was
    tokenized; truncation, a warning only, waits for the tokens."""
    if mode == "fail":
        enforce(assess(task, {}, 0, min_class_examples), mode)


def enforce(report: Mapping[str, Any], mode: str) -> None:
    """`fail`: any problem stops the run with one line, before any compute."""
    if mode == "fail" and report["problems"]:
        raise DataError(
            f"{report['data']}: data quality (data.quality=fail): " + "; ".join(report["problems"])
        )
