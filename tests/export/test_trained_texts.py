"""An export records which texts it trained on (its base model's too): fine-tuned again on new
data, the new split's test texts that the earlier export trained on are no held-out score."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import make_tiny_config

from automl.config.schema import ModelConfig
from automl.export import card as model_card
from automl.export.evaluation import with_base_trained
from automl.export.portable import portable_model_provenance
from automl.export.trained_texts import (
    TRAINED_TEXTS_FILE,
    BaseTexts,
    base_trained_texts,
    text_key,
    write_trained_texts,
)

EVALUATION = {"num_examples": 3, "accuracy": 0.5, "macro_f1": 0.5, "balanced_accuracy": 0.5}


def _earlier_export(folder: Path) -> Path:
    """A folder with the provenance an export of this project writes."""
    folder.mkdir(parents=True)
    details = portable_model_provenance(replace(make_tiny_config(), model=ModelConfig()), {})
    provenance = {"sweep": "v1", "trial_id": "t1", "best_value": 0.9, **details}
    (folder / "provenance.json").write_text(json.dumps(provenance))
    return folder


def test_the_test_texts_an_earlier_export_trained_on_count_as_seen(tmp_path: Path) -> None:
    v1 = _earlier_export(tmp_path / "v1" / "best")
    write_trained_texts(v1, ["Hello  World", "bye"])
    base = base_trained_texts(str(v1))
    assert base == BaseTexts(frozenset({text_key("hello world"), text_key("bye")}))
    assert "Hello" not in (v1 / TRAINED_TEXTS_FILE).read_text()  # keys, not the texts
    # the new split's test: one text v1 trained on, one this sweep's training holds, one new
    seen, noted = with_base_trained([False, True, False], ["hello world", "x", "new"], base, "v1")
    assert seen == [True, True, False] and noted == {"base_model_trained_on": 1}
    card = "\n".join(model_card.test_result_lines({**EVALUATION, **noted}))
    assert "1 of the test texts the base model (an earlier export) trained on" in card
    # v2, fine-tuned from v1, carries v1's texts on (a third round judges by both)
    v2 = _earlier_export(tmp_path / "v2" / "best")
    write_trained_texts(v2, ["third"], base)
    assert base_trained_texts(str(v2)) == BaseTexts(base.keys | {text_key("third")})


def test_an_export_without_the_record_is_said_to_be_unknown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = _earlier_export(tmp_path / "old" / "best")  # exported before the record existed
    with caplog.at_level(logging.WARNING, logger="automl.export.trained_texts"):
        unknown = base_trained_texts(str(old))
    assert unknown == BaseTexts(complete=False)
    assert "without a readable trained_texts.json" in caplog.text
    seen, noted = with_base_trained([False, True], ["a", "b"], unknown, str(old))
    assert seen == [False, True] and noted == {"base_model_training_texts": "unknown"}
    card = "\n".join(model_card.test_result_lines({**EVALUATION, **noted}))
    assert "does not record all its training texts" in card
    # v2, fine-tuned from it: its record is incomplete, and what it holds still counts (a
    # third round marks v2's own texts as seen, and is told there may be more)
    v2 = _earlier_export(tmp_path / "v2" / "best")
    write_trained_texts(v2, ["c"], unknown)
    with caplog.at_level(logging.WARNING, logger="automl.export.trained_texts"):
        partial = base_trained_texts(str(v2))
    assert partial == BaseTexts(frozenset({text_key("c")}), complete=False)
    assert "fine-tuned from an export whose training texts are not all recorded" in caplog.text
    seen, noted = with_base_trained([False, False], ["C", "new"], partial, str(v2))
    assert seen == [True, False]
    assert noted == {"base_model_trained_on": 1, "base_model_training_texts": "unknown"}
    card = "\n".join(model_card.test_result_lines({**EVALUATION, **noted}))
    assert "1 of the test texts the base model" in card and "does not record all" in card
    # any other model trained on nothing of ours: nothing to add, nothing said
    plain = tmp_path / "plain"
    plain.mkdir()
    assert base_trained_texts(str(plain)) == BaseTexts() == base_trained_texts("bert-base")
    seen, noted = with_base_trained([False], ["a"], BaseTexts(), "bert-base")
    assert (seen, noted) == ([False], {})
    assert "base model" not in "\n".join(model_card.test_result_lines(EVALUATION))


def test_the_export_records_left_out_of_a_base_folders_hash_are_the_files_it_writes() -> None:
    """A record file missing from the list would change a base's hash on every evaluation,
    and models fine-tuned from it would be refused as trained on another base."""
    from automl.export.evaluation import EVALUATION_FILE
    from automl.export.portable import EXPORT_RECORDS

    assert {EVALUATION_FILE, TRAINED_TEXTS_FILE, "README.md", "provenance.json"} == EXPORT_RECORDS


def test_a_record_whose_keys_are_made_otherwise_matches_nothing(tmp_path: Path) -> None:
    v1 = _earlier_export(tmp_path / "v1" / "best")
    write_trained_texts(v1, ["a"])
    record = json.loads((v1 / TRAINED_TEXTS_FILE).read_text())
    (v1 / TRAINED_TEXTS_FILE).write_text(json.dumps({**record, "key": "md5 of the text"}))
    assert base_trained_texts(str(v1)) == BaseTexts(complete=False)
