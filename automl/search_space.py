"""Search spaces: ``search_spaces/*.yaml`` -> validated Optuna distributions.

A typo in a search space should fail in the driver before Ray starts a single trial, with one
line naming the file and the key, not twenty frames deep inside a worker. So every file is
checked at load time against the resolved experiment config, and the rest of the sweep only
ever sees a :class:`SearchSpace` that is known to be valid.

A file maps dotted config keys to specs in Optuna's vocabulary::

    peft.lora_rank: {type: categorical, choices: [0, 4, 8, 16]}
    train.learning_rate:
      type: float
      low: 5.0e-4
      high: 5.0e-3
      log: true
      when:                          # other bounds where an EARLIER parameter takes a value
        - if: {peft.lora_rank: 0}
          low: 1.0e-5
          high: 1.0e-4
    peft.frozen_layers: {type: int, low: 0, high: blocks}   # blocks = the model's block count
"""

from __future__ import annotations

import difflib
import math
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

import optuna
import yaml
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

__all__ = [
    "Branch",
    "Param",
    "SearchSpace",
    "SearchSpaceError",
    "load_search_space",
    "resolve_search_space_path",
]

BLOCKS = "blocks"  # stands for the model's transformer block count in low/high/choices
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
        return self.cond_key in sampled and _same(sampled[self.cond_key], self.cond_value)

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
        """Optuna name under a branch: one name per distribution keeps TPE's history coherent."""
        return f"{self.key}[{branch.cond_key}={branch.cond_value}]"

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


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space, ready to drive Optuna define-by-run."""

    path: Path
    params: tuple[Param, ...]

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.params)

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Sample every parameter in file order; returns ``{dotted_key: value}``.

        Only the public ``suggest_*`` methods are used, because Ray's OptunaSearch hands us a
        wrapper (``_OptunaTrialSuggestCaptor``) that proxies just those.
        """
        values: dict[str, Any] = {}
        for param in self.params:
            name, dist = param.distribution(values)
            if isinstance(dist, FloatDistribution):
                values[param.key] = trial.suggest_float(
                    name, dist.low, dist.high, step=dist.step, log=dist.log
                )
            elif isinstance(dist, IntDistribution):
                values[param.key] = trial.suggest_int(
                    name, dist.low, dist.high, step=dist.step, log=dist.log
                )
            else:
                assert isinstance(dist, CategoricalDistribution)
                values[param.key] = trial.suggest_categorical(name, dist.choices)
        return values

    def to_overrides(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Optuna names (``trial.params``, Ray's config) -> ``{dotted_key: value}``.

        Branch names such as ``train.learning_rate[peft.lora_rank=0]`` fold back onto their key;
        names this space does not know pass through unchanged.
        """
        names = {p.branch_name(b): p.key for p in self.params for b in p.branches}
        return {names.get(name, name): value for name, value in params.items()}

    def max_value(self, key: str) -> Number:
        """Largest value ``key`` can take over all branches (e.g. epochs -> ASHA's max_t)."""
        param = self._param(key)
        if param.type != "categorical":
            return max(_required(v.high) for v in param.variants())
        numbers = [c for v in param.variants() for c in v.choices or () if _is_number(c)]
        if not numbers:
            raise SearchSpaceError(f"{self.path}: {key}: has no numeric choices, so no maximum")
        return max(numbers)

    def as_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-serialisable description, logged with the sweep for provenance."""
        return {"path": str(self.path), "params": {p.key: p.as_dict() for p in self.params}}

    def _param(self, key: str) -> Param:
        for param in self.params:
            if param.key == key:
                return param
        raise KeyError(f"{key!r} is not in search space {self.path}")


def resolve_search_space_path(name_or_path: str, search_dir: Path) -> Path:
    """A name means ``search_dir/<name>.yaml``; anything path-like is taken as a file path."""
    is_path = name_or_path.endswith((".yaml", ".yml")) or any(
        sep in name_or_path for sep in ("/", os.sep)
    )
    path = Path(name_or_path).expanduser() if is_path else Path(search_dir) / f"{name_or_path}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in Path(search_dir).glob("*") if p.suffix in (".yaml", ".yml"))
        problem = "not a file" if path.exists() else "no such search-space file"
        listing = ", ".join(names) if names else "none"
        hint = _did_you_mean(Path(name_or_path).stem, names)
        raise SearchSpaceError(f"{path}: {problem}{hint}; available in {search_dir}: {listing}")
    return path


def load_search_space(
    name_or_path: str,
    *,
    config: Mapping[str, Any],
    num_blocks: int | None,
    search_dir: Path,
    frozen_key: str = "peft.frozen_layers",
) -> SearchSpace:
    """Load and fully validate a search space against the resolved config, before any compute.

    ``config`` is the experiment config as plain nested dicts; ``num_blocks`` is the model's
    transformer block count (``None`` if unknown, which makes ``blocks`` an error).
    """
    path = resolve_search_space_path(name_or_path, search_dir)
    raw = _read_yaml(path)
    checker = _Checker(path, config, num_blocks, frozen_key)
    params: dict[str, Param] = {}
    for key, spec in raw.items():
        params[key] = checker.param(key, spec, params)
    return SearchSpace(path=path, params=tuple(params.values()))


# --- loading and validation --------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys: PyYAML would silently keep the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                continue  # unhashable keys are left for PyYAML to reject
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SearchSpaceError(_one_line(f"{path}: cannot read: {exc}")) from exc
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise SearchSpaceError(_one_line(f"{path}: not valid YAML: {_yaml_problem(exc)}")) from exc
    expected = "a mapping of dotted config keys to parameter specs"
    if data is None:
        raise SearchSpaceError(f"{path}: file is empty; expected {expected}")
    if not isinstance(data, dict):
        raise SearchSpaceError(f"{path}: top level must be {expected}, got {_describe(data)}")
    for key in data:
        if not isinstance(key, str):
            raise SearchSpaceError(f"{path}: {key!r}: keys must be dotted config paths (strings)")
    return data


class _Checker:
    """Turns raw specs into Params, failing on the first problem with the file and key named."""

    def __init__(
        self, path: Path, config: Mapping[str, Any], num_blocks: int | None, frozen_key: str
    ) -> None:
        self.path = path
        self.config = config
        self.num_blocks = num_blocks
        self.frozen_key = frozen_key
        self.at = ""  # "<key>: " or "<key>: when[i]: ", the culprit named in messages

    def fail(self, problem: str) -> NoReturn:
        raise SearchSpaceError(_one_line(f"{self.path}: {self.at}{problem}"))

    def param(self, key: str, spec: Any, earlier: Mapping[str, Param]) -> Param:
        self.at = f"{key}: "
        current = self._config_value(key)
        if not isinstance(spec, dict):
            self.fail(f"spec must be a mapping with a `type`, got {_describe(spec)}")
        if "type" not in spec:
            self.fail("missing `type` (one of float, int, categorical)")
        ptype = spec["type"]
        if ptype not in TYPES:
            hint = _did_you_mean(str(ptype), TYPES)
            self.fail(f"type: unknown type {ptype!r}{hint}; expected float, int or categorical")
        for field in spec:
            if field not in _ALL_FIELDS:
                self.fail(f"unknown field {field!r}{_did_you_mean(str(field), _FIELDS[ptype])}")
            if field not in _FIELDS[ptype]:
                self.fail(f"field {field!r} does not apply to type {ptype}")
        self._check_type_fits(ptype, current)

        if ptype == "categorical":
            base = Param(key, ptype, choices=self._choices(spec.get("choices"), current))
        else:
            for field in ("low", "high"):
                if field not in spec:
                    self.fail(f"type {ptype} needs `{field}`")
            log = spec.get("log", False)
            if not isinstance(log, bool):
                self.fail(f"log must be true or false, got {log!r}")
            low, high, step = (self._number(f, spec.get(f), ptype) for f in ("low", "high", "step"))
            base = Param(key, ptype, low=low, high=high, log=log, step=step)
        self._validate(base)
        branches = self._branches(base, spec.get("when"), earlier, current)
        return replace(base, branches=branches)

    def _config_value(self, key: str) -> Any:
        node: Any = self.config
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                hint = _did_you_mean(key, _leaf_keys(self.config))
                self.fail(f"not a key of the experiment config{hint}")
            node = node[part]
        if isinstance(node, Mapping):
            self.fail("is a config section, not a single value")
        return node

    def _check_type_fits(self, ptype: str, current: Any) -> None:
        """Catch e.g. a float range on an int field, which would crash (or truncate) in training."""
        if current is None or ptype == "categorical":
            return
        if ptype == "float" and isinstance(current, float):
            return
        if ptype == "int" and _is_number(current):
            return  # an int range on a float field is fine
        extra = "; use type: int" if ptype == "float" and _is_number(current) else ""
        kind = type(current).__name__
        self.fail(f"type {ptype} does not fit the config value {current!r} ({kind}){extra}")

    def _number(self, field: str, value: Any, ptype: str) -> Number | None:
        """A number from YAML (None stays None); lenient on ``1e-3``, which PyYAML reads as str."""
        number: Number
        if value is None:
            return None
        if isinstance(value, str) and value.strip() == BLOCKS:
            if self.num_blocks is None:
                self.fail(f"{field}: `blocks` needs the model's block count, which is unknown")
            number = self.num_blocks
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            self.fail(f"{field} must be a number, got {_describe(value)}")
        elif isinstance(value, str):
            try:
                number = int(value)
            except ValueError:
                try:
                    number = float(value)
                except ValueError:
                    self.fail(f"{field} must be a number or `blocks`, got {value!r}")
        else:
            number = value
        if not math.isfinite(number):
            self.fail(f"{field} must be finite, got {value!r}")
        if ptype != "int":
            return float(number)
        if isinstance(number, float) and not number.is_integer():
            self.fail(f"{field} must be a whole number for type int, got {value!r}")
        return int(number)

    def _choices(self, raw: Any, current: Any) -> tuple[Any, ...]:
        if raw is None:
            self.fail("type categorical needs `choices` (a non-empty list)")
        if not isinstance(raw, list) or not raw:
            self.fail(f"choices must be a non-empty list, got {_describe(raw)}")
        out: list[Any] = []
        seen: set[tuple[bool, Any]] = set()
        for i, choice in enumerate(raw):
            field = f"choices[{i}]"
            if isinstance(choice, str) and _is_number(current):  # numeric field: "1e-3", blocks
                choice = self._number(field, choice, "int" if isinstance(current, int) else "float")
            if not (choice is None or isinstance(choice, bool | int | float | str)):
                self.fail(f"{field} must be a scalar, got {_describe(choice)}")
            if not _fits(choice, current):
                kind = type(current).__name__
                self.fail(
                    f"{field} ({choice!r}) does not fit the config value {current!r} ({kind})"
                )
            identity = (isinstance(choice, bool), choice)  # True and 1 differ; 1 and 1.0 do not
            if identity in seen:
                self.fail(f"choices: {choice!r} is listed twice")
            seen.add(identity)
            out.append(choice)
        return tuple(out)

    def _validate(self, param: Param) -> None:
        """Rules for one effective distribution (the base, or the base under one branch)."""
        if param.type != "categorical":
            low, high, step = _required(param.low), _required(param.high), param.step
            if low > high:
                self.fail(f"low ({low}) must be <= high ({high})")
            if param.log and step is not None:
                self.fail("step cannot be combined with log: true (Optuna forbids it)")
            if param.log and low <= 0:
                self.fail(f"log: true needs low > 0, got low ({low})")
            if step is not None and step <= 0:
                self.fail(f"step ({step}) must be > 0")
        if param.key == self.frozen_key:
            self._check_frozen(param)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna warns and trims a misfit range; we fail
            try:
                dist = _make_distribution(param)
            except ValueError as exc:  # the safety net: Optuna's own rules
                self.fail(str(exc))
        if isinstance(dist, FloatDistribution | IntDistribution):
            if not math.isclose(dist.high, _required(param.high)):
                self.fail(
                    f"high ({param.high}) is not low + a multiple of step ({param.step}); "
                    f"Optuna would cut the range at {dist.high}"
                )

    def _check_frozen(self, param: Param) -> None:
        """Frozen depth must fit the model: freezing 8 of 6 blocks is a config error, not a run."""
        if param.type == "categorical":
            bounds = [("choice", c) for c in param.choices or () if _is_number(c)]
        else:
            bounds = [("low", _required(param.low)), ("high", _required(param.high))]
        n = self.num_blocks
        for field, value in bounds:
            if value < 0 or (n is not None and value > n):
                limit = f"between 0 and {n}: the model has {n} blocks" if n is not None else ">= 0"
                self.fail(f"{field} ({value}) must be {limit}")

    def _branches(
        self, base: Param, raw: Any, earlier: Mapping[str, Param], current: Any
    ) -> tuple[Branch, ...]:
        if raw is None:
            return ()
        if not isinstance(raw, list) or not raw:
            self.fail(f"when must be a non-empty list of branches, got {_describe(raw)}")
        branches: list[Branch] = []
        for i, entry in enumerate(raw):
            self.at = f"{base.key}: when[{i}]: "
            if not isinstance(entry, dict):
                self.fail(f"must be a mapping with `if`, got {_describe(entry)}")
            for field in entry:
                if field not in _BRANCH_FIELDS:
                    hint = _did_you_mean(str(field), _BRANCH_FIELDS)
                    allowed = ", ".join(_BRANCH_FIELDS)
                    self.fail(f"unknown field {field!r}{hint}; a branch sets only {allowed}")
                if field != "if" and field not in _FIELDS[base.type]:
                    self.fail(f"field {field!r} does not apply to type {base.type}")
            cond_key, cond_value = self._condition(entry.get("if"), earlier)
            if not set(entry) - {"if"}:
                self.fail("sets none of low, high, step, choices, so it changes nothing")
            num = {f: self._number(f, entry.get(f), base.type) for f in ("low", "high", "step")}
            choices = self._choices(entry["choices"], current) if "choices" in entry else None
            branch = Branch(cond_key, cond_value, choices=choices, **num)
            if any(b.cond_key == cond_key and _same(b.cond_value, cond_value) for b in branches):
                self.fail(f"repeats an earlier condition ({cond_key}={cond_value!r})")
            self._validate(base.overridden(branch))
            branches.append(branch)
        return tuple(branches)

    def _condition(self, raw: Any, earlier: Mapping[str, Param]) -> tuple[str, Any]:
        """``if: {key: value}`` on an EARLIER key, so its value exists when this one is sampled."""
        if not isinstance(raw, dict) or len(raw) != 1:
            example = "{peft.lora_rank: 0}"
            self.fail(f"if must be a single-entry mapping like {example}, got {_describe(raw)}")
        ((cond_key, value),) = raw.items()
        if cond_key not in earlier:
            self.fail(f"if: {cond_key!r} is not a parameter defined earlier in the file")
        cond = earlier[cond_key]
        if cond.type == "categorical":
            choices = [c for v in cond.variants() for c in v.choices or ()]
            if not any(_same(value, c) for c in choices):
                self.fail(f"if: {cond_key}={value!r} is not one of its choices {choices}")
        elif cond.type == "float":
            self.fail(f"if: {cond_key} is a float parameter; an exact value never comes up")
        else:
            low = min(_required(v.low) for v in cond.variants())
            high = max(_required(v.high) for v in cond.variants())
            if not (_is_number(value) and float(value).is_integer() and low <= value <= high):
                self.fail(f"if: {cond_key}={value!r} is outside its range {low}..{high}")
            value = int(value)
        return cond_key, value


# --- small helpers -----------------------------------------------------------------------------


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equality that keeps bool apart from int (``True == 1`` in Python)."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _fits(choice: Any, current: Any) -> bool:
    """Whether ``choice`` can replace the config's ``current`` value; bool is not an int here."""
    if current is None:
        return True
    if isinstance(current, bool):
        return isinstance(choice, bool)
    if isinstance(current, int):
        return isinstance(choice, int) and not isinstance(choice, bool)
    if isinstance(current, float):
        return _is_number(choice)
    return type(choice) is type(current)


def _leaf_keys(config: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for name, value in config.items():
        dotted = f"{prefix}{name}"
        keys.extend(_leaf_keys(value, f"{dotted}.") if isinstance(value, Mapping) else [dotted])
    return keys


def _did_you_mean(word: str, options: Any) -> str:
    matches = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(matches)}?)" if matches else ""


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem or exc.context} (line {mark.line + 1}, column {mark.column + 1})"
    return str(exc)


def _one_line(message: str) -> str:
    return " ".join(message.split())
