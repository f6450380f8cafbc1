"""The exported model's card declares its base model's license (a fine-tune inherits it) when
the base model's own card is at hand, and nothing it cannot know."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import yaml
from conftest import make_tiny_config

from automl.config.schema import ModelConfig
from automl.export.card import base_model_license, model_card

PROVENANCE = {"sweep": "unit", "best_value": 0.9, "trial_id": "t1", "base_model": "base"}


def front_matter(card: str) -> dict:
    _, front, _ = card.split("---\n", 2)
    return yaml.safe_load(front)


def test_the_packaged_minilm_card_declares_apache_2() -> None:
    conf = replace(make_tiny_config(), model=ModelConfig())  # the embedded default model
    assert base_model_license(conf.model) == "apache-2.0"
    assert front_matter(model_card(conf, PROVENANCE, ["a", "b"]))["license"] == "apache-2.0"


def test_a_local_base_model_passes_its_license_on(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n# my model\n")
    model = ModelConfig(source="pretrained", name_or_path=str(tmp_path))
    assert base_model_license(model) == "mit"
    (tmp_path / "README.md").write_text("---\nlicense: [mit, apache-2.0]\n---\n")
    assert base_model_license(model) == "mit, apache-2.0"  # a list, not its Python repr


def test_no_card_no_license(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("# a card without front matter\n")
    local = ModelConfig(source="pretrained", name_or_path=str(tmp_path))
    uncached = ModelConfig(source="pretrained", name_or_path="someone/not-in-any-cache")
    assert base_model_license(local) is None and base_model_license(uncached) is None
    conf = make_tiny_config()  # a random tiny model has no base card at all
    assert base_model_license(conf.model) is None
    assert "license" not in front_matter(model_card(conf, PROVENANCE, ["a", "b"]))
