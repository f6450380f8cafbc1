"""The export's model card travels with the MLflow model when it parses, and never blocks
registration when it does not."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from automl.tracking.registry import _card, license_text


def test_a_card_that_does_not_parse_is_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good, bad = tmp_path / "good.md", tmp_path / "bad.md"
    good.write_text("---\nlicense: mit\n---\n# model\n")
    bad.write_text("---\nlicense: [unclosed\n---\n# model\n")
    assert _card(good).data.license == "mit"
    assert _card(tmp_path / "missing.md") is None
    with caplog.at_level(logging.WARNING, logger="automl.tracking.registry"):
        assert _card(bad) is None
    assert "not passed to MLflow" in caplog.text


def test_the_mlflow_models_license_file_names_the_base_models_license(tmp_path: Path) -> None:
    card = tmp_path / "README.md"
    card.write_text("---\nbase_model: sentence-transformers/all-MiniLM-L6-v2\n"
                    "license: apache-2.0\n---\n# model\n")  # fmt: skip
    text = license_text(_card(card))
    assert "sentence-transformers/all-MiniLM-L6-v2" in text and "declares: apache-2.0." in text
    assert "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2" in text
    card.write_text(f"---\nbase_model: {tmp_path}/my-model\n---\n# model\n")
    text = license_text(_card(card))
    assert "No license was read" in text and "huggingface.co" not in text  # a local path
    card.write_text("---\nbase_model: ./my-model\n---\n# model\n")
    assert "huggingface.co" not in license_text(_card(card))  # a relative path is no Hub id
    assert "could not be read" in license_text(None)
    card.write_text("---\nlicense: mit\n---\n# model\n")  # a local or tiny base: no Hub id
    assert "from the base model its model card names (model_card.md)." in license_text(_card(card))
