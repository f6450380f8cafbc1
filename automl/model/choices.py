"""The model as a search dimension: a search space's ``model`` key lists models to choose from.

A choice is a config name in ``conf/model/`` (``minilm``, ``tiny_bert``, ...) or anything else
`from_pretrained` takes (a local folder, a hub id). It stands for a whole ``model`` config
section, so one sampled value swaps the model, its tokenizer and its ``max_length`` together.
The expansion lives here, in one place, so a trial, the export, `automl-export` and
`automl-reproduce` all rebuild the same model from the same recorded choice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import yaml

from automl.config.schema import CONF_DIR, ModelConfig
from automl.config.space_params import MODEL_KEY

__all__ = ["MODEL_KEY", "anchored", "model_config", "model_section", "tokenization_key"]
MODEL_CONF_DIR = CONF_DIR / "model"
# the base model section's settings a Hub id or folder choice keeps (the user's, not the
# model's); a conf/model choice takes its file's
CARRIED_KEYS = ("max_length", "trust_remote_code")


def config_names() -> list[str]:
    """Model config names a choice may use (``hf`` needs a name_or_path, so it is not one)."""
    return sorted(p.stem for p in MODEL_CONF_DIR.glob("*.yaml") if p.stem != "hf")


def model_section(choice: str, base: Mapping[str, Any]) -> dict[str, Any]:
    """The full ``model`` config section (a plain dict) that `choice` stands for.

    A config name takes that file's values over the schema's defaults. Anything else is a
    pretrained model; it keeps the base section's ``max_length`` and ``trust_remote_code``
    (the user's settings, not the model's). A relative folder stays relative (portable in
    records); `anchored` pins it for trials, which Ray runs in folders of their own.
    """
    defaults = asdict(ModelConfig())
    named = MODEL_CONF_DIR / f"{choice}.yaml"
    if choice in config_names() and named.is_file():
        return _named_section(named)
    return {
        **defaults,
        "source": "pretrained",
        "name_or_path": choice,
        **{key: base.get(key, defaults[key]) for key in CARRIED_KEYS},
    }


def _named_section(path: Path) -> dict[str, Any]:
    """A conf/model file over the schema's defaults, typed as Hydra would: a misspelt key
    (`max_lenght`) or a wrong type is one line naming the file, not a TypeError traceback."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    where = f"{path.parent.name}/{path.name}"
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{where}: not valid YAML ({' '.join(str(err).split())})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of model settings")
    values.pop("defaults", None)  # Hydra's own list, not a setting
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), values)
    except OmegaConfBaseException as err:
        problem = " ".join(str(err).split("\n")[0].split())
        key = getattr(err, "full_key", None)
        raise ValueError(f"{where}: {key + ': ' if key else ''}{problem}") from None
    section = OmegaConf.to_container(merged)
    assert isinstance(section, dict)
    return {str(k): v for k, v in section.items()}


def model_config(choice: str, base: Mapping[str, Any]) -> ModelConfig:
    return ModelConfig(**model_section(choice, base))


def anchored(cfg: ModelConfig) -> ModelConfig:
    """The same model with a relative local folder made absolute (from where the sweep runs)."""
    folder = Path(cfg.name_or_path).expanduser()
    if cfg.source != "pretrained" or not folder.is_dir():
        return cfg
    if folder.is_absolute() and not cfg.name_or_path.startswith("~"):
        return cfg
    return replace(cfg, name_or_path=str(folder.resolve()))


def tokenization_key(cfg: ModelConfig) -> tuple[str, str, str, int]:
    """Models with the same key read the same token ids, so they share one tokenization."""
    if cfg.source == "tiny":  # tiny models borrow the packaged tokenizer (model/load.py)
        return ("package", cfg.package, "", cfg.max_length)
    return (cfg.source, cfg.package if cfg.source == "package" else "", cfg.name_or_path,
            cfg.max_length)  # fmt: skip
