"""The held-out test evaluation of an exported model: scores, per-class table, confusion
matrix, and what it writes into the export (card, provenance) and beside the sweep."""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_tiny_config

from automl.data.tokenized import PreparedData, TokenizedSplit
from automl.export.evaluation import (
    CONFUSION_FILE,
    EVALUATION_FILE,
    evaluate_export,
    evaluate_sweep_export,
    headline,
    predict_folder,
    score,
    table_lines,
)
from automl.train.checkpoint import BEST_FILE, PROGRESS_FILE, Progress

LABELS = ["food", "sports", "weather"]
TEXTS = [
    "pizza",
    "the match went to extra time after a late goal",
    "rain",
    "sunny and warm all week with a light breeze from the sea",
    "pasta with tomato sauce",
]


def test_score_matches_hand_counts() -> None:
    truth = ["food", "food", "food", "sports", "sports", "weather"]
    predicted = ["food", "food", "sports", "sports", "food", "weather"]
    result = score(truth, predicted, LABELS)
    assert result["accuracy"] == pytest.approx(4 / 6)
    # food: p 2/3 r 2/3; sports: p 1/2 r 1/2; weather: p 1 r 1
    f1 = [2 / 3, 1 / 2, 1.0]
    assert result["macro_f1"] == pytest.approx(sum(f1) / 3)
    assert result["balanced_accuracy"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert result["confusion_matrix"] == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    rows = {r["label"]: r for r in result["per_class"]}
    assert rows["food"] == {
        "label": "food", "precision": 0.6667, "recall": 0.6667, "f1": 0.6667, "support": 3,
    }  # fmt: skip
    assert [r["support"] for r in result["per_class"]] == [3, 2, 1]
    assert headline(result)["test_f1"] == result["macro_f1"]
    assert table_lines(result)[-1].startswith("test: accuracy 0.6667")


def test_classes_only_predicted_are_named_beside_macro_f1() -> None:
    """A file of 2 of the model's classes, a third predicted now and then: macro-F1 0.44
    beside accuracy 0.67 with nothing to say why."""
    result = score(["food", "food", "sports"], ["food", "weather", "sports"], LABELS)
    assert table_lines(result)[-1] == (
        "macro-F1 over 3 classes: 2 in the data, 1 only predicted, an F1 of 0 each (weather)"
    )
    assert not any(
        "only predicted" in line for line in table_lines(score(["food"], ["food"], LABELS))
    )


def test_classes_named_like_the_reports_summary_rows_get_their_own_scores() -> None:
    """sklearn's report dict files the overall accuracy under "accuracy" and the averages
    under "macro avg": a class of that name crashed the test scoring (after the export) or
    got the average's numbers."""
    names = ["accuracy", "macro avg", "price"]
    result = score(["accuracy", "accuracy", "macro avg", "price"],
                   ["accuracy", "price", "macro avg", "price"], names)  # fmt: skip
    rows = {r["label"]: r for r in result["per_class"]}
    assert rows["accuracy"] == {
        "label": "accuracy", "precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2,
    }  # fmt: skip
    assert rows["macro avg"]["f1"] == 1.0 and rows["macro avg"]["support"] == 1
    assert rows["price"]["precision"] == 0.5 and rows["price"]["recall"] == 1.0


def test_a_class_absent_from_the_test_split_has_zero_support() -> None:
    result = score(["food", "sports"], ["food", "food"], LABELS)
    assert [r["support"] for r in result["per_class"]] == [1, 1, 0]
    assert result["confusion_matrix"][2] == [0, 0, 0]
    # macro-F1 over food (2/3) and sports (0), as on validation; weather, absent from both
    # the truth and the predictions, does not count as an F1 of 0
    assert result["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)
    assert score(["food", "weather"], ["food", "weather"], LABELS)["macro_f1"] == 1.0


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real export (tiny BERT, random weights) as the sweep writes it."""
    from safetensors.torch import save_file

    from automl.export.model_dir import export_checkpoint
    from automl.model.build import build_model
    from automl.model.load import load_tokenizer
    from automl.model.state import trainable_state

    conf = make_tiny_config()
    checkpoint = tmp_path_factory.mktemp("checkpoint")
    tokenizer = load_tokenizer(conf.model)
    model, _ = build_model(conf.model, conf.peft, LABELS, int(tokenizer.pad_token_id))
    save_file(
        {k: v.contiguous() for k, v in trainable_state(model).items()}, checkpoint / BEST_FILE
    )
    (checkpoint / PROGRESS_FILE).write_text(json.dumps(asdict(Progress(epoch=1, best_epoch=1))))
    out = tmp_path_factory.mktemp("export") / "best"
    provenance = {"trial_id": "t1", "sweep": "unit", "metric": "val_accuracy", "best_value": 0.5}
    return export_checkpoint(conf, checkpoint, out, label_names=LABELS, provenance=provenance)


def test_predictions_in_length_batches_match_the_pipeline_one_by_one(exported: Path) -> None:
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(exported))
    one_by_one = [p["label"] for p in clf(TEXTS, batch_size=1)]
    assert predict_folder(exported, TEXTS, batch_size=2) == one_by_one


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA works here: nothing falls back")
def test_a_gpu_that_cannot_be_used_scores_on_the_cpu(
    exported: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A GPU busy with another's job, or too full for the model, failed the sweep after all
    its training (trials that ran on the CPU included): the CPU scores it instead. Here CUDA
    is reported available to a CPU-only torch, which refuses to move the model there."""
    expected = predict_folder(exported, TEXTS)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with caplog.at_level("WARNING"):
        assert predict_folder(exported, TEXTS) == expected
    assert "scored on the CPU: the GPU cannot be used" in caplog.text


def test_every_exported_file_is_readable_as_the_umask_allows(exported: Path) -> None:
    """transformers wrote model.safetensors owner-only (0600) beside 0644 files: a shared
    export, or a model served by another user, could not be read."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in exported.iterdir() if p.is_file()}
    assert modes["model.safetensors"] == 0o666 & ~mask, modes
    assert set(modes.values()) == {0o666 & ~mask}, modes


def test_the_exported_tokenizer_json_cuts_at_the_training_length(exported: Path) -> None:
    """Read by the `tokenizers` library alone (an ONNX runtime), tokenizer.json cut at the
    base model's 128 tokens where the model trained on 64."""
    from tokenizers import Tokenizer

    fast = Tokenizer.from_file(str(exported / "tokenizer.json"))
    assert len(fast.encode("word " * 300).ids) == 64  # make_tiny_config: max_length 64


def _prepared(test_labels: list[int] | None) -> PreparedData:
    empty = TokenizedSplit([], np.zeros(0, dtype=np.int64))
    data = PreparedData(empty, empty, LABELS, 0, "unit", [])
    if test_labels is None:
        return data
    # the export tokenizes the texts itself; the ids only tell which test texts training saw
    ids = [[101, 200 + i, 102] for i in range(len(test_labels))]
    test = TokenizedSplit(ids, np.asarray(test_labels, dtype=np.int64))
    train = TokenizedSplit([ids[0], [101, 7, 102]], np.asarray([test_labels[0], 1]))
    return replace(data, train=train, test=test, test_texts=TEXTS[: len(test_labels)])


@pytest.mark.parametrize("weights", ["missing", "cut short"])
def test_a_folder_whose_weights_cannot_load_is_one_line(
    exported: Path, tmp_path: Path, weights: str
) -> None:
    """A half-copied export (config.json, no weights) was an OSError traceback."""
    import shutil

    from automl.export.evaluation import predict_folder
    from automl.model.load import ModelError

    folder = Path(shutil.copytree(exported, tmp_path / "copy"))
    if weights == "missing":
        (folder / "model.safetensors").unlink()
    else:
        (folder / "model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(ModelError, match=f"^{folder}: cannot load its model \\(") as err:
        predict_folder(folder, ["hello"])
    assert "\n" not in str(err.value)


def test_a_folder_whose_config_names_no_model_type_is_one_line(
    exported: Path, tmp_path: Path
) -> None:
    """A hand-written config.json (labels, no `model_type`): transformers' ValueError was
    a traceback; only its remote-code kind was turned into one line."""
    import shutil

    from automl.export.evaluation import predict_folder
    from automl.model.load import ModelError

    folder = Path(shutil.copytree(exported, tmp_path / "copy"))
    config = json.loads((folder / "config.json").read_text())
    del config["model_type"]
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match=f"^{folder}: cannot load its model \\(") as err:
        predict_folder(folder, ["hello"])
    assert "\n" not in str(err.value)


def test_sweep_evaluation_writes_beside_the_sweep_and_into_the_export(
    exported: Path, tmp_path: Path
) -> None:
    labels = [0, 1, 2, 2, 0]
    evaluation = evaluate_sweep_export(exported, tmp_path, _prepared(labels), make_tiny_config())
    assert evaluation is not None
    predicted = predict_folder(exported, TEXTS)
    truth = [LABELS[i] for i in labels]
    expected = sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)
    assert evaluation["accuracy"] == pytest.approx(expected)
    assert sum(map(sum, evaluation["confusion_matrix"])) == 5
    on_disk = json.loads((tmp_path / EVALUATION_FILE).read_text())
    assert on_disk == evaluation
    assert (tmp_path / CONFUSION_FILE).read_bytes()[:4] == b"\x89PNG"
    assert json.loads((exported / EVALUATION_FILE).read_text()) == evaluation
    provenance = json.loads((exported / "provenance.json").read_text())
    assert provenance["test_evaluation"]["accuracy"] == evaluation["accuracy"]
    card = (exported / "README.md").read_text()
    held_out = "held-out test (5 rows held out before training, read by no training or selection"
    assert f"{held_out} step of this sweep): accuracy " in card
    # the first test text also occurs in training: the other four are scored apart
    unseen = sum(p == t for p, t in zip(predicted[1:5], truth[1:], strict=True)) / 4
    assert evaluation["unseen"]["num_examples"] == 4
    assert evaluation["unseen"]["accuracy"] == pytest.approx(unseen)
    assert "of which 4 texts do not occur in the training split" in card
    assert f"**{evaluation['accuracy']:.4f}**" in card
    assert "## Held-out test, per class" in card
    assert "| `weather` |" in card and "trial `t1` of sweep `unit`" in card


def test_a_test_split_all_seen_in_training_has_no_unseen_score(exported: Path) -> None:
    """sklearn refuses to score no texts: this crashed the sweep after its export."""
    evaluation = evaluate_export(exported, TEXTS, [0, 1, 2, 2, 0], LABELS, [True] * 5)
    assert evaluation["unseen"] == {"num_examples": 0}
    assert evaluation["num_examples"] == 5
    from automl.export.card import test_result_lines

    said = "\n".join(test_result_lines(evaluation))  # said, not left out: the score is of texts
    assert "every one of the 5 test texts also occurs in the training split" in said  # it saw
    assert "test_accuracy_unseen" not in headline(evaluation)


def test_no_test_split_means_no_evaluation_and_no_stale_files(
    exported: Path, tmp_path: Path
) -> None:
    (tmp_path / EVALUATION_FILE).write_text("{}")  # an earlier sweep's, same name
    (tmp_path / CONFUSION_FILE).write_bytes(b"old")
    assert evaluate_sweep_export(exported, tmp_path, _prepared(None), make_tiny_config()) is None
    assert not (tmp_path / EVALUATION_FILE).exists()
    assert not (tmp_path / CONFUSION_FILE).exists()
    assert evaluate_sweep_export(None, tmp_path, _prepared([0, 1]), make_tiny_config()) is None


def test_the_confusion_plot_leaves_the_callers_matplotlib_backend_alone(tmp_path: Path) -> None:
    """`matplotlib.use("Agg")` inside it switched a notebook's inline backend: the notebook's
    own plots showed nothing after a sweep."""
    import matplotlib

    from automl.export.evaluation import plot_confusion, score

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        evaluation = score(["a", "b", "a"], ["a", "a", "a"], ["a", "b"])
        path = plot_confusion(evaluation, tmp_path / "cm.png")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_the_confusion_plot_of_hundreds_of_classes_stays_a_bounded_image(tmp_path: Path) -> None:
    """Its size grew with the classes: 300 classes drew a 14,000-pixel square (8 GB of memory)
    after every trial had run, before the sweep's summary was written."""
    from matplotlib.image import imread

    from automl.export.evaluation import MAX_CONFUSION_INCHES, plot_confusion, score

    names = [f"class {i}" for i in range(300)]
    evaluation = score(names, names[1:] + names[:1], names)
    image = imread(plot_confusion(evaluation, tmp_path / "cm.png"))
    assert max(image.shape[:2]) <= (MAX_CONFUSION_INCHES + 1) * 110
