"""Configuration: the typed schemas under `conf/`, their value rules, and search-space files.

`conf/*.yaml` (Hydra) -> `Config` (typed, validated); `search_spaces/*.yaml` -> `SearchSpace`
(Optuna distributions, validated against the resolved config). Nothing here computes.
"""

from automl.config.resolve import as_dict, from_dict, to_config
from automl.config.schema import (
    CONF_DIR,
    PROJECT_ROOT,
    SEARCH_SPACE_DIR,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    PathsConfig,
    PeftConfig,
    PrunerConfig,
    RayConfig,
    ResourcesConfig,
    SamplerConfig,
    SweepConfig,
    TrackingConfig,
    TrainConfig,
    register_configs,
)
from automl.config.values import validate

__all__ = [
    "CONF_DIR", "PROJECT_ROOT", "SEARCH_SPACE_DIR", "Config", "ConfigError", "DataConfig",
    "ModelConfig", "PathsConfig", "PeftConfig", "PrunerConfig", "RayConfig", "ResourcesConfig",
    "SamplerConfig", "SweepConfig", "TrackingConfig", "TrainConfig", "as_dict", "from_dict",
    "register_configs", "to_config", "validate",
]  # fmt: skip
