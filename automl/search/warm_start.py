"""Warm start: seed a new sweep with the best configurations of an earlier one.

`sweep.warm_start=<sweep name or its outputs folder>` reads that sweep's summary.json, takes its
top `sweep.warm_start_top_k` trials by its own metric, and turns their hyperparameters (stored as
dotted keys) back into the Optuna parameter names this search space uses, including the branch
name of a conditional parameter (`train.learning_rate[peft.lora_rank=0]`). Ray's OptunaSearch
enqueues them, so they are the sweep's first trials. A value outside the new space is clipped
(numbers) or left to the sampler (a choice the space no longer has), with a warning line.

A search space's `first_trials:` (configurations known to work, checked when the space loads)
go the same way, after the earlier sweep's: the search starts from them and the sampler fills
in the keys they leave out.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from automl.config.paths import read_json_object
from automl.config.schema import Config, ConfigError, metric_mode
from automl.config.search_space import SearchSpace
from automl.config.space_params import MODEL_KEY, fit_value, same_value
from automl.search.identity import same_folder
from automl.search.pareto import rank_key

log = logging.getLogger("automl.sweep")

SAMPLER = "sampler"  # the origin of a trial the sampler chose
WARM_ORIGIN = "warm_start:"  # + <sweep>/<trial_id>: an earlier sweep's trial
FIRST_ORIGIN = "first_trials"  # + [i]: the search space's i-th first trial


@dataclass(frozen=True)
class WarmPoint:
    origin: str  # "warm_start:<sweep>/<trial_id>"
    optuna: dict[str, Any]  # Optuna names -> values: what OptunaSearch enqueues
    dotted: dict[str, Any]  # the same values by config key: how a trial's record shows them


@dataclass(frozen=True)
class WarmStart:
    source: Path | None  # the earlier sweep's summary.json (None: only the space's first trials)
    points: tuple[WarmPoint, ...]
    notes: tuple[str, ...] = field(default=())
    claimed: set[str] = field(default_factory=set, compare=False)  # origins already given out

    @property
    def points_to_evaluate(self) -> list[dict[str, Any]]:
        return [dict(p.optuna) for p in self.points]

    def origin_of(self, params: Mapping[str, Any]) -> str:
        """`warm_start:<sweep>/<trial>` for the first trial (in start order) that runs a warm
        point, else `sampler`: a seeded sampler may later propose the very same values."""
        for point in self.points:
            if point.origin in self.claimed:
                continue
            if _within(point.dotted, params):
                self.claimed.add(point.origin)
                return point.origin
        return SAMPLER

    def claim(self, origins: Iterable[str]) -> None:
        """Points that trials already ran (earlier rounds, a resumed round's restored records):
        a later trial with the same values is the sampler's. The rest may still run in a later
        round: the study holds them as waiting trials when the budget ended the round first,
        and enqueues again one a trial took but never trained an epoch of (search/study.py)."""
        self.claimed.update(o for o in origins if o != SAMPLER)

    def describe(self) -> str:
        earlier = sum(p.origin.startswith(WARM_ORIGIN) for p in self.points)
        parts = [f"{earlier} configurations from {self.source}"] if earlier else []
        if len(self.points) > earlier:
            parts.append(f"{len(self.points) - earlier} from the search space's first_trials")
        return "warm start: " + "; ".join(parts)


def summary_path(ref: str, output_dir: str) -> Path:
    """A sweep's outputs folder, or its name under paths.output_dir -> its summary.json."""
    for folder in (Path(ref).expanduser(), Path(output_dir) / ref):
        if (folder / "summary.json").is_file():
            return folder / "summary.json"
    where = Path(output_dir) / ref / "summary.json"
    raise ConfigError(
        f"config: sweep.warm_start: no summary.json at {ref}/ or {where} (not a finished sweep?)"
    )


def top_trials(summary: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """The k best scored trials of a summary, by its own metric (in the direction it improves:
    a summary of an older version may record `max` for val_loss)."""
    rows = [
        r
        for r in summary.get("trials", [])
        if isinstance(r.get("best_value"), int | float) and r.get("status") != "failed"
    ]
    mode = metric_mode(summary.get("metric", ""))  # ties as the export breaks them
    return sorted(rows, key=lambda r: rank_key(r, mode), reverse=True)[:k]


def load_warm_start(conf: Config, space: SearchSpace) -> WarmStart | None:
    """What the sweep runs first, before any compute: an earlier sweep's best trials
    (`sweep.warm_start`), then the search space's own `first_trials`."""
    warm = _earlier_sweep(conf, space) if conf.sweep.warm_start else None
    points = list(warm.points) if warm else []
    from_earlier = len(points)
    for i, values in enumerate(space.first_trials):
        optuna_params, dotted, _ = to_optuna_point(space, values)  # keys left out are sampled
        earlier_best = next((p for p in points[:from_earlier] if _covers(p, dotted)), None)
        if earlier_best is not None:
            log.info("first_trials[%d] is what %s runs: not run twice", i, earlier_best.origin)
        elif all(p.dotted != dotted for p in points):
            points.append(WarmPoint(f"{FIRST_ORIGIN}[{i}]", optuna_params, dotted))
    if not points:
        return None
    return WarmStart(warm.source if warm else None, tuple(points), warm.notes if warm else ())


def _earlier_sweep(conf: Config, space: SearchSpace) -> WarmStart:
    """Read, rank and translate the earlier sweep's best trials."""
    s = conf.sweep
    assert s.warm_start
    path = summary_path(s.warm_start, conf.paths.output_dir)
    try:
        summary = read_json_object(path, ("trials",), "a sweep summary", ConfigError)
    except ConfigError as err:
        raise ConfigError(f"config: sweep.warm_start: {err}") from None
    trials = summary["trials"]
    if not isinstance(trials, list) or not all(
        isinstance(r, dict) and isinstance(r.get("trial_id"), str) for r in trials
    ):
        raise ConfigError(
            f"config: sweep.warm_start: {path}: not a sweep summary (its trials are not rows "
            "with a trial_id)"
        )
    rows = top_trials(summary, s.warm_start_top_k)
    if not rows:
        raise ConfigError(f"config: sweep.warm_start: {path}: no scored trial to start from")
    points: list[WarmPoint] = []
    notes: list[str] = []
    earlier = _earlier_config(path.parent)
    fixed = _fixed_settings(earlier, space, asdict(conf.model))  # trained with, unsearched
    earlier_name = str(summary.get("sweep", path.parent.name))
    for row in rows:
        origin = f"{WARM_ORIGIN}{earlier_name}/{row['trial_id']}"
        params = {**fixed, **(row.get("params") or {})}
        optuna_params, dotted, row_notes = to_optuna_point(space, params)
        notes += [f"warm start {origin}: {n}" for n in row_notes]
        if dotted and all(p.dotted != dotted for p in points):  # clipping can make twins
            points.append(WarmPoint(origin, optuna_params, dotted))
    notes += _same_seed(conf, earlier)
    if MODEL_KEY not in space.keys:  # (where the space searches it, each point has its own)
        notes += _other_model(conf, earlier, rows, earlier_name)
    for note in notes:
        log.warning("%s", note)
    return WarmStart(path, tuple(points), tuple(notes))


def _within(values: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """Whether `params` set every one of `values` (and maybe more keys)."""
    return all(k in params and same_value(params[k], v) for k, v in values.items())


def _covers(point: WarmPoint, values: Mapping[str, Any]) -> bool:
    """Whether `point` runs `values` (and maybe more keys): a first trial an earlier best
    already runs would be a twin."""
    return _within(values, point.dotted)


def _earlier_config(earlier_dir: Path) -> dict[str, Any]:
    """The earlier sweep's config.json, read once ({} where it cannot be read)."""
    try:
        earlier = json.loads((earlier_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return earlier if isinstance(earlier, dict) else {}


def _fixed_settings(
    earlier: dict[str, Any], space: SearchSpace, base_model: Mapping[str, Any]
) -> dict[str, Any]:
    """The earlier sweep's own settings of keys this space searches and it did not: its trials
    trained with them, so a warm point runs them too rather than a random draw (the earlier
    trial's searched values replace them). Its model, where this space chooses one: the
    choice that stands for the same model section (`minilm` for the default's model)."""
    out: dict[str, Any] = {}
    for key in space.keys:
        node: Any = earlier
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if key == MODEL_KEY and isinstance(node, dict):
            choice = _same_model(node, space.models, base_model)
            if choice is not None:
                out[key] = choice
        elif node is not None and not isinstance(node, dict | list):
            out[key] = node
    return out


def _same_model(
    section: Mapping[str, Any], choices: tuple[str, ...], base_model: Mapping[str, Any]
) -> str | None:
    """The choice whose model section is `section` (trust_remote_code aside: a permission,
    not the model), or None."""
    from automl.model.choices import model_section

    def key(values: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if k != "trust_remote_code"}

    for choice in choices:
        try:
            if key(model_section(choice, base_model)) == key(section):
                return choice
        except ValueError:  # a choice's file that does not read: the plan says so
            continue
    return None


def _model_identity(section: Mapping[str, Any]) -> tuple[Any, ...]:
    """Which model a config's model section loads (its max_length or permission aside)."""
    source = section.get("source")
    if source == "package":
        return (source, section.get("package"))
    if source == "tiny":
        sizes = ("tiny_arch", "tiny_layers", "tiny_hidden", "tiny_heads", "tiny_intermediate")
        return (source, *(section.get(k) for k in sizes))
    return (source, same_folder("model.name_or_path", section.get("name_or_path")))


def _other_model(
    conf: Config, earlier: dict[str, Any], rows: list[dict[str, Any]], sweep: str
) -> list[str]:
    """Values tuned for another model (a new model version, the intended use) are a starting
    guess: said, since learning rates rarely carry over between models as they are. The model
    each warm row trained: the earlier sweep's, or the one its space chose for the row. The
    earlier sweep's own export, fine-tuned on (new data), is its model carried on: not said."""
    from automl.export.portable import export_provenance
    from automl.model.choices import model_section

    section = earlier.get("model")
    if not isinstance(section, dict):
        return []
    folder = Path(conf.model.name_or_path).expanduser()
    if conf.model.source == "pretrained" and folder.is_dir():
        lineage = export_provenance(folder) or {}
        if lineage.get("sweep") == sweep:
            return []
    now = _model_identity(asdict(conf.model))
    trained = []
    for row in rows:
        choice = (row.get("params") or {}).get(MODEL_KEY)
        try:
            chosen = model_section(choice, section) if isinstance(choice, str) else section
        except ValueError:  # a choice's file that does not read: its model is unknown
            continue
        trained.append(_model_identity(chosen))
    was = next((t for t in trained if t != now), None)
    if was is None:
        return []

    def name(identity: tuple[Any, ...]) -> str:
        return f"a tiny random {identity[1]}" if identity[0] == "tiny" else str(identity[1])

    return [
        f"warm start: the earlier sweep trained {name(was)}, this one {name(now)}: its "
        "values are a starting guess for another model"
    ]


def _same_seed(conf: Config, earlier: dict[str, Any]) -> list[str]:
    """A seeded sampler on the same space proposes the earlier sweep's random trials again."""
    same = earlier.get("sampler", {}).get("seed") == conf.sampler.seed
    if same and earlier.get("search_space") == conf.search_space:
        return [
            f"warm start: sampler.seed={conf.sampler.seed} and search space "
            f"{conf.search_space!r} are the earlier sweep's: its first random trials repeat "
            "the earlier ones; set another sampler.seed to explore elsewhere"
        ]
    return []


def to_optuna_point(
    space: SearchSpace, params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Dotted params of an earlier trial -> (Optuna names -> values, dotted values, notes).

    Walks the space in file order, as `SearchSpace.suggest` does, so a conditional parameter
    gets the branch that the (possibly clipped) earlier values select."""
    optuna_params: dict[str, Any] = {}
    values: dict[str, Any] = {}
    notes = [f"{k} is not searched here; ignored" for k in params if k not in space.keys]
    for param in space.params:
        if param.key not in params:
            notes.append(f"{param.key}: not in the earlier trial; left to the sampler")
            continue
        unknown = [b.cond_key for b in param.branches if b.cond_key not in values]
        if any(c in space.keys for c in unknown):
            notes.append(f"{param.key}: depends on {unknown[0]}, left to the sampler; so is this")
            continue
        name, dist = param.distribution(values)
        value, problem = fit_value(params[param.key], dist)
        if problem:
            done = "left to the sampler" if value is None else f"clipped to {value}"
            notes.append(f"{param.key}={params[param.key]!r}: {problem}; {done}")
        if value is None:
            continue
        optuna_params[name], values[param.key] = value, value
    return optuna_params, values, notes


def warm_points(
    warm: WarmStart | None, round_: int, records: list[Any]
) -> list[dict[str, Any]] | None:
    """What OptunaSearch enqueues: the warm points in a fresh sweep's first round, else None
    (an extension round shares the Optuna study, which already ran them)."""
    if warm is None or round_ > 0 or records:
        return None
    return warm.points_to_evaluate
