"""One searched parameter: its spec in Optuna's vocabulary, its conditional branches, and the
Optuna distribution it becomes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

BLOCKS = "blocks"  # stands for the model's transformer block count in low/high/choices
MODEL_KEY = "model"  # the key whose choices are models (automl/model/choices.py)
FIRST_TRIALS_KEY = "first_trials"  # not a parameter: configurations to run first


TYPES = ("float", "int", "categorical")


_NUMERIC_FIELDS = frozenset({"type", "low", "high", "log", "step", "when"})


_FIELDS = {
    "float": _NUMERIC_FIELDS,
    "int": _NUMERIC_FIELDS,
    "categorical": frozenset({"type", "choices", "when"}),
}


_ALL_FIELDS = ("type", "low", "high", "log", "step", "choices", "when")


_BRANCH_FIELDS = ("if", "low", "high", "step", "choices")


Number = int | float


class SearchSpaceError(ValueError):
    """A search-space file is unusable. The message is one line: ``<file>: <key>: <problem>``."""


@dataclass(frozen=True)
class Branch:
    """Bounds that replace the base ones when an earlier parameter took ``cond_value``.

    Why: full fine-tuning wants a learning rate ~30x smaller than LoRA, so one range for both
    would spend most trials where one of them diverges or barely moves.
    ``None`` means "keep the base value".
    """

    cond_key: str
    cond_value: Any
    low: Number | None = None
    high: Number | None = None
    step: Number | None = None
    choices: tuple[Any, ...] | None = None

    def matches(self, sampled: Mapping[str, Any]) -> bool:
        return self.cond_key in sampled and same_value(sampled[self.cond_key], self.cond_value)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"if": {self.cond_key: self.cond_value}}
        for field in ("low", "high", "step"):
            if getattr(self, field) is not None:
                out[field] = getattr(self, field)
        if self.choices is not None:
            out["choices"] = list(self.choices)
        return out


@dataclass(frozen=True)
class Param:
    """One searched config value: an Optuna distribution plus its conditional branches."""

    key: str
    type: str  # 'float' | 'int' | 'categorical'
    low: Number | None = None
    high: Number | None = None
    log: bool = False
    step: Number | None = None
    choices: tuple[Any, ...] | None = None
    branches: tuple[Branch, ...] = ()

    def branch_name(self, branch: Branch) -> str:
        """Optuna name under a branch: one name per distribution keeps TPE's history coherent.
        A "/" (a model folder) becomes ":", since Ray reads "/" in a config key as nesting."""
        value = str(branch.cond_value).replace("/", ":")
        return f"{self.key}[{branch.cond_key}={value}]"

    def overridden(self, branch: Branch) -> Param:
        """This parameter with ``branch``'s bounds in place of the base ones."""
        return replace(
            self,
            low=_pick(branch.low, self.low),
            high=_pick(branch.high, self.high),
            step=_pick(branch.step, self.step),
            choices=_pick(branch.choices, self.choices),
            branches=(),
        )

    def variants(self) -> tuple[Param, ...]:
        """The base distribution and every branch's, for bounds that must hold in all of them."""
        return (self, *(self.overridden(b) for b in self.branches))

    def possible_variants(self, given: Mapping[str, Any]) -> tuple[Param, ...]:
        """The variants that can still apply once the values in ``given`` are sampled: branches
        on other keys may, the first branch ``given`` matches does (and hides the base)."""
        possible = []
        for branch in self.branches:
            if branch.cond_key not in given:
                possible.append(self.overridden(branch))
            elif branch.matches(given):
                return (*possible, self.overridden(branch))
        return (*possible, self)

    def distribution(self, sampled: Mapping[str, Any]) -> tuple[str, BaseDistribution]:
        """Optuna name and distribution, given the values sampled so far (first branch wins)."""
        for branch in self.branches:
            if branch.matches(sampled):
                return self.branch_name(branch), _make_distribution(self.overridden(branch))
        return self.key, _make_distribution(self)

    def as_dict(self) -> dict[str, Any]:
        """The spec in the YAML's own vocabulary (``blocks`` already resolved)."""
        out: dict[str, Any] = {"type": self.type}
        if self.type == "categorical":
            out["choices"] = list(self.choices or ())
        else:
            out.update(low=self.low, high=self.high, log=self.log)
            if self.step is not None:
                out["step"] = self.step
        if self.branches:
            out["when"] = [b.as_dict() for b in self.branches]
        return out


def _make_distribution(param: Param) -> BaseDistribution:
    if param.type == "float":
        return FloatDistribution(
            _required(param.low), _required(param.high), log=param.log, step=param.step
        )
    if param.type == "int":
        step = 1 if param.step is None else int(param.step)
        return IntDistribution(
            int(_required(param.low)), int(_required(param.high)), log=param.log, step=step
        )
    return CategoricalDistribution(param.choices or ())


def _required(value: Number | None) -> Number:
    assert value is not None, "numeric parameters always have low and high"
    return value


def _pick(override: Any, base: Any) -> Any:
    return base if override is None else override


def fit_value(value: Any, dist: BaseDistribution) -> tuple[Any, str]:
    """The value `dist` can take nearest to `value` (clipped, rounded to its step), and why it
    differs ("" when it does not): "not among [...]", "not a number", "not an integer",
    "off its step 0.5", "outside [low, high]". The value is None when nothing fits: a choice
    `dist` lacks, a non-number. Checking a search space's first trials and fitting an earlier
    sweep's trials into a changed space both ask this one question."""
    if isinstance(dist, CategoricalDistribution):
        for choice in dist.choices:
            if same_value(choice, value):
                return choice, ""
        return None, f"not among {list(dist.choices)}"
    assert isinstance(dist, FloatDistribution | IntDistribution)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None, "not a number"
    fitted: float = min(max(value, dist.low), dist.high)
    if dist.step:
        fitted = dist.low + round((fitted - dist.low) / dist.step) * dist.step
        fitted = min(fitted, dist.high)
    out: int | float = int(round(fitted)) if isinstance(dist, IntDistribution) else float(fitted)
    if same_value(out, value):
        return out, ""
    if not dist.low <= value <= dist.high:
        return out, f"outside [{dist.low}, {dist.high}]"
    if isinstance(dist, IntDistribution) and value != int(value):
        return out, "not an integer"
    return out, f"off its step {dist.step}"


def same_value(a: Any, b: Any) -> bool:
    """Equality for parameter values: bool apart from int, floats up to rounding noise."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    return bool(a == b)


def _one_line(message: str) -> str:
    return " ".join(message.split())
