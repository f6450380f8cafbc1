"""Cost-aware choice: accuracy against trainable parameters, decided after the sweep.

Pure functions over the finished trials (no Ray, no models), so they are tested on synthetic
rows. The trade-off is drawn and applied afterwards, whatever the sampler optimised (one
metric by default; the metric and trainable parameters with `sweep.second_objective`,
search/objectives.py).

- `pareto_front`: the trials no other trial beats on both the metric and the parameter count.
- `choose_export`: `best` (the best metric) or `smallest_within` (the fewest trainable
  parameters among the trials whose metric is within `tolerance` of the best).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from automl.search.summary import best_epoch_scores

log = logging.getLogger("automl.sweep")

T = TypeVar("T")

RULES = ("best", "smallest_within")


def _get(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, dict) else getattr(item, key)


def _scored(items: Iterable[T]) -> list[T]:
    return [i for i in items if _get(i, "best_value") is not None and _get(i, "status") != "failed"]


def _better_or_equal(a: float, b: float, mode: str) -> bool:
    return a >= b if mode == "max" else a <= b


def dominates(a: tuple[float, int], b: tuple[float, int], mode: str) -> bool:
    """(value, cost) `a` is at least as good as `b` on both, and strictly better on one."""
    (va, ca), (vb, cb) = a, b
    return _better_or_equal(va, vb, mode) and ca <= cb and (va != vb or ca != cb)


def pareto_front(points: Sequence[tuple[float, int]], mode: str = "max") -> list[bool]:
    """For each (metric value, trainable params): is it on the front (not dominated)?"""
    return [not any(dominates(q, p, mode) for q in points) for p in points]


def mark_pareto(rows: list[dict[str, Any]], mode: str) -> None:
    """Set `pareto: true/false` on every summary row (unscored and failed rows: false)."""
    scored = _scored(rows)
    front = pareto_front([(r["best_value"], r["trainable_params"]) for r in scored], mode)
    on_front = {r["trial_id"] for r, f in zip(scored, front, strict=True) if f}
    for row in rows:
        row["pareto"] = row["trial_id"] in on_front


def rank_key(item: Any, mode: str) -> tuple[float, float]:
    """Higher is better: the trial's metric, then the lower validation loss at its best epoch
    (equal metric values are common: accuracy on a few hundred texts moves in steps)."""
    sign = 1.0 if mode == "max" else -1.0
    return sign * _get(item, "best_value"), -_best_epoch_loss(item)


def _best_epoch_loss(item: Any) -> float:
    """The validation loss of a trial's best epoch (infinite where it has none)."""
    loss = best_epoch_scores(item).get("val_loss")
    return float(loss) if isinstance(loss, int | float) and loss == loss else math.inf


def choose_export(
    items: Sequence[T],
    mode: str,
    rule: str = "best",
    tolerance: float = 0.0,
    reference: float | None = None,
) -> T:
    """The trial to export; `items` are scored trials (records or summary rows), in run order.
    `reference`: the best value the tolerance counts from (default: the best of `items`);
    where no item is within it, the best item.

    Ties go to the better metric, then to the lower validation loss at the trial's best
    epoch (202 validation texts give accuracies in steps of 0.5 %: equal ones are common, and
    the more confident model is the likelier to hold up), then to the earlier trial."""
    items = _scored(items)
    if not items:
        raise ValueError("no scored trial to choose from")
    sign = 1.0 if mode == "max" else -1.0
    best = max(items, key=lambda i: rank_key(i, mode))
    if rule == "best":
        return best
    if rule != "smallest_within":
        raise ValueError(f"sweep.export_rule: {rule!r} is not one of {', '.join(RULES)}")
    top = _get(best, "best_value") if reference is None else reference
    near = [i for i in items if sign * (top - _get(i, "best_value")) <= tolerance + 1e-12]
    if not near:
        return best
    return min(near, key=lambda i: (_get(i, "trainable_params"), *(-k for k in rank_key(i, mode))))


def export_choice(
    items: Sequence[T],
    mode: str,
    rule: str,
    tolerance: float,
    exportable: Callable[[Any], bool] | None = None,
) -> tuple[T | None, dict[str, Any]]:
    """The trial to export (None if no trial scored) and the rule's record for summary.json.

    `exportable`: whether a trial can still be exported (its checkpoint is there). A sweep
    extended, or resumed with another rule or tolerance, can make `smallest_within` pick a
    trial whose checkpoint went after an earlier export: then the rule picks among the trials
    that kept theirs, with a warning."""
    info: dict[str, Any] = {"rule": rule, "tolerance": tolerance}
    if not _scored(items):
        return None, info
    top, chosen = choose_export(items, mode), choose_export(items, mode, rule, tolerance)
    if exportable is not None and not exportable(chosen):
        kept = [i for i in items if exportable(i)]
        if _scored(kept):  # the band still counts from the sweep's best (`top`)
            gone = chosen
            chosen = choose_export(kept, mode, rule, tolerance, _get(top, "best_value"))
            info["without_checkpoint"] = _get(gone, "trial_id")
            gap = abs(_get(top, "best_value") - _get(chosen, "best_value"))
            outside = gap > (tolerance if rule == "smallest_within" else 0.0) + 1e-12
            if outside:  # below what the rule promises: the summary says so too
                info["outside_rule"] = True
            log.warning(
                "export rule %s chose trial %s, whose checkpoint was deleted after an earlier "
                "export (sweep.keep_checkpoints=true keeps them): exporting trial %s (%.4f), %s",
                rule, _get(gone, "trial_id"), _get(chosen, "trial_id"), _get(chosen, "best_value"),
                f"the best that kept its checkpoint, below the sweep's best "
                f"{_get(top, 'best_value'):.4f} by more than the rule allows" if outside
                else "the rule's choice among the trials that kept theirs",
            )  # fmt: skip
    info.update(top_trial=_get(top, "trial_id"), top_value=_get(top, "best_value"))
    if chosen is not top:
        log.info(
            "export rule %s: trial %s (%s params, %.4f) instead of the top trial %s (%s, %.4f)",
            rule, _get(chosen, "trial_id"), _get(chosen, "trainable_params"),
            _get(chosen, "best_value"), _get(top, "trial_id"), _get(top, "trainable_params"),
            _get(top, "best_value"),
        )  # fmt: skip
    return chosen, info
