"""`automl-evaluate`: an exported model scored on a labelled file it was not scored on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from automl.cli.evaluate import main

CLASSES = ["food", "sport", "tech"]
WORDS = {"food": "pizza soup", "sport": "goal ball", "tech": "laptop wifi", "art": "paint"}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Any) -> Path:
    """A tiny classifier saved as an export is: weights, tokenizer, named classes."""
    from transformers import BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("export")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=32, num_labels=3,
                        id2label=dict(enumerate(CLASSES)),
                        label2id={n: i for i, n in enumerate(CLASSES)})  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _file(folder: Path, labels: list[str], name: str = "new.jsonl") -> Path:
    path = folder / name
    rows = [{"text": f"{WORDS[label]} {i}", "label": label} for i, label in enumerate(labels)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
        raise SystemExit(0)
    out = capsys.readouterr()
    return int(done.value.code or 0), out.out, out.err


def test_scores_the_file_and_names_labels_the_model_lacks(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transformers import pipeline

    labels = ["food", "sport", "tech", "art", "food", "art", "tech", "sport"]
    path = _file(tmp_path, labels)
    out = tmp_path / "eval.json"
    code, stdout, stderr = _run(capsys, str(model_dir), str(path), "--out", str(out))
    assert code == 0, stderr
    # the scores of the predictions transformers' own pipeline makes with the folder
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    predicted = [p["label"] for p in pipeline("text-classification", model=str(model_dir))(texts)]
    accuracy = sum(p == t for p, t in zip(predicted, labels, strict=True)) / len(labels)
    headline = json.loads(stdout.strip().splitlines()[-1])
    assert headline["accuracy"] == pytest.approx(accuracy) and headline["num_examples"] == 8
    assert headline["unknown_labels"] == {"art": 2}  # each an error the model cannot avoid
    assert "2 texts have labels the model has no class for" in stderr and "'art' (2)" in stderr
    assert f"{path.name}: accuracy {accuracy:.4f}" in stderr
    written = json.loads(out.read_text())
    assert written["labels"] == [*CLASSES, "art"]
    assert [row["support"] for row in written["per_class"]] == [2, 2, 2, 2]
    assert sum(map(sum, written["confusion_matrix"])) == 8
    # an evaluation it wrote may be replaced by the next one
    assert _run(capsys, str(model_dir), str(path), "--out", str(out))[0] == 0
    # into a folder that does not exist yet: made, not a traceback after the scoring
    nested = tmp_path / "evaluations" / "v2.json"
    assert _run(capsys, str(model_dir), str(path), "--out", str(nested))[0] == 0
    assert json.loads(nested.read_text())["labels"] == [*CLASSES, "art"]


def test_texts_the_export_trained_on_are_counted_and_scored_apart(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file cut from the training data (or repeating its texts: the embedded corpus repeats
    ~58 % of its test texts) was scored as new data without a word, though the export records
    the texts it trained on."""
    from automl.export.trained_texts import write_trained_texts

    export = tmp_path / "export"
    shutil.copytree(model_dir, export)
    provenance = {"sweep": "s", "trial_id": "t", "base_model": "tiny-bert"}
    (export / "provenance.json").write_text(json.dumps(provenance))
    labels = ["food", "sport", "tech", "food"]
    path = _file(tmp_path, labels)
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines()]
    write_trained_texts(export, [texts[0], texts[2].upper()])  # keys ignore case
    code, stdout, stderr = _run(capsys, str(export), str(path))
    assert code == 0, stderr
    headline = json.loads(stdout.strip().splitlines()[-1])
    assert headline["trained_on"] == 2 and headline["unseen"]["num_examples"] == 2
    assert "new.jsonl: 2 of 4 texts are ones the model trained on" in stderr
    assert "new.jsonl texts not in training (2): accuracy" in stderr
    code, stdout, _ = _run(capsys, str(model_dir), str(path))  # a folder with no such record
    assert "trained_on" not in json.loads(stdout.strip().splitlines()[-1])


def test_a_disk_that_fills_while_scoring_is_one_line(
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--out` is checked writable before the scoring; the write after it was a traceback
    when the disk filled meanwhile."""
    import errno

    import automl.config.paths

    def full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(automl.config.paths, "write_text_atomic", full)  # (imported in main)
    path = _file(tmp_path, ["food", "tech"])
    out = tmp_path / "scores.json"
    code, _, stderr = _run(capsys, str(model_dir), str(path), "--out", str(out))
    assert code == 2
    assert stderr.strip().splitlines()[-1] == f"error: --out {out}: No space left on device"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["{model}", "{tmp}/ids.jsonl"],
            "ids.jsonl: none of its labels ('0', '1') is a class of "
            "the model ('food', 'sport', 'tech')",
        ),
        (["{tmp}", "{tmp}/new.jsonl"], "no config.json (not an exported model folder)"),
        (["{model}", "{tmp}/new.txt"], "new.txt: a .csv or .jsonl file? say which with --format"),
        (["{model}", "{tmp}/saved_dataset"], "saved_dataset: no such file or folder"),
        (
            ["{model}", "{tmp}/caps.csv"],
            "no column 'text' (columns: Text, label); use --text-column Text",
        ),
        (
            ["{model}", "{tmp}/new.jsonl", "--format", "csv"],
            "the file reads as JSON Lines, not CSV; use --format jsonl",
        ),
        (
            ["{model}", "{tmp}/new.jsonl", "--out", "{tmp}/notes.json"],
            "--out {tmp}/notes.json: exists and is not an automl-evaluate output; it is left alone",
        ),
        (  # a registry in a store that is not there: MLflow would create an empty one
            ["models:/x@champion", "{tmp}/new.jsonl", "--tracking-uri", "sqlite:///{tmp}/no.db"],
            "models:/x@champion: no MLflow store at {tmp}/no.db",
        ),
        (
            ["{model}", "{tmp}/new.jsonl", "--tracking-uri", "sqlite:///x.db"],
            "--tracking-uri is for a models:/ URI, not a folder",
        ),
        (  # scored whole, silently
            ["{model}", "{tmp}/new.jsonl", "--split", "validation"],
            "--split is for a dataset folder, not a file ({tmp}/new.jsonl)",
        ),
        (["models:/x@champion", "{tmp}/missing.csv"], "missing.csv: file not found"),  # first
        (["{tmp}/notes.json", "{tmp}/new.jsonl"], "notes.json: a file, not a folder"),
        (  # read as a model: "config.json: no id2label (not a classifier)"
            ["{tmp}/sweep", "{tmp}/new.jsonl"],
            "sweep: a sweep's folder, not a model; its model is {tmp}/sweep/best",
        ),
        (
            ["models:/x@champion", "{tmp}/new.jsonl", "--tracking-uri", "ftp://host/db"],
            "--tracking-uri: unsupported scheme 'ftp'",
        ),
        (
            ["{model}", "{tmp}/new.jsonl", "--out", "{tmp}/new.jsonl/x.json"],  # before scoring
            "--out {tmp}/new.jsonl/x.json: cannot create",
        ),
        (  # a sweep's own held-out evaluation (the card and the report read it)
            ["{model}", "{tmp}/new.jsonl", "--out", "{tmp}/test_evaluation.json"],
            "test_evaluation.json: exists and is not an automl-evaluate output",
        ),
        (  # "none of its labels ('I cannot log in', ...) is a class of the model"
            ["{model}", "{tmp}/new.jsonl", "--text-column", "body", "--label-column", "body"],
            "--label-column names the same column as --text-column ('body')",
        ),
        (  # no column alike: said with no way to name it
            ["{model}", "{tmp}/new.jsonl", "--text-column", "body"],
            "no column 'body' (columns: text, label); name the column with --text-column <column>",
        ),
    ],  # fmt: skip
)
def test_bad_input_is_one_line_and_nothing_is_replaced(
    model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    _file(tmp_path, ["food", "tech"])
    (tmp_path / "new.txt").write_text("food,pizza\n")
    (tmp_path / "ids.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b", "label": 1}\n')
    (tmp_path / "caps.csv").write_text("Text,label\npizza,food\n")
    (tmp_path / "notes.json").write_text('{"mine": true}')
    (tmp_path / "test_evaluation.json").write_text('{"accuracy": 0.9, "confusion_matrix": []}')
    (tmp_path / "sweep" / "best").mkdir(parents=True)
    (tmp_path / "sweep" / "summary.json").write_text('{"trials": []}')
    (tmp_path / "sweep" / "config.json").write_text('{"sweep": {}}')
    shutil.copy(model_dir / "config.json", tmp_path / "sweep" / "best" / "config.json")
    filled = [a.format(model=model_dir, tmp=tmp_path) for a in args]
    code, stdout, stderr = _run(capsys, *filled)
    assert code == 2 and stdout == ""
    assert stderr.startswith("error: ") and "\n" not in stderr.strip()
    assert message.format(tmp=tmp_path) in stderr
    assert (tmp_path / "notes.json").read_text() == '{"mine": true}'
    assert "0.9" in (tmp_path / "test_evaluation.json").read_text()
    assert not (tmp_path / "no.db").exists()


def test_a_bad_store_from_the_environment_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The user set no --tracking-uri: the message named it all the same."""
    _file(tmp_path, ["food", "tech"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "ftp://host/db")
    code, _, stderr = _run(capsys, "models:/x@champion", str(tmp_path / "new.jsonl"))
    assert code == 2 and stderr.startswith("error: MLFLOW_TRACKING_URI: unsupported scheme")


def test_scores_a_split_of_a_saved_dataset(
    model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A `save_to_disk` folder: its `test` split by default, ClassLabel ids read as the
    dataset's own names; the same scores as the same rows in a JSONL file."""
    import datasets

    datasets.disable_progress_bars()
    labels = ["tech", "food", "sport", "food", "tech", "sport"]
    path = _file(tmp_path, labels)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    features = datasets.Features(
        {
            "Text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["sport", "tech", "food"]),
        }
    )  # names in another order than the model's classes: matched by name
    folder = tmp_path / "saved"
    datasets.DatasetDict(
        test=datasets.Dataset.from_dict(
            {"Text": [r["text"] for r in rows], "label": [r["label"] for r in rows]},
            features=features,
        )
    ).save_to_disk(str(folder))
    code, stdout, stderr = _run(capsys, str(model_dir), str(folder))
    assert code == 2 and "saved[test]: no column 'text' (columns: Text, label); use " \
        "--text-column Text" in stderr  # fmt: skip
    code, stdout, stderr = _run(capsys, str(model_dir), str(folder), "--split", "train")
    assert code == 2 and "no split 'train' (splits: test)" in stderr
    code, stdout, stderr = _run(capsys, str(model_dir), str(folder), "--text-column", "Text")
    assert code == 0, stderr
    saved = json.loads(stdout.strip().splitlines()[-1])
    code, stdout, _ = _run(capsys, str(model_dir), str(path))
    from_file = json.loads(stdout.strip().splitlines()[-1])
    assert saved["data"].endswith("saved[test]") and saved["num_examples"] == 6
    keys = ("accuracy", "macro_f1", "balanced_accuracy")
    assert [saved[k] for k in keys] == [from_file[k] for k in keys]
