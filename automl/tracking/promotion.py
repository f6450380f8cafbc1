"""When a newly registered version takes the alias (`@champion`) from the version holding it.

Several sweeps may register into one model (`tracking.registered_model` set, a Hydra multirun,
a re-run on new data). Moving the alias every time would make the *last* sweep the champion,
not the best one. Scores compare only when both versions were selected by the same metric on
the same data (the fingerprint's sha256 covers every split): then the new version takes the
alias only if its validation score is at least the champion's, the rule a sweep uses between
its own trials (never the test split, which no selection step reads). Trained on other data,
the scores say nothing about each other, so the newer version, trained on the newer data, wins.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

METRIC = "automl.metric"
MODE = "automl.mode"
VALUE = "automl.best_value"
DATA = "automl.data_sha256"


def score_tags(provenance: Mapping[str, Any], mode: str) -> dict[str, str]:
    """The tags a version is compared by, from its export's provenance ({} without a score)."""
    value = provenance.get("best_value")
    sha = (provenance.get("data_fingerprint") or {}).get("sha256")
    if value is None or not sha or not math.isfinite(float(value)):
        return {}
    return {METRIC: str(provenance["metric"]), MODE: mode, VALUE: repr(float(value)), DATA: sha}


def takes_alias(
    new: Mapping[str, str], holder: Mapping[str, str] | None, newer: bool = True
) -> tuple[bool, str]:
    """Whether the new version takes the alias from `holder` (the tags of the version holding
    it, None if no version does), and why, as a phrase for the log. Where the scores do not
    compare, or tie, the `newer` version holds it: a version registered again (a resumed
    export) does not take the alias back from one registered after it."""
    if holder is None:
        return True, "no version held it"
    ours, theirs = _number(new.get(VALUE)), _number(holder.get(VALUE))
    if ours is None or not all(new.get(k) for k in (METRIC, MODE, DATA)):
        return newer, "the new version has no score to compare"
    if theirs is None or not all(holder.get(k) for k in (METRIC, MODE, DATA)):
        return newer, "the version holding it has no score to compare"
    if holder[DATA] != new[DATA]:
        return newer, "the version holding it was trained on other data"
    if (holder[METRIC], holder[MODE]) != (new[METRIC], new[MODE]):
        return newer, f"the version holding it was selected by {holder[MODE]} {holder[METRIC]}"
    if ours == theirs:
        return newer, f"{new[METRIC]} {ours:.4f} ties its {theirs:.4f} on the same data"
    better = ours > theirs if new[MODE] == "max" else ours < theirs
    relation = ("above" if new[MODE] == "max" else "below") if better else "worse than"
    return better, f"{new[METRIC]} {ours:.4f} is {relation} its {theirs:.4f} on the same data"


def _number(text: str | None) -> float | None:
    """A tag's score, None where it is missing or not a finite number (edited by hand)."""
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None
