"""The rules a search-space file must follow, checked against the resolved experiment config.

Each rule fails with one line, ``<file>: <key>: <problem>``, and they apply in this order:

1. the key is a single value of the experiment config that a trial can change: a `train` or
   `peft` value other than the device and threads the sweep's resources set
   (`SpecChecker._config_value`, `fixed_for_the_sweep`);
2. the spec is a mapping with a known ``type`` and only the fields that type takes (`param`);
3. the type fits the config value (the schema's type where the value is None, auto): no float
   range on an int field (`_check_type_fits`);
4. ``low``/``high``/``step`` are finite numbers or ``blocks``, whole for ints (`_number`);
5. ``choices`` is a non-empty list of finite scalars that fit the config value, none twice
   (`_choices`);
6. a range is valid for Optuna: low <= high, log needs low > 0 and no step, high on the step
   grid (`_validate`);
7. a frozen depth lies between 0 and the model's block count; where the space chooses the model,
   every model choice's it reaches (`_check_frozen`);
8. each ``when`` branch conditions on a value an EARLIER parameter can take and changes
   something, and its own range passes rule 6 (`_branches`, `_condition`);
9. a ``model`` key lists models that load (config names or folders), before any parameter that
   uses ``blocks``; such a parameter then gets one branch per model, bounded by that model's
   block count, and cannot also have ``when`` branches (`_model_param`, `_per_model`);
10. every choice, every value of a short int range and both ends of any other range, set in
    the experiment config (with the value a ``when`` branch conditions on), pass the config's
    own value rules (`check_values`).
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import math
import types
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from optuna.distributions import (
    FloatDistribution,
    IntDistribution,
)

from automl.config.resolve import leaf_values
from automl.config.space_params import (
    _ALL_FIELDS,
    _BRANCH_FIELDS,
    _FIELDS,
    BLOCKS,
    FIRST_TRIALS_KEY,
    MODEL_KEY,
    TYPES,
    Branch,
    Number,
    Param,
    SearchSpaceError,
    _make_distribution,
    _one_line,
    _required,
    same_value,
)
from automl.config.values import CHOICES

# Sections a trial applies; the others are settled once, before the trials start.
_TRIAL_SECTIONS = ("train", "peft")
# Trial values the sweep sets from its resources (and checks against them in the plan).
_SET_BY_RESOURCES = {
    "train.device": "resources.gpus_per_trial",
    "train.num_threads": "resources.cpus_per_trial, or train.num_threads on the command line",
}


def fixed_for_the_sweep(key: str) -> str | None:
    """Why a trial cannot take a sampled value for `key`, or None. Sampling such a key would
    be silently ignored (the data is loaded and tokenized once, in the driver) or would break a
    trial (a tokenizer that does not match its model, a device its resources lack)."""
    section = key.split(".", 1)[0]
    if section == "model":
        return (
            "is fixed for the whole sweep: the data is tokenized once per model before the "
            "trials start, so a trial cannot change it; set it on the command line, or search "
            "over models (each conf/model/<name>.yaml with its own values) with a `model` "
            "choice (search_spaces/models.yaml)"
        )
    if section == "data":
        return (
            "is fixed for the whole sweep: the data is loaded and split once before the trials "
            "start, so a trial cannot change it; set it on the command line"
        )
    if key in _SET_BY_RESOURCES:
        return f"is set for the whole sweep ({_SET_BY_RESOURCES[key]}), not sampled"
    if section not in _TRIAL_SECTIONS:
        return (
            f"is a setting of the sweep itself, not of a trial; a search space samples only "
            f"{' and '.join(f'{s}.*' for s in _TRIAL_SECTIONS)} values"
        )
    return None


class SpecChecker:
    """Turns raw specs into Params, failing on the first problem with the file and key named."""

    def __init__(
        self,
        path: Path,
        config: Mapping[str, Any],
        num_blocks: int | None,
        frozen_key: str,
        blocks_of: Callable[[str], int] | None = None,
    ) -> None:
        self.path = path
        self.config = config
        self.num_blocks = num_blocks
        self.frozen_key = frozen_key
        self.blocks_of = blocks_of  # a model choice -> its block count (raises if it won't load)
        self.model_blocks: dict[str, int] = {}  # the `model` key's choices and their block counts
        self.uses_blocks: list[str] = []  # keys checked so far whose bounds use `blocks`
        self._per_model_blocks = False  # checking one model choice's own `blocks` range
        self.none_allowed = False  # the key's config value is None
        self.null_fits = False  # a `null` choice fits the key (its schema type is Optional)
        # the model choices a frozen range applies to (None: all of them)
        self._frozen_models: list[str] | None = None
        self.shown = ""  # the key's config value, as messages show it
        self.at = ""  # "<key>: " or "<key>: when[i]: ", the culprit named in messages
        self.key = ""  # the dotted config key being checked

    def fail(self, problem: str) -> NoReturn:
        raise SearchSpaceError(_one_line(f"{self.path}: {self.at}{problem}"))

    def param(self, key: str, spec: Any, earlier: Mapping[str, Param]) -> Param:
        self.at, self.key = f"{key}: ", key
        if key == MODEL_KEY:
            return self._model_param(spec, list(earlier))
        if _mentions_blocks(spec):
            self.uses_blocks.append(key)
            if self.model_blocks:
                return self._per_model(key, spec, earlier)
        return self._param(key, spec, earlier)

    def _model_param(self, spec: Any, earlier: list[str]) -> Param:
        """The models to choose from; each must load (its config only) before any compute."""
        if not isinstance(spec, dict) or spec.get("type") != "categorical":
            self.fail("must be {type: categorical, choices: [...]} listing models")
        for field in spec:
            if field not in ("type", "choices"):
                self.fail(f"field {field!r} does not apply: a model choice takes only `choices`")
        if self.uses_blocks:
            self.fail(f"list it before {self.uses_blocks[0]}, which uses `blocks`")
        if earlier:  # a frozen range or a `blocks` branch above it saw the config's model
            self.fail(f"list it first, before {earlier[0]}: ranges follow the model drawn")
        raw = spec.get("choices")
        if not isinstance(raw, list) or not raw:
            self.fail(f"choices must be a non-empty list of models, got {_describe(raw)}")
        for i, choice in enumerate(raw):
            if not isinstance(choice, str) or not choice.strip():
                self.fail(f"choices[{i}] must be a model config name or folder, got {choice!r}")
            if choice in self.model_blocks:
                self.fail(f"choices: {choice!r} is listed twice")
            if self.blocks_of is None:
                self.fail("model choices need the model loader (internal error)")
            try:
                self.model_blocks[choice] = self.blocks_of(choice)
            except ValueError as err:
                self.fail(f"choices[{i}] ({choice!r}): {err}")
        return Param(MODEL_KEY, "categorical", choices=tuple(raw))

    def check_fixed_depth(self) -> None:
        """The config's own frozen depth, when not searched, must fit every model choice: each
        trial drawing a shallower model failed in the middle of the sweep."""
        if not self.model_blocks:
            return
        self.at, self.key = f"{MODEL_KEY}: ", MODEL_KEY
        depth = self._config_value(self.frozen_key)
        for choice, blocks in self.model_blocks.items():
            if isinstance(depth, int) and depth > blocks:
                self.fail(
                    f"{choice!r} has {blocks} blocks, fewer than {self.frozen_key}={depth}; "
                    f"lower it or search it ({{type: int, low: 0, high: blocks}})"
                )

    def _per_model(self, key: str, spec: dict[str, Any], earlier: Mapping[str, Param]) -> Param:
        """A parameter using `blocks` in a space that chooses the model: the base range uses the
        smallest model, and one branch per model uses that model's block count."""
        if "when" in spec:
            self.fail("uses `blocks` and has `when` branches; with a `model` choice, `blocks` "
                      "already branches on the model")  # fmt: skip
        default = self.num_blocks
        self._per_model_blocks = True
        try:
            self.num_blocks = min(self.model_blocks.values())
            base = self._param(key, spec, earlier)
            branches = []
            for choice, blocks in self.model_blocks.items():
                self.num_blocks, self.at = blocks, f"{key}: for model {choice}: "
                own = self._param(key, spec, earlier)
                branches.append(Branch(MODEL_KEY, choice, low=own.low, high=own.high,
                                       step=own.step, choices=own.choices))  # fmt: skip
        finally:
            self.num_blocks, self._per_model_blocks = default, False
        return replace(base, branches=tuple(branches))

    def _param(self, key: str, spec: Any, earlier: Mapping[str, Param]) -> Param:
        current = self._config_value(key)
        # a setting whose default is None (train.batch_size: auto) is typed by the schema
        self.none_allowed = current is None
        # `null` is a value of an Optional setting whatever an experiment set it to (smoke's
        # batch size 16 refused the `null` (auto) the default experiment accepted)
        self.null_fits = current is None or _optional(key)
        self.shown = f"{current!r}" if current is not None else f"None ({_declared_kind(key)})"
        if current is None:
            current = _stand_in(key)
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
        # the base range reaches the model choices that no `when:` branch names
        when = spec.get("when")
        named = {_model_branch(e) for e in when} if isinstance(when, list) else set()
        self._frozen_models = [m for m in self.model_blocks if m not in named]

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
                hint = _did_you_mean(key, [*leaf_values(self.config), FIRST_TRIALS_KEY])
                self.fail(f"not a key of the experiment config{hint}")
            node = node[part]
        if isinstance(node, Mapping):
            self.fail("is a config section, not a single value")
        fixed = fixed_for_the_sweep(key)
        if fixed:
            self.fail(fixed)
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
        kind = "" if self.none_allowed else f" ({type(current).__name__})"
        self.fail(f"type {ptype} does not fit the config value {self.shown}{kind}{extra}")

    def _number(self, field: str, value: Any, ptype: str) -> Number | None:
        """A number from YAML (None stays None); a string of digits too (`"1e-3"` quoted)."""
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
        blocks = sum(isinstance(c, str) and c.strip() == BLOCKS for c in raw) == 1
        for i, choice in enumerate(raw):
            field = f"choices[{i}]"
            if isinstance(choice, str) and _is_number(current):  # numeric field: "1e-3", blocks
                choice = self._number(field, choice, "int" if isinstance(current, int) else "float")
            if not (choice is None or isinstance(choice, bool | int | float | str)):
                self.fail(f"{field} must be a scalar, got {_describe(choice)}")
            if isinstance(choice, float) and not math.isfinite(choice):  # .inf, .nan
                self.fail(f"{field} must be finite, got {choice!r}")
            if not (_fits(choice, current) or (choice is None and self.null_fits)):
                kind = "" if self.none_allowed else f" ({type(current).__name__})"
                self.fail(f"{field} ({choice!r}) does not fit the config value {self.shown}{kind}")
            allowed = CHOICES.get(self.key)  # a config key with a fixed set of values
            if allowed is not None and choice not in allowed:
                self.fail(f"{field} ({choice!r}) is not one of {', '.join(allowed)}")
            identity = (isinstance(choice, bool), choice)  # True and 1 differ; 1 and 1.0 do not
            if identity in seen and blocks and choice == self.num_blocks:
                # [0, 2, blocks] on a 2-block model (or a choice of models, one with 2 blocks):
                # the user wrote 2 once; it is drawn once
                blocks = False  # a second repeat was written twice
                continue
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
            if param.log and step is not None and not (param.type == "int" and step == 1):
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
        n, which = self.num_blocks, "the model has"
        if self.model_blocks and not self._per_model_blocks:
            # a depth of its own (no `blocks`) applies to every model choice it reaches (the
            # config's own model may not even be one): a `when: {if: {model: X}}` branch to X
            # alone, the base range to the models without a branch of their own
            models = self._frozen_models
            if models is None:
                models = list(self.model_blocks)
            if not models:
                return  # a base range no model reaches (each has a branch of its own)
            n = min(self.model_blocks[m] for m in models)
            which = (
                f"model {models[0]} has" if len(models) == 1 else "the smallest of its models has"
            )
        for field, value in bounds:
            if value < 0 or (n is not None and value > n):
                limit = f"between 0 and {n}: {which} {n} blocks" if n is not None else ">= 0"
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
            if branches and cond_key != branches[0].cond_key:  # (first match wins: silently)
                self.fail(
                    f"conditions on {cond_key}, when[0] on {branches[0].cond_key}: a trial "
                    "matching both would take the first branch alone; condition one "
                    "parameter's branches on one key"
                )
            if not set(entry) - {"if"}:
                self.fail("sets none of low, high, step, choices, so it changes nothing")
            num, choices = self._branch_values(entry, base.type, current, cond_key, cond_value)
            branch = Branch(cond_key, cond_value, choices=choices, **num)
            if any(same_value(b.cond_value, cond_value) for b in branches):  # (one key: above)
                self.fail(f"repeats an earlier condition ({cond_key}={cond_value!r})")
            # a frozen depth under a model's branch is checked against that model alone, under
            # any other branch against every model choice
            self._frozen_models = [cond_value] if cond_key == MODEL_KEY else None
            try:
                self._validate(base.overridden(branch))
            finally:
                self._frozen_models = None
            branches.append(branch)
        return tuple(branches)

    def _branch_values(
        self, entry: dict[str, Any], ptype: str, current: Any, cond_key: str, cond_value: Any
    ) -> tuple[dict[str, Number | None], tuple[Any, ...] | None]:
        """A branch's bounds and choices; `blocks` under `if: {model: X}` is X's block count
        (it was the config model's: minilm's 0..6 became tiny_bert's 0..2)."""
        default = self.num_blocks
        if self.model_blocks and _mentions_blocks(entry):
            if cond_key != MODEL_KEY:
                self.fail(
                    "uses `blocks` under a condition on "
                    f"{cond_key}; with a `model` choice, `blocks` needs if: {{model: ...}}"
                )
            self.num_blocks = self.model_blocks[cond_value]
        try:
            num = {f: self._number(f, entry.get(f), ptype) for f in ("low", "high", "step")}
            choices = self._choices(entry["choices"], current) if "choices" in entry else None
        finally:
            self.num_blocks = default
        return num, choices

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
            if not any(same_value(value, c) for c in choices):
                self.fail(f"if: {cond_key}={value!r} is not one of its choices {choices}")
        elif cond.type == "float":
            self.fail(f"if: {cond_key} is a float parameter; an exact value never comes up")
        else:
            low = min(_required(v.low) for v in cond.variants())
            high = max(_required(v.high) for v in cond.variants())
            if not (_is_number(value) and float(value).is_integer() and low <= value <= high):
                self.fail(f"if: {cond_key}={value!r} is outside its range {low}..{high}")
            value = int(value)
            # a value some variant of it takes: within that variant's range and on its step
            # (the union of the ranges let 3 pass on 1..2 and 5..6, a branch that never fired)
            grids = [(_required(v.low), _required(v.high), v.step or 1) for v in cond.variants()]
            if not any(lo <= value <= hi and (value - lo) % st == 0 for lo, hi, st in grids):
                grid = ", ".join(
                    f"{lo}..{hi}" + (f" step {st}" if st != 1 else "") for lo, hi, st in grids
                )
                self.fail(f"if: {cond_key}={value} is never sampled (its values: {grid})")
        return cond_key, value


def _mentions_blocks(spec: Any) -> bool:
    """Whether a spec's own bounds or choices use the `blocks` symbol."""
    if not isinstance(spec, dict):
        return False
    values = [spec.get("low"), spec.get("high")]
    if isinstance(spec.get("choices"), list):
        values += spec["choices"]
    return any(isinstance(v, str) and v.strip() == BLOCKS for v in values)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _model_branch(entry: Any) -> str | None:
    """The model choice a raw `when:` entry conditions on, if any (checked in `_branches`)."""
    condition = entry.get("if") if isinstance(entry, dict) else None
    choice = condition.get(MODEL_KEY) if isinstance(condition, dict) else None
    return choice if isinstance(choice, str) else None


def _hint(key: str) -> Any:
    """The schema's type hint of a dotted config key (None: not in the schema)."""
    from automl.config.schema import Config

    node: Any = Config
    for part in key.split("."):
        hints = typing.get_type_hints(node) if dataclasses.is_dataclass(node) else {}
        if part not in hints:
            return None
        node = hints[part]
    return node


def _declared(key: str) -> Any:
    """The schema's type of a dotted config key, Optional unwrapped (None: not in the schema)."""
    node = _hint(key)
    args = [a for a in typing.get_args(node) if a is not type(None)]
    if typing.get_origin(node) in (typing.Union, types.UnionType) and len(args) == 1:
        node = args[0]
    return typing.get_origin(node) or node


def _optional(key: str) -> bool:
    """Whether the schema lets a dotted config key be None (`int | None`)."""
    return type(None) in typing.get_args(_hint(key))


def _declared_kind(key: str) -> str:
    kind = _declared(key)
    return kind.__name__ if isinstance(kind, type) else "any"


def _stand_in(key: str) -> Any:
    """A value of the schema's type for a setting whose default is None, so choices and ranges
    are checked against it (a float batch size, strings for a list of modules); None where the
    schema leaves the type open."""
    return {int: 0, float: 0.0, str: "", list: [], bool: False}.get(_declared(key))


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


def _did_you_mean(word: str, options: Any) -> str:
    matches = difflib.get_close_matches(word, list(options), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(matches)}?)" if matches else ""


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 60 else text[:57] + '...'}"


# An int range up to this many values is tried value by value: a rule such as "the groups must
# divide the step batch" holds at both ends of 1..4 and fails at 3. The step keys' rule holds at
# both ends of any even range (8..128) and fails at every odd value inside: theirs, up to 1024.
_EVERY_INT_UP_TO = 64
_EVERY_STEP_INT_UP_TO = 1024


def _values_to_try(
    p: Param, step_up_to: int = _EVERY_STEP_INT_UP_TO, wanted: Sequence[Any] = ()
) -> tuple[Any, ...]:
    """Every choice; every value of a short int range (a step key's: up to `step_up_to`); else
    the range's two ends, the `wanted` values it holds (conditions of branches on it, which
    select other ranges) and one value that is none of those (which selects the base's)."""
    if p.choices is not None:
        return p.choices
    if p.type == "int" and p.low is not None and p.high is not None:
        grid = range(int(p.low), int(p.high) + 1, int(p.step or 1))
        if len(grid) <= (step_up_to if p.key in _STEP_KEYS else _EVERY_INT_UP_TO):
            return tuple(grid)
        picked = [grid[0], grid[-1], *(w for w in wanted if _is_number(w) and w in grid)]
        other = next((v for v in grid if v not in picked), None)
        return tuple(dict.fromkeys([*picked, *([] if other is None else [other])]))
    return (p.low, p.high)


def check_values(path: Path, params: tuple[Param, ...], config: Mapping[str, Any]) -> None:
    """Rule 10: a value the config itself refuses (`train.warmup_ratio` up to 1.5, a batch size
    `train.length_groups_per_step` cannot split) is named here, not by the trial that samples
    it in the middle of a sweep. Each value is tried alone in the experiment config."""
    from automl.config.resolve import from_dict
    from automl.config.schema import ConfigError
    from automl.config.values import validate

    base = from_dict(dict(config))  # once: building a typed config takes ~20 ms

    def refused(settings: Mapping[str, Any]) -> str | None:
        conf = copy.deepcopy(base)
        for dotted, setting in settings.items():
            *sections, name = dotted.split(".")
            setattr(functools.reduce(getattr, sections, conf), name, setting)
        try:  # as a trial reads its config (recorded): the sweep's own settings, the data
            # source and the mode, were checked when the config was composed
            validate(conf, recorded=True)
        except ConfigError as err:
            return str(err).removeprefix("config: ")
        return None

    joint, drawn = _step_combinations(params)
    for param in params:
        if param.key == MODEL_KEY:
            continue  # rule 9 loads every model choice
        if param in joint:
            continue  # alone it would meet the config's batch size, which no trial uses
        for variant, branch in zip(param.variants(), (None, *param.branches), strict=True):
            condition = {}
            if branch is not None and branch.cond_key != MODEL_KEY:
                condition = {branch.cond_key: branch.cond_value}
            where = "".join(f"when {k}={v!r}: " for k, v in condition.items())
            for value in _values_to_try(variant):
                problem = refused({**condition, param.key: value})
                if problem:
                    raise SearchSpaceError(
                        _one_line(f"{path}: {param.key}: {where}{value!r} would fail: {problem}")
                    )
    _check_step_keys_together(path, drawn, refused)


# Settings one rule reads together: the groups of an optimizer step must divide its examples
_STEP_KEYS = ("train.batch_size", "train.grad_accum_steps", "train.length_groups_per_step")
_MAX_COMBINATIONS = 4096  # ~0.15 ms each here (512 in 0.07 s): at most ~0.6 s of the plan


def _step_combinations(params: tuple[Param, ...]) -> tuple[list[Param], list[dict[str, Any]]]:
    """The step keys searched together, and every combination of values a trial can draw for
    them, with the values their ranges depend on (a `when` on `peft.lora_rank`, or on another
    step key). Checked as combinations, not one by one against the config's own values:
    `train.length_groups_per_step: [1, 16]` alone meets the config's batch size 8, which no
    trial draws when `train.batch_size` is searched over [16, 32]. Wide step ranges are tried
    value by value where the combinations stay under `_MAX_COMBINATIONS`, else at their ends;
    ([], []) for fewer than two step keys, or past it even so (each value checked alone)."""
    joint = [p for p in params if p.key in _STEP_KEYS]
    if len(joint) < 2:
        return [], []
    by_key = {p.key: p for p in params}
    needed = {p.key for p in joint}
    conditions: dict[str, list[Any]] = {}  # each key's values that some branch selects on
    waiting = list(needed)
    while waiting:  # the keys their branches read, and the keys those read
        param = by_key.get(waiting.pop())
        for branch in param.branches if param is not None else ():
            conditions.setdefault(branch.cond_key, []).append(branch.cond_value)
            if branch.cond_key not in needed:
                needed.add(branch.cond_key)
                waiting.append(branch.cond_key)
    ordered = [p for p in params if p.key in needed]  # in sampling order
    every = _drawn(ordered, conditions, _EVERY_STEP_INT_UP_TO)
    if every is not None:
        return joint, every
    ends = _drawn(ordered, conditions, _EVERY_INT_UP_TO)
    if ends is None:
        return [], []
    if any(p.branches for p in ordered):
        return joint, ends
    # unbranched, so any values go together: each key's every value beside the others'
    # first ones as well (groups of 3 inside 1..128 fail at every batch of 128)
    values = [_values_to_try(p) for p in ordered]
    first = {p.key: v[0] for p, v in zip(ordered, values, strict=True)}
    star = [{**first, p.key: v} for p, vs in zip(ordered, values, strict=True) for v in vs]
    return joint, [*ends, *star]


def _drawn(
    ordered: list[Param], conditions: Mapping[str, list[Any]], step_up_to: int
) -> list[dict[str, Any]] | None:
    """Every combination of values `ordered` can be drawn with (each range as the values
    above it select), or None past `_MAX_COMBINATIONS` (counted before any is built)."""
    drawn: list[dict[str, Any]] = [{}]
    for param in ordered:
        options, count = [], 0
        for given in drawn:
            values = dict.fromkeys(
                value
                for variant in param.possible_variants(given)  # the one the values above select
                for value in _values_to_try(variant, step_up_to, conditions.get(param.key, ()))
            )
            count += len(values)
            if count > _MAX_COMBINATIONS:
                return None
            options.append(values)
        drawn = [
            {**given, param.key: value}
            for given, values in zip(drawn, options, strict=True)
            for value in values
        ]
    return drawn


def _check_step_keys_together(
    path: Path,
    drawn: list[dict[str, Any]],
    refused: Callable[[Mapping[str, Any]], str | None],
) -> None:
    """Rule 10 on combinations: `train.batch_size: [8, 12]` passes alone, and so does
    `train.length_groups_per_step: [1, 8]`, but a trial drawing 12 and 8 failed mid-sweep.
    Every value is in some combination, so the rules on one value are checked here too."""
    for values in drawn:
        problem = refused({k: v for k, v in values.items() if k != MODEL_KEY})
        if problem:
            when = "".join(f"when {k}={v!r}: " for k, v in values.items() if k not in _STEP_KEYS)
            together = ", ".join(f"{k}={v!r}" for k, v in values.items() if k in _STEP_KEYS)
            raise SearchSpaceError(
                _one_line(f"{path}: {when}{together} together would fail: {problem}")
            )
