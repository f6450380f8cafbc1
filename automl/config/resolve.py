"""Composed DictConfig <-> typed Config <-> plain dict (for Ray workers, MLflow and provenance)."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from automl.config.schema import Config
from automl.config.values import validate


def to_config(cfg: DictConfig | Config) -> Config:
    """Resolve a composed DictConfig into the typed dataclass tree (and validate values)."""
    if isinstance(cfg, Config):
        conf = cfg
    else:
        obj = OmegaConf.to_object(cfg)
        if not isinstance(obj, Config):
            obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), cfg))
        assert isinstance(obj, Config)
        conf = obj
    validate(conf)
    return conf


def as_dict(conf: Config) -> dict[str, Any]:
    """Plain nested dict of the config (for Ray workers, MLflow and provenance files)."""
    container = OmegaConf.to_container(OmegaConf.structured(conf), resolve=True)
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


def from_dict(data: dict[str, Any]) -> Config:
    """Inverse of `as_dict`: rebuild the typed config (e.g. inside a Ray worker)."""
    merged = OmegaConf.merge(OmegaConf.structured(Config), data)
    assert isinstance(merged, DictConfig)
    return to_config(merged)
