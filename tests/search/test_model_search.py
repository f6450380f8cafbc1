"""A sweep that chooses the model, on a user's CSV: two model folders with different tokenizers
and depths.

Each trial must train on its own model's token ids (a word-level vocabulary of ~1,000 ids next to
MiniLM's 30,522: the wrong ids index past the small model's embeddings and the trial fails), the
frozen depth must stay within the chosen model's blocks, and the export must carry the winning
model's tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest import compose_sweep_config

from automl.search.sweep import run_sweep

SPACE = """\
model: {type: categorical, choices: [./models/words-3, ./models/minilm-tok-2]}
train.learning_rate: {type: float, low: 5.0e-3, high: 2.0e-2, log: true}
peft.frozen_layers: {type: int, low: 0, high: blocks}
"""


LICENCES = {"words-3": "mit", "minilm-tok-2": "bsd-3-clause"}


def _word_level_tokenizer(texts: list[str]) -> Any:
    """A fast tokenizer whose vocabulary is the corpus's own words (ids unlike MiniLM's)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(vocab_size=1000, special_tokens=["[PAD]", "[UNK]"])
    core.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", pad_token="[PAD]")


def _save_tiny_bert(folder: Path, tokenizer: Any, layers: int) -> None:
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=layers,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128,
        pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


@pytest.fixture
def two_model_folders(
    tmp_path: Path, tokenizer: Any, easy_csv: Any, monkeypatch: pytest.MonkeyPatch
) -> Path:
    import csv

    with easy_csv(rows=300).open(encoding="utf-8") as handle:
        texts = [row["text"] for row in csv.DictReader(handle)]
    words = _word_level_tokenizer(texts)
    assert len(words) < 2000
    _save_tiny_bert(tmp_path / "models" / "words-3", words, layers=3)
    _save_tiny_bert(tmp_path / "models" / "minilm-tok-2", tokenizer, layers=2)
    for name, licence in LICENCES.items():  # each folder's card, as on the Hub
        (tmp_path / "models" / name / "README.md").write_text(f"---\nlicense: {licence}\n---\n")
    (tmp_path / "space.yaml").write_text(SPACE)
    monkeypatch.chdir(tmp_path)  # the space names the folders relative to the launch folder
    return tmp_path


def test_a_sweep_chooses_between_models_with_their_own_tokenizers(
    two_model_folders: Path, shared_ray: Any
) -> None:
    from transformers import AutoTokenizer

    shared_ray()
    tmp = two_model_folders
    conf = compose_sweep_config(
        tmp, "experiment=smoke", "data=csv", f"data.path={tmp / 'easy.csv'}",
        f"search_space={tmp / 'space.yaml'}", "sweep.name=models",
        "sweep.num_samples=6", "sampler=random", "sampler.seed=1", "pruner=none",
        "train.epochs=2", "sweep.max_concurrent=2",
    )  # fmt: skip
    outcome = run_sweep(conf)
    summary = json.loads((tmp / "outputs" / "models" / "summary.json").read_text())
    trials = summary["trials"]
    assert [t["status"] for t in trials] == ["completed"] * 6  # every trial read its own ids
    chosen = {t["params"]["model"] for t in trials}
    assert chosen == {"./models/words-3", "./models/minilm-tok-2"}
    for t in trials:
        blocks = 3 if t["params"]["model"].endswith("-3") else 2
        assert 0 <= t["params"]["peft.frozen_layers"] <= blocks
    best_model = summary["best_config"]["model"]
    exported = AutoTokenizer.from_pretrained(outcome.export_dir)
    expected = AutoTokenizer.from_pretrained(tmp / best_model)
    assert exported.get_vocab() == expected.get_vocab()
    assert summary["test_accuracy"] is not None  # scored with the winner's own tokenizer
    # which test texts training holds: judged by the winner's token ids, as automl-export does
    from automl.data.load import load_task_data
    from automl.export.reexport import _seen

    task = load_task_data(conf.data)
    evaluation = json.loads((tmp / "outputs" / "models" / "test_evaluation.json").read_text())
    unseen = evaluation.get("unseen", {}).get("num_examples", 0)
    assert unseen == sum(not s for s in _seen(Path(outcome.export_dir), task, False))
    card = (Path(outcome.export_dir) / "README.md").read_text()
    assert Path(best_model).name in card
    # the winner's licence, not the sweep's base model's (the tiny one has none)
    assert f"\nlicense: {LICENCES[Path(best_model).name]}\n" in card.split("---\n")[1]


def test_a_sweep_trains_a_model_named_by_a_relative_folder(
    two_model_folders: Path, shared_ray: Any
) -> None:
    """`model.name_or_path=./models/...` (no model search): Ray runs each trial in a folder of
    its own, where the relative path names nothing (a hub id, then: every trial failed)."""
    shared_ray()
    tmp = two_model_folders
    conf = compose_sweep_config(
        tmp, "experiment=smoke", "data=csv", f"data.path={tmp / 'easy.csv'}", "model=hf",
        "model.name_or_path=./models/words-3", "sweep.name=folder", "sweep.num_samples=2",
        "pruner=none", "train.epochs=1",
    )  # fmt: skip
    outcome = run_sweep(conf)
    summary = json.loads((tmp / "outputs" / "folder" / "summary.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["completed"] * 2, summary["trials"]
    assert outcome.export_dir is not None
    config = json.loads((tmp / "outputs" / "folder" / "config.json").read_text())
    assert config["model"]["name_or_path"] == "./models/words-3"  # records stay portable
    provenance = (Path(outcome.export_dir) / "provenance.json").read_text()
    assert str(tmp) not in provenance
