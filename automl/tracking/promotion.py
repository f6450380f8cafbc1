"""When a newly registered version takes the alias (`@champion`) from the version holding it.

Several sweeps may register into one model (`tracking.registered_model` set, a Hydra multirun,
a re-run on new data). Moving the alias every time would make the *last* sweep the champion,
not the best one. Scores compare only when both versions were selected by the same metric on
the same data (the fingerprint's sha256 covers every split): then the new version takes the
alias only if its validation score is at least the champion's, the rule a sweep uses between
its own trials (never the test split, which no selection step reads). A version selected by
another metric is judged by the champion's: its export's epoch's score on that metric.
The same rows split another way (another `data.seed` or `val_fraction`: `rows_sha256`) compare
too, on validation sets of the same data: a re-run with another seed takes the alias only if it
scored better, not for being newer.
Trained on other data, the scores say nothing about each other, so the newer version, trained on
the newer data, wins;
unless it trained on fewer examples than the champion: a quick check on a subsample
(`data.max_examples=300`) under the same name, or a resumed sweep on the older data, took the
alias from the model in service. A version that predicts other classes (another task under
the same name) never takes it on its own, nor does any version take it from one that no sweep
registered (by hand, or by another tool: someone pointed the alias there).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

METRIC = "automl.metric"
MODE = "automl.mode"
VALUE = "automl.best_value"
DATA = "automl.data_sha256"
ROWS = "automl.data_rows_sha256"  # the same rows whatever the split (another data.seed)
TRAIN_EXAMPLES = "automl.train_examples"
LABELS = "automl.labels"  # the classes a version predicts, sorted: what its callers read
SWEEP = "automl.sweep"  # the sweep that registered a version (every version a sweep registers)
VALIDATION = "automl.val."  # + a score's name: each validation score of the export's epoch


def score_tags(
    provenance: Mapping[str, Any], mode: str, labels: Sequence[str] = ()
) -> dict[str, str]:
    """The tags a version is compared by: the classes it predicts (`labels`, where known) and
    its score, from its export's provenance (none where it has none)."""
    tags: dict[str, str] = {}
    if labels:  # a digest: a tag holds 5,000 characters, a label set may not fit
        names = json.dumps(sorted(labels), ensure_ascii=False).encode("utf-8")
        tags[LABELS] = f"{len(labels)} classes, sha256 {hashlib.sha256(names).hexdigest()}"
    value = provenance.get("best_value")
    fingerprint = provenance.get("data_fingerprint") or {}
    sha = fingerprint.get("sha256")
    if value is None or not sha or not math.isfinite(float(value)):
        return tags
    tags |= {METRIC: str(provenance["metric"]), MODE: mode, VALUE: repr(float(value)), DATA: sha}
    for name, score in (provenance.get("best_scores") or {}).items():  # a sweep selecting by
        if _number(str(score)) is not None:  # another metric compares by the holder's
            tags[VALIDATION + name] = repr(float(score))
    if fingerprint.get("rows_sha256"):  # exports from before 2026-12-07 lack it
        tags[ROWS] = str(fingerprint["rows_sha256"])
    train = (fingerprint.get("counts") or {}).get("train")
    if isinstance(train, int):
        tags[TRAIN_EXAMPLES] = str(train)
    return tags


def takes_alias(
    new: Mapping[str, str], holder: Mapping[str, str] | None, newer: bool = True
) -> tuple[bool, str]:
    """Whether the new version takes the alias from `holder` (the tags of the version holding
    it, None if no version does), and why, as a phrase for the log. Where the scores do not
    compare, or tie, the `newer` version holds it: a version registered again (a resumed
    export) does not take the alias back from one registered after it."""
    if holder is None:
        return True, "no version held it"
    if not holder.get(SWEEP):  # checked first: a score missing on either side took it
        return False, (
            "no sweep registered the version holding it (by hand, or another tool): move the "
            "alias by hand if meant"
        )
    if new.get(LABELS) and holder.get(LABELS) and new[LABELS] != holder[LABELS]:
        return False, (
            "it predicts other classes than the version holding it (another task?): the "
            "alias's callers would get other answers; move the alias by hand if meant"
        )
    ours, theirs = _number(new.get(VALUE)), _number(holder.get(VALUE))
    if ours is None or not all(new.get(k) for k in (METRIC, MODE, DATA)):
        return newer, "the new version has no score to compare"
    if theirs is None or not all(holder.get(k) for k in (METRIC, MODE, DATA)):
        return newer, "the version holding it has no score to compare"
    same = "on the same data"
    if holder[DATA] != new[DATA] and new.get(ROWS) and new.get(ROWS) == holder.get(ROWS):
        same = "on another split of the same rows"  # validation sets alike: the scores compare
    elif holder[DATA] != new[DATA]:
        ours_n, theirs_n = _count(new.get(TRAIN_EXAMPLES)), _count(holder.get(TRAIN_EXAMPLES))
        if ours_n is not None and theirs_n is not None and ours_n < theirs_n:
            return False, (
                f"it was trained on other data with fewer examples ({ours_n} against "
                f"{theirs_n}): a subsample, or older data? Move the alias by hand if meant"
            )
        return newer, "the version holding it was trained on other data"
    metric, mode = holder[METRIC], holder[MODE]
    if (metric, mode) != (new[METRIC], new[MODE]):  # judged by the metric that chose the holder
        ours = _number(new.get(VALIDATION + metric))
        if ours is None:
            return False, (
                f"the version holding it was selected by {mode} {metric}, which the new "
                "version has no score of: move the alias by hand if meant"
            )
    if ours == theirs:
        return newer, f"{metric} {ours:.4f} ties its {theirs:.4f} {same}"
    better = ours > theirs if mode == "max" else ours < theirs
    relation = ("above" if mode == "max" else "below") if better else "worse than"
    return better, f"{metric} {ours:.4f} is {relation} its {theirs:.4f} {same}"


def _count(text: str | None) -> int | None:
    """A tag's example count, None where it is missing (registered before it was tagged)."""
    return int(text) if text and text.isdigit() else None


def _number(text: str | None) -> float | None:
    """A tag's score, None where it is missing or not a finite number (edited by hand)."""
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
