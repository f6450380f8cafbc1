"""What a sweep was started with. Its trials are compared with each other (by the sampler, by the
export), so a resume or an extension must train on the same data, model and search space: one
that changed would mix trials whose scores do not compare. Such a resume is refused in one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from automl.config.resolve import leaf_values
from automl.config.schema import ConfigError
from automl.data.fingerprint import fingerprint_mismatch

# `data` is not among them: its fingerprint (the splits' texts and labels, `check_same_data`)
# says whether the data is the same, wherever the files now are
FIXED_SECTIONS = ("model", "train", "peft")
# where and how fast a trial runs, not what it learns: a resume may change them
FREE_KEYS = frozenset(
    {"train.num_threads", "train.device", "train.eval_batch_size", "model.trust_remote_code"}
)
DATA_KEY = "data fingerprint"


def started_with(
    config: Mapping[str, Any],
    searched: Mapping[str, Any],
    sweep_keys: Mapping[str, Any],
    models: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The values that decide what a trial learns and how it is scored: the config's model,
    train and peft values the search space does not sample (and that its model source reads:
    a packaged model's `name_or_path`, which a multirun job may carry for another job, is
    not), each searched key's spec
    (`searched`: key -> its spec, as in the YAML) and the objective (`sweep_keys`). Where the
    space chooses the model, each choice's section (`models`, as its trials train it) stands
    for the config's own, which no trial reads."""
    unread = {"model.name_or_path"} if config["model"].get("source") != "pretrained" else set()
    sections = [s for s in FIXED_SECTIONS if not (models and s == "model")]
    fixed = {
        key: json.dumps(same_folder(key, value), sort_keys=True)
        for section in sections
        for key, value in leaf_values(config[section], f"{section}.").items()
        if key not in FREE_KEYS and key not in searched and key not in unread
    }
    chosen = {
        f"{MODEL_CHOICE_PREFIX}{name}{key[len('model') :]}": json.dumps(
            same_folder(key, value), sort_keys=True
        )
        for name, section in (models or {}).items()
        for key, value in leaf_values(section, "model.").items()
        if key not in FREE_KEYS
    }
    ranges = {f"{SPACE_PREFIX}{k}": json.dumps(v, sort_keys=True) for k, v in searched.items()}
    return {**fixed, **chosen, **ranges, **{k: json.dumps(v) for k, v in sweep_keys.items()}}


def base_files(models: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """The files of each local base-model folder (`models`: a name -> its model section), by
    hash: the same path may hold other weights on a resume (a base re-trained, another export
    copied over), and the resumed trials and the export would silently build on them."""
    from automl.export.portable import folder_sha256

    out = {}
    for name, section in models.items():
        folder = Path(str(section.get("name_or_path") or "")).expanduser()
        if section.get("source") == "pretrained" and folder.is_dir():
            out[f"{name} files (sha256)"] = json.dumps(folder_sha256(folder)[:16])
    return out


SPACE_PREFIX = "search space "
# a choice of the space's `model` key, by its settings (`model=tiny_bert.max_length`); a sweep
# from before 2026-12-06 (night) recorded none and is not judged by them
MODEL_CHOICE_PREFIX = "model="


def same_folder(key: str, value: Any) -> Any:
    """A local model folder by its absolute path: `./models/x` and `/work/models/x` are one."""
    if key == "model.name_or_path" and isinstance(value, str) and value and Path(value).is_dir():
        return str(Path(value).resolve())
    return value


def check_same_start(sweep: str, before: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """A resume or extension must keep what the sweep started with (nothing recorded, as by
    sweeps from before this check: nothing to compare)."""
    if not before:
        return
    # a value only one side has is a config key a newer version added (or an older one had);
    # a searched key only one side has is a changed search space
    keys = (set(before) & set(now)) | {
        k for k in set(before) ^ set(now) if k.startswith(SPACE_PREFIX)
    }
    changed = [
        f"{key}: {before.get(key, '(none)')}, now {now.get(key, '(none)')}"
        for key in sorted(keys)
        if key != DATA_KEY and before.get(key) != now.get(key)
    ]
    if changed:
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        raise ConfigError(
            f"config: sweep.resume: sweep {sweep!r} was started with other values, so its "
            f"trials would not compare: {'; '.join(changed[:3])}{more}; resume it with the "
            "values it started with, or start a new sweep.name (sweep.warm_start="
            + sweep
            + " carries its best configurations over)"
        )


def data_identity(fingerprint: dict[str, Any], label_names: list[str]) -> dict[str, Any]:
    """What a sweep records of its data to resume on: the fingerprint (the rows) and the
    classes in their order (the ids its checkpoints' heads output)."""
    return {**fingerprint, "label_names": list(label_names)}


def data_change(before: Mapping[str, Any], fingerprint: dict[str, Any]) -> str | None:
    """How the data differs from what a sweep recorded when it started (`before`: its start
    values), or None (also where it recorded none). The same rows with their classes numbered
    otherwise (a Hugging Face ClassLabel re-encoded) differ too: the earlier trials' heads
    would export under the new names."""
    recorded = before.get(DATA_KEY)
    if not recorded:
        return None
    problem = fingerprint_mismatch(recorded, fingerprint)
    then, now = recorded.get("label_names"), fingerprint.get("label_names")
    if problem is None and then is not None and now is not None and then != now:
        at = next(
            (i for i, (a, b) in enumerate(zip(then, now, strict=False)) if a != b),
            min(len(then), len(now)),
        )
        was = then[at] if at < len(then) else None
        is_ = now[at] if at < len(now) else None
        return (
            f"classes differ in order or number: class {at} was {was!r}, now {is_!r} "
            f"({len(then)} classes, now {len(now)})"
        )
    return problem


def check_same_data(sweep: str, before: Mapping[str, Any], fingerprint: dict[str, Any]) -> None:
    """The same data files may hold other rows now (new data came): the fingerprint tells."""
    problem = data_change(before, fingerprint)
    if problem:
        raise ConfigError(
            f"config: sweep.resume: sweep {sweep!r} was started on other data ({problem}), so "
            f"its trials would not compare; start a new sweep.name (sweep.warm_start={sweep} "
            "carries its best configurations over)"
        )
