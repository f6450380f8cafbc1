"""The export's model card travels with the MLflow model when it parses, and never blocks
registration when it does not."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from automl.tracking.registry import _card


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
