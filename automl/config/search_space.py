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

A ``model`` key chooses the model itself (config names in conf/model/ or folders); it comes
first, and ``blocks`` then means the chosen model's block count (automl/model/choices.py).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from automl.config.space_params import (
    FIRST_TRIALS_KEY,
    MODEL_KEY,
    Number,
    Param,
    SearchSpaceError,
    _one_line,
    _required,
    fit_value,
)
from automl.config.space_rules import (
    SpecChecker,
    _describe,
    _did_you_mean,
    _is_number,
    check_values,
)


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space, ready to drive Optuna define-by-run."""

    path: Path
    params: tuple[Param, ...]
    # Configurations the sweep runs first (the file's `first_trials:`), by dotted key: what is
    # known to work, so the search starts from it; keys left out are sampled.
    first_trials: tuple[dict[str, Any], ...] = ()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.params)

    @property
    def models(self) -> tuple[str, ...]:
        """The model choices, when the space chooses the model (else empty)."""
        return tuple(self._param(MODEL_KEY).choices or ()) if MODEL_KEY in self.keys else ()

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

    def max_value(self, key: str, given: Mapping[str, Any] | None = None) -> Number:
        """Largest value ``key`` can take over all branches (e.g. epochs -> ASHA's max_t), or
        over those that can apply once the values in ``given`` are sampled (``{"model": m}``)."""
        return max(self._numbers(key, given, "high", "maximum"))

    def min_value(self, key: str, given: Mapping[str, Any] | None = None) -> Number:
        """Smallest value ``key`` can take over all branches (LoRA rank 0 possible or not)."""
        return min(self._numbers(key, given, "low", "minimum"))

    def _numbers(
        self, key: str, given: Mapping[str, Any] | None, bound: str, what: str
    ) -> list[Number]:
        param = self._param(key)
        variants = param.variants() if given is None else param.possible_variants(given)
        if param.type != "categorical":
            return [_required(getattr(v, bound)) for v in variants]
        numbers = [c for v in variants for c in v.choices or () if _is_number(c)]
        if not numbers:
            raise SearchSpaceError(f"{self.path}: {key}: has no numeric choices, so no {what}")
        return numbers

    def as_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-serialisable description, logged with the sweep for provenance."""
        out = {"path": str(self.path), "params": {p.key: p.as_dict() for p in self.params}}
        return {**out, "first_trials": list(self.first_trials)} if self.first_trials else out

    def _param(self, key: str) -> Param:
        for param in self.params:
            if param.key == key:
                return param
        raise KeyError(f"{key!r} is not in search space {self.path}")


def resolve_search_space_path(name_or_path: str, search_dir: Path) -> Path:
    """A name means ``search_dir/<name>.yaml`` (or ``.yml``); anything path-like is a file path."""
    is_path = name_or_path.endswith((".yaml", ".yml")) or any(
        sep in name_or_path for sep in ("/", os.sep)
    )
    if is_path:
        path = Path(name_or_path).expanduser()
    else:  # the listing below offers mine.yml as `mine`
        named = [Path(search_dir) / f"{name_or_path}{suffix}" for suffix in (".yaml", ".yml")]
        path = next((p for p in named if p.is_file()), named[0])
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
    blocks_of: Callable[[str], int] | None = None,
) -> SearchSpace:
    """Load and fully validate a search space against the resolved config, before any compute.

    ``config`` is the experiment config as plain nested dicts; ``num_blocks`` is the model's
    transformer block count (``None`` if unknown, which makes ``blocks`` an error);
    ``blocks_of`` loads a ``model`` choice's config and returns its block count.
    """
    path = resolve_search_space_path(name_or_path, search_dir)
    raw = _read_yaml(path)
    first = raw.pop(FIRST_TRIALS_KEY, None)
    checker = SpecChecker(path, config, num_blocks, frozen_key, blocks_of)
    params: dict[str, Param] = {}
    for key, spec in raw.items():
        params[key] = checker.param(key, spec, params)
    ordered = tuple(params.values())
    if frozen_key not in params:
        checker.check_fixed_depth()
    if not ordered:  # every trial would train the same configuration
        raise SearchSpaceError(f"{path}: no parameters to search (a key such as train.epochs)")
    check_values(path, ordered, config)
    return SearchSpace(path, ordered, _first_trials(path, first, ordered))


def _first_trials(path: Path, value: Any, params: tuple[Param, ...]) -> tuple[dict[str, Any], ...]:
    """Check `first_trials:`: a list of {searched key: value inside its range}, where a
    conditional key comes with the key its range depends on."""
    if value is None:
        return ()
    where = f"{path}: {FIRST_TRIALS_KEY}"
    if not isinstance(value, list) or not all(isinstance(p, dict) and p for p in value):
        raise SearchSpaceError(
            f"{where}: expected a list of mappings such as [{{train.epochs: 3}}], got "
            f"{_describe(value)}"
        )
    keys = [p.key for p in params]
    for i, point in enumerate(value):
        for key in point:
            if key not in keys:
                raise SearchSpaceError(
                    f"{where}[{i}]: {key} is not searched here{_did_you_mean(str(key), keys)}"
                )
        given: dict[str, Any] = {}
        for param in params:
            if param.key not in point:
                continue
            missing = [b.cond_key for b in param.branches if b.cond_key not in point]
            if missing:
                raise SearchSpaceError(
                    f"{where}[{i}]: {param.key}'s range depends on {missing[0]}; give it too"
                )
            _, dist = param.distribution(given)
            _, problem = fit_value(point[param.key], dist)
            if problem:
                raise SearchSpaceError(
                    f"{where}[{i}]: {param.key}={point[param.key]!r} is {problem}"
                )
            given[param.key] = point[param.key]
    return tuple(dict(p) for p in value)


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


# YAML 1.1 (PyYAML) reads `5e-5`, `1e3` and `1.0e3` as strings: a float's exponent needs a dot
# and a sign there. Read them as floats everywhere (first_trials, `if:` values, choices), as
# OmegaConf does.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


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


def _yaml_problem(exc: yaml.YAMLError) -> str:
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        return f"{exc.problem or exc.context} (line {mark.line + 1}, column {mark.column + 1})"
    return str(exc)
