"""Composed DictConfig <-> typed Config <-> plain dict (for Ray workers, MLflow and provenance)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from automl.config.schema import Config, ConfigError, metric_mode
from automl.config.values import validate


def to_config(
    cfg: DictConfig | Config, recorded: bool = False, swept_groups: Collection[str] = ()
) -> Config:
    """Resolve a composed DictConfig into the typed dataclass tree (and validate values).
    `recorded`: a config read back from a run's files, whose metric and mode were settled
    when it ran (older versions let `sweep.mode=max` stand for val_loss). `swept_groups`: the
    config groups a multirun sweeps (`-m model=minilm,hf model.name_or_path=...`), whose jobs
    may carry a setting only another of the group's options reads."""
    if isinstance(cfg, Config):
        conf = cfg
    else:
        unknown = unknown_keys(cfg, OmegaConf.structured(Config))
        if unknown:
            raise ConfigError(f"config: {unknown[0]}: no such setting (a typo? see conf/)")
        obj = OmegaConf.to_object(cfg)
        if not isinstance(obj, Config):
            obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), cfg))
        assert isinstance(obj, Config)
        conf = obj
    if conf.sweep.mode == "auto":
        conf.sweep.mode = metric_mode(conf.sweep.metric)
    _expand_home(conf)
    validate(conf, recorded, swept_groups)
    return conf


# Data read from a path: `data.path='~/x.csv'` reaches us unexpanded (no shell expands a `~`
# after `data.path=`), and the files were then "not found". (`model.name_or_path` is expanded
# where it is read: the recorded value is what a resume and a warm start compare.)
_HOME_PATHS = ("path", "val_path", "test_path", "hf_name")


def _expand_home(conf: Config) -> None:
    for key in _HOME_PATHS:
        value = getattr(conf.data, key)
        if isinstance(value, str) and value.startswith("~"):
            try:
                setattr(conf.data, key, str(Path(value).expanduser()))
            except RuntimeError:  # `~nobody/x.csv`: no such user; left to "file not found"
                pass


def unknown_keys(cfg: DictConfig, schema: DictConfig, prefix: str = "") -> list[str]:
    """Keys of the composed config that the schema lacks. Hydra lets `+train.epoch=3` add one
    (its own error for `train.epoch=3` suggests the `+`), and the typed config would drop it
    without a word: the user's setting would silently not apply."""
    unknown = []
    for key in map(str, cfg):
        name = f"{prefix}{key}"
        if key not in schema:
            unknown.append(name)
            continue
        node, known = cfg._get_node(key), schema._get_node(key)
        if not (isinstance(node, DictConfig) and isinstance(known, DictConfig)):
            continue
        if not known._is_none() and OmegaConf.get_type(known) is not dict:  # a dataclass
            unknown += unknown_keys(node, known, f"{name}.")
    return unknown


def as_dict(conf: Config) -> dict[str, Any]:
    """Plain nested dict of the config (for Ray workers, MLflow and provenance files)."""
    container = OmegaConf.to_container(OmegaConf.structured(conf), resolve=True)
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


def from_dict(data: dict[str, Any]) -> Config:
    """Inverse of `as_dict`: rebuild the typed config (e.g. inside a Ray worker). A recorded
    config (a sweep's config.json, an export's provenance) that this version cannot read (a
    setting another version had, a value edited by hand) is one line naming the key."""
    from omegaconf.errors import OmegaConfBaseException

    try:
        merged = OmegaConf.merge(OmegaConf.structured(Config), data)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        why = str(getattr(err, "msg", None) or err).splitlines()[0]
        raise ConfigError(
            f"config: {key}: the recorded config does not fit this version's settings ({why}): "
            "written by another version of finetune-automl, or edited?"
        ) from None
    assert isinstance(merged, DictConfig)
    return to_config(merged, recorded=True)


def leaf_values(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested config as {dotted key: value} (`train.learning_rate`: 0.002)."""
    out: dict[str, Any] = {}
    for name, value in config.items():
        dotted = f"{prefix}{name}"
        out.update(
            leaf_values(value, f"{dotted}.") if isinstance(value, Mapping) else {dotted: value}
        )
    return out
