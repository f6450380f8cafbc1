"""Loading, splitting, tokenizing, batching: the packaged corpus, files, HF datasets, bad data."""

from __future__ import annotations

import copy
import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl.config.schema import DataConfig
from automl.data.batching import (
    FINE_EDGES,
    auto_batch_size,
    collate,
    length_bucket_batches,
    length_bucketed_batches,
    sorted_batches,
    spread_classes,
    steps_of_length_groups,
)
from automl.data.load import load_task_data
from automl.data.split import stratified_sample
from automl.data.task import DataError, LabeledTexts, TaskData
from automl.data.tokenized import PreparedData, TokenizedSplit, tokenize

# ---------------------------------------------------------------------------------------------
# The packaged chatterbot topics


@pytest.fixture(scope="module")
def chatterbot() -> TaskData:
    return load_task_data(DataConfig())


@pytest.fixture(scope="module")
def chatterbot_tokens(chatterbot: TaskData, tokenizer: Any) -> PreparedData:
    return tokenize(chatterbot, tokenizer, 128)


def _corpus_topics() -> list[str]:
    import chatterbot_corpus

    folder = Path(chatterbot_corpus.__file__).parent / "data" / "english"
    return sorted(p.stem for p in folder.glob("*.yml"))


def _splits(task: TaskData) -> list[LabeledTexts]:
    return [task.train, task.val] + ([task.test] if task.test is not None else [])


def _all_labels(task: TaskData) -> list[int]:
    return [label for split in _splits(task) for label in split.labels]


def test_chatterbot_has_21_topics_and_about_4400_utterances(chatterbot: TaskData) -> None:
    assert chatterbot.label_names == _corpus_topics()
    assert len(chatterbot.label_names) == 21
    total = sum(len(split.texts) for split in _splits(chatterbot))
    assert 4300 <= total <= 4500
    assert chatterbot.description == "chatterbot-corpus/english"
    texts = [t for split in _splits(chatterbot) for t in split.texts]
    assert all(t and t == t.strip() for t in texts)
    assert set(_all_labels(chatterbot)) == set(range(21))


def test_a_conversation_written_without_its_dash_is_one_text(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """English trivia.yml writes one conversation as a string (its `- -` lost): read as a list,
    its 72 characters became 72 one-letter trivia texts (half the Ukrainian corpus so)."""
    from automl.data import load

    topic = tmp_path / "data" / "english"
    topic.mkdir(parents=True)
    (topic / "quiz.yml").write_text(
        "categories: [quiz]\nconversations:\n- - Who wrote Hamlet?\n  - Shakespeare\n"
        "- In bingo, which number is two little ducks? - '22'\n"
    )
    monkeypatch.setattr(load, "_chatterbot_dir", lambda language: topic)
    texts, labels, _ = load._read_chatterbot("english")
    assert texts == [
        "Who wrote Hamlet?", "Shakespeare", "In bingo, which number is two little ducks? - '22'"
    ]  # fmt: skip
    assert labels == ["quiz"] * 3


def test_chatterbot_split_is_stratified_three_ways(chatterbot: TaskData) -> None:
    """70/20/10 by default: validation and test are shares of the whole, class by class."""
    assert chatterbot.test is not None
    train, val = Counter(chatterbot.train.labels), Counter(chatterbot.val.labels)
    test = Counter(chatterbot.test.labels)
    n_train, n_val, n_test = sum(train.values()), sum(val.values()), sum(test.values())
    total = n_train + n_val + n_test
    assert n_val / total == pytest.approx(0.2, abs=0.01)
    assert n_test / total == pytest.approx(0.1, abs=0.01)
    for label in set(train) | set(val) | set(test):
        n = train[label] + val[label] + test[label]
        assert train[label] >= 1, chatterbot.label_names[label]
        if n >= 3:  # test takes round(n * 0.1), leaving at least two for train and validation
            assert test[label] == min(round(0.1 * n), n - 2)
        assert abs(val[label] - 0.2 * n) <= 1.5  # two roundings
        # each class's share of each split matches its share of the whole
        for counts, size in ((train, n_train), (val, n_val), (test, n_test)):
            assert counts[label] / size == pytest.approx(n / total, abs=0.01)


def test_chatterbot_splits_are_disjoint(chatterbot: TaskData) -> None:
    """Rows, not texts (the corpus repeats some utterances): sizes add up to the corpus."""
    assert chatterbot.test is not None
    whole = load_task_data(DataConfig(test_fraction=0))  # the same rows split only in two
    pooled = Counter(t for split in _splits(chatterbot) for t in split.texts)
    assert pooled == Counter(whole.train.texts + whole.val.texts)


def test_chatterbot_split_is_seeded(chatterbot: TaskData) -> None:
    again = load_task_data(DataConfig(seed=0))
    assert again.val.texts == chatterbot.val.texts
    assert again.train.labels == chatterbot.train.labels
    assert again.test is not None and chatterbot.test is not None
    assert again.test.texts == chatterbot.test.texts
    other = load_task_data(DataConfig(seed=1))
    assert other.val.texts != chatterbot.val.texts
    assert other.test is not None and other.test.texts != chatterbot.test.texts
    assert Counter(other.val.labels) == Counter(chatterbot.val.labels)  # same sizes, other rows
    assert Counter(other.test.labels) == Counter(chatterbot.test.labels)


def test_test_fraction_zero_means_no_test_split_and_the_old_two_way_split(
    chatterbot: TaskData,
) -> None:
    task = load_task_data(DataConfig(test_fraction=0))
    assert task.test is None
    n = len(task.train.texts) + len(task.val.texts)
    assert n == sum(len(split.texts) for split in _splits(chatterbot))
    assert len(task.val.texts) / n == pytest.approx(0.2, abs=0.01)


def test_max_examples_caps_with_stratification(chatterbot: TaskData) -> None:
    full = Counter(_all_labels(chatterbot))
    total = sum(full.values())
    capped = load_task_data(DataConfig(max_examples=500))
    counts = Counter(_all_labels(capped))
    assert abs(sum(counts.values()) - 500) <= 21  # per-class rounding, at least one each
    assert set(capped.train.labels) == set(range(21))  # every class still trains
    for label, n in full.items():
        assert counts[label] / 500 == pytest.approx(n / total, abs=0.01)
    assert load_task_data(DataConfig(max_examples=500)).val.texts == capped.val.texts


def test_max_examples_above_the_data_size_keeps_everything(chatterbot: TaskData) -> None:
    task = load_task_data(DataConfig(max_examples=1_000_000))
    assert task.val.texts == chatterbot.val.texts
    assert task.train.texts == chatterbot.train.texts
    assert task.test is not None and chatterbot.test is not None
    assert task.test.texts == chatterbot.test.texts


def test_classes_too_small_to_split_stay_in_train(tmp_path: Path) -> None:
    """A class of 1 or 2 examples gives nothing to the test split; it keeps a training example."""
    rows = _rows(60, ["big", "other"]) + [
        {"text": "lonely one", "label": "solo"},
        {"text": "pair one", "label": "pair"},
        {"text": "pair two", "label": "pair"},
    ]
    path = write_rows(tmp_path / "train.csv", rows)
    task = load_task_data(DataConfig(source="csv", path=str(path), test_fraction=0.3))
    assert task.test is not None
    names = task.label_names
    test_names = {names[i] for i in task.test.labels}
    assert test_names == {"big", "other"}
    assert "lonely one" in task.train.texts
    assert "pair one" in task.train.texts or "pair two" in task.train.texts
    assert Counter(names[i] for i in task.test.labels) == {"big": 9, "other": 9}


def test_data_too_small_for_a_test_split_trains_without_one(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "train.csv", _rows(4, ["a", "b"]))  # 0.1 of 4 rounds to 0
    task = load_task_data(DataConfig(source="csv", path=str(path), val_fraction=0.25))
    assert task.test is None
    assert (len(task.train.texts), len(task.val.texts)) == (3, 1)


@pytest.mark.parametrize(
    ("classes", "per_class", "sizes"),
    [(150, 5, (525, 150, 75)), (1000, 2, (1600, 400, 0)), (2, 4, (5, 2, 1)),
     (151, 5, (532, 152, 76))],  # the last class has 10 examples
    ids=["150x5", "1000x2", "2x4", "150x5+10"],
)  # fmt: skip
def test_many_small_classes_still_give_the_fractions_of_the_whole(
    tmp_path: Path, classes: int, per_class: int, sizes: tuple[int, int, int]
) -> None:
    """Rounded class by class, 150 classes of 5 gave no test split (0.5 rounds to 0), one
    class of 10 beside them a test split of 1, and 1,000 classes of 2 were refused for
    validation: the share is then topped up to the fraction of the whole, a class at a time,
    every class keeping its training examples."""
    names = [f"intent {c}" for c in range(classes)]
    rows = _rows(classes * per_class, names)
    if classes == 151:  # one class of 10 beside 150 of 5
        rows = _rows(150 * 5, names[:150]) + _rows(10, names[150:])
    path = write_rows(tmp_path / "train.csv", rows)
    task = load_task_data(DataConfig(source="csv", path=str(path)))
    test = task.test.labels if task.test is not None else []
    assert (len(task.train.labels), len(task.val.labels), len(test)) == sizes
    assert set(task.train.labels) == set(range(classes))  # none lost from training
    assert max(Counter(test).values(), default=1) == 1  # one a class, as many classes as can
    assert max(Counter(task.val.labels).values()) <= 2  # (the class of 10 gives 2)


def test_max_examples_gives_that_many_rows_of_many_small_classes(tmp_path: Path) -> None:
    """200 classes of 5 capped at 500: each class's 2.5 rounded to 2 gave 400 rows, too few
    for a test split of one a class, which was dropped with a warning. (Where rounding class
    by class lands near `n`, as every sweep recorded its data, the rows stay the same.)"""
    names = [f"intent {c}" for c in range(200)]
    path = write_rows(tmp_path / "train.csv", _rows(1000, names))
    task = load_task_data(DataConfig(source="csv", path=str(path), max_examples=500))
    assert task.test is not None
    assert len(task.train.labels) + len(task.val.labels) + len(task.test.labels) == 500
    assert set(task.train.labels) == set(range(200))


@pytest.mark.parametrize("n", [500, 800, 1000])
def test_max_examples_keeps_the_rows_earlier_sweeps_recorded(n: int) -> None:
    """A resumed sweep, an export and a reproduction check the data is what the sweep
    recorded: rounding class by class (near `n` here) must pick the same rows as it did."""
    from automl.data.split import _indices_by_class

    labels = [c for c in range(21) for _ in range(5 + 13 * c)]  # classes of 5 to 265
    members = _indices_by_class(labels, np.random.default_rng(7)).values()
    rows = sorted(i for m in members for i in m[: max(1, round(len(m) * n / len(labels)))])
    assert stratified_sample(labels, n, np.random.default_rng(7)) == rows


def test_max_examples_past_the_rounding_band_draws_nothing_more() -> None:
    """The splits are cut next from the same generator: a draw for the tie order moved them
    even where the rows came out the same."""
    from automl.data.split import _indices_by_class

    labels = [c for c in range(200) for _ in range(5)]
    drawn, plain = np.random.default_rng(0), np.random.default_rng(0)
    assert len(stratified_sample(labels, 500, drawn)) == 500
    _indices_by_class(labels, plain)
    assert drawn.bit_generator.state == plain.bit_generator.state


def test_stratified_sample_keeps_one_of_every_class() -> None:
    labels = [0] * 90 + [1] * 9 + [2]
    keep = stratified_sample(labels, 10, np.random.default_rng(0))
    assert keep == sorted(set(keep))
    assert Counter(labels[i] for i in keep) == {0: 9, 1: 1, 2: 1}


def test_unknown_chatterbot_language() -> None:
    with pytest.raises(DataError, match="'klingon'.*data.language"):
        load_task_data(DataConfig(language="klingon"))


# ---------------------------------------------------------------------------------------------
# CSV and JSONL files


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """CSV or JSONL by suffix; columns from the first row."""
    if path.suffix == ".csv":
        columns = list(rows[0])
        lines = [",".join(columns)] + [",".join(str(r[c]) for c in columns) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(
    n: int, labels: list[Any], text: str = "text", label: str = "label"
) -> list[dict[str, Any]]:
    return [
        {text: f"example {i} about {labels[i % len(labels)]}", label: labels[i % len(labels)]}
        for i in range(n)
    ]


FORMATS = ["csv", "jsonl"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_with_string_labels(tmp_path: Path, fmt: str) -> None:
    path = write_rows(tmp_path / f"train.{fmt}", _rows(60, ["spam", "ham", "eggs"]))
    task = load_task_data(DataConfig(source=fmt, path=str(path), val_fraction=0.2))
    assert task.label_names == ["eggs", "ham", "spam"]
    assert task.description == str(path)
    assert sum(len(split.texts) for split in _splits(task)) == 60
    for split in _splits(task):
        for text, label in zip(split.texts, split.labels, strict=True):
            assert text.endswith(task.label_names[label])
    assert task.test is not None
    assert Counter(task.test.labels) == {0: 2, 1: 2, 2: 2}  # 20 per class, a tenth each
    assert Counter(task.val.labels) == {0: 4, 1: 4, 2: 4}  # and a fifth each


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_with_integer_labels_keeps_numeric_order(tmp_path: Path, fmt: str) -> None:
    # 12 classes: string sorting would put "10" and "11" before "2".
    path = write_rows(tmp_path / f"train.{fmt}", _rows(120, list(range(12))))
    task = load_task_data(DataConfig(source=fmt, path=str(path)))
    assert task.label_names == [str(i) for i in range(12)]
    for split in _splits(task):
        for text, label in zip(split.texts, split.labels, strict=True):
            assert text.endswith(f"about {label}")  # id k is the file's label k


@pytest.mark.parametrize("fmt", FORMATS)
def test_separate_validation_file_and_custom_columns(tmp_path: Path, fmt: str) -> None:
    kw = {"text": "sentence", "label": "topic"}
    train = write_rows(tmp_path / f"train.{fmt}", _rows(20, ["b", "a"], **kw))
    val = write_rows(tmp_path / f"val.{fmt}", _rows(6, ["a", "b"], **kw))
    cfg = DataConfig(
        source=fmt, path=str(train), val_path=str(val), text_column="sentence", label_column="topic"
    )
    task = load_task_data(cfg)
    assert len(task.val.texts) == 6  # the file, nothing split off for validation
    assert task.test is not None and Counter(task.test.labels) == {0: 1, 1: 1}  # a tenth
    assert len(task.train.texts) == 18
    assert task.label_names == ["a", "b"]
    assert task.val.texts[0] == "example 0 about a" and task.val.labels[:2] == [0, 1]


@pytest.mark.parametrize("fmt", FORMATS)
def test_separate_test_file(tmp_path: Path, fmt: str) -> None:
    train = write_rows(tmp_path / f"train.{fmt}", _rows(20, ["b", "a"]))
    test = write_rows(tmp_path / f"test.{fmt}", _rows(4, ["a", "b"]))
    task = load_task_data(DataConfig(source=fmt, path=str(train), test_path=str(test)))
    assert task.test is not None
    assert task.test.texts == [r["text"] for r in _rows(4, ["a", "b"])]
    assert task.test.labels == [0, 1, 0, 1]
    assert len(task.train.texts) + len(task.val.texts) == 20  # nothing split off for test
    assert Counter(task.val.labels) == {0: 2, 1: 2}  # val_fraction of the whole file


def test_test_label_unseen_in_train_names_the_test_file(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text(GOOD)
    test = tmp_path / "test.csv"
    test.write_text("text,label\nq,a\nr,zzz\n")
    with pytest.raises(DataError) as err:
        load_task_data(DataConfig(source="csv", path=str(train), test_path=str(test)))
    assert str(err.value) == f"{test}: labels not in the training data: ['zzz']"


def test_label_names_travel_through_tokenize(tmp_path: Path, tokenizer: Any) -> None:
    path = write_rows(tmp_path / "train.csv", _rows(30, ["neg", "pos", "neutral"]))
    task = load_task_data(DataConfig(source="csv", path=str(path)))
    data = tokenize(task, tokenizer, 32)
    assert data.label_names == ["neg", "neutral", "pos"]
    assert data.val_texts == task.val.texts
    assert task.test is not None and data.test is not None
    assert data.test_texts == task.test.texts
    assert list(data.test.labels) == task.test.labels
    assert data.test.input_ids[0] == tokenizer(task.test.texts[0])["input_ids"]
    trial_data = data.without_test()  # what trials receive
    assert trial_data.test is None and trial_data.test_texts == []
    assert data.task is task and trial_data.task is None  # the raw texts stay in the driver
    assert trial_data.train is data.train and data.test is not None
    assert data.description == str(path)
    assert list(data.train.labels) == task.train.labels


def test_max_examples_applies_to_files(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "train.csv", _rows(200, ["x", "y"]))
    task = load_task_data(DataConfig(source="csv", path=str(path), max_examples=40))
    assert sum(len(split.texts) for split in _splits(task)) == 40
    assert task.test is not None and Counter(task.test.labels) == {0: 2, 1: 2}
    assert Counter(task.val.labels) == {0: 4, 1: 4}
    assert Counter(task.train.labels) == {0: 14, 1: 14}


# ---------------------------------------------------------------------------------------------
# Hugging Face datasets saved to disk


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A plain Dataset (string labels) and a DatasetDict (ClassLabel, train/test)."""
    import datasets

    datasets.disable_progress_bars()
    root = tmp_path_factory.mktemp("hf")
    texts = [f"review number {i}" for i in range(60)]
    datasets.Dataset.from_dict(
        {"text": texts, "label": ["good" if i % 3 else "bad" for i in range(60)]}
    ).save_to_disk(str(root / "plain"))
    # Names deliberately not in sorted order: the dataset's own ids must be kept.
    features = datasets.Features(
        {
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=["pos", "neg", "mixed"]),
        }
    )
    datasets.DatasetDict(
        train=datasets.Dataset.from_dict(
            {"text": texts, "label": [i % 3 for i in range(60)]}, features=features
        ),
        test=datasets.Dataset.from_dict(
            {"text": texts[:9], "label": [2, 1, 0] * 3}, features=features
        ),
    ).save_to_disk(str(root / "dict"))
    unlabelled = datasets.Dataset.from_dict(
        {"text": texts[:9], "label": [-1] * 9}, features=features
    )
    datasets.DatasetDict(
        train=datasets.Dataset.from_dict(
            {"text": texts, "label": [i % 3 for i in range(60)]}, features=features
        ),
        test=unlabelled,
    ).save_to_disk(str(root / "unlabelled"))
    return root


def test_hf_dataset_from_disk(hf_dir: Path) -> None:
    task = load_task_data(DataConfig(source="hf", hf_name=str(hf_dir / "plain")))
    assert task.label_names == ["bad", "good"]
    assert sum(len(split.texts) for split in _splits(task)) == 60
    assert Counter(task.val.labels) == {0: 4, 1: 8}
    assert task.test is not None and Counter(task.test.labels) == {0: 2, 1: 4}
    assert task.description == f"{hf_dir / 'plain'}[train]"


def test_hf_dataset_dict_keeps_class_label_names(hf_dir: Path) -> None:
    cfg = DataConfig(source="hf", hf_name=str(hf_dir / "dict"), hf_val_split="test")
    task = load_task_data(cfg)
    assert task.label_names == ["pos", "neg", "mixed"]
    assert len(task.val.texts) == 9
    assert task.test is not None and len(task.test.texts) == 6  # a tenth of train, split off
    assert len(task.train.texts) == 54
    assert task.val.labels[:3] == [2, 1, 0]


def test_hf_test_split_is_read_not_split_off(hf_dir: Path) -> None:
    cfg = DataConfig(source="hf", hf_name=str(hf_dir / "dict"), hf_test_split="test")
    task = load_task_data(cfg)
    assert task.test is not None
    assert task.test.labels[:3] == [2, 1, 0] and len(task.test.texts) == 9
    assert len(task.train.texts) + len(task.val.texts) == 60
    assert Counter(task.val.labels) == {0: 4, 1: 4, 2: 4}


def test_a_split_left_unread_is_named(hf_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The dict's own `test` split, unread while the test split is cut from train: a warning;
    read (as validation or test): none."""
    with caplog.at_level("WARNING", logger="automl.data.load"):
        load_task_data(DataConfig(source="hf", hf_name=str(hf_dir / "dict")))
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [
        f"{hf_dir / 'dict'}: its split 'test' is not read; validation and test are cut from "
        "'train' (set data.hf_val_split or data.hf_test_split to read one)"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="automl.data.load"):  # no test split at all
        load_task_data(DataConfig(source="hf", hf_name=str(hf_dir / "dict"), test_fraction=0))
    assert [r.getMessage().split("; ")[1] for r in caplog.records] == [
        "validation is cut from 'train' (set data.hf_val_split to read one)"
    ]
    caplog.clear()
    with caplog.at_level("WARNING", logger="automl.data.load"):
        load_task_data(DataConfig(source="hf", hf_name=str(hf_dir / "dict"), hf_val_split="test"))
        load_task_data(DataConfig(source="hf", hf_name=str(hf_dir / "plain")))
    assert not caplog.records


def test_hf_labels_that_are_lists_or_missing_are_named(tmp_path: Path) -> None:
    """A Sequence label column (multi-label data) became one class per combination, and a
    None label the class 'None'."""
    import datasets

    texts = [f"text {i}" for i in range(20)]
    lists = datasets.Dataset.from_dict({"text": texts, "label": [["a"], ["a", "b"]] * 10})
    lists.save_to_disk(str(tmp_path / "lists"))
    with pytest.raises(DataError, match=r"\[train\]: row 1: the label in column 'label' is a"):
        load_task_data(DataConfig(source="hf", hf_name=str(tmp_path / "lists")))
    no_text = datasets.Dataset.from_dict({"text": [*texts[:19], None], "label": ["a", "b"] * 10})
    no_text.save_to_disk(str(tmp_path / "no_text"))
    with pytest.raises(DataError, match=r"\[train\]: row 20: empty text"):  # not the text "None"
        load_task_data(DataConfig(source="hf", hf_name=str(tmp_path / "no_text")))
    missing = datasets.Dataset.from_dict({"text": texts, "label": ["a", "b"] * 9 + ["a", None]})
    missing.save_to_disk(str(tmp_path / "missing"))
    with pytest.raises(DataError, match=r"\[train\]: row 20: missing label in column 'label'$"):
        load_task_data(DataConfig(source="hf", hf_name=str(tmp_path / "missing")))


def test_hf_plain_labels_are_stripped_as_a_file_s_are(tmp_path: Path) -> None:
    """' pos' in train and 'pos' in validation: "labels not in the training data: ['neg',
    'pos']", and class names with spaces; a CSV's labels are stripped."""
    import datasets

    texts = [f"text {i}" for i in range(20)]
    datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"text": texts, "label": [" pos", "neg "] * 10}),
        "validation": datasets.Dataset.from_dict({"text": texts[:4], "label": ["pos", "neg"] * 2}),
    }).save_to_disk(str(tmp_path / "spaced"))  # fmt: skip
    task = load_task_data(
        DataConfig(source="hf", hf_name=str(tmp_path / "spaced"), hf_val_split="validation")
    )
    assert task.label_names == ["neg", "pos"]


def test_hf_scores_and_classes_training_never_sees_are_named(tmp_path: Path) -> None:
    """A float label column (a score, no ClassLabel) gets the check a file's labels get (it
    failed on a puzzling split error); a class only a dataset's own validation split holds
    is refused as a file's is (it passed: a class the model could only miss)."""
    import datasets

    texts = [f"text {i}" for i in range(50)]
    scores = datasets.Dataset.from_dict(
        {"text": texts, "label": [i / 50 + 0.001 for i in range(50)]}
    )
    scores.save_to_disk(str(tmp_path / "scores"))
    with pytest.raises(DataError, match=r"look like a score to regress"):
        load_task_data(DataConfig(source="hf", hf_name=str(tmp_path / "scores")))
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["a", "b", "c"])}
    )
    datasets.DatasetDict(
        train=datasets.Dataset.from_dict({"text": texts, "label": [0, 1] * 25}, features=features),
        validation=datasets.Dataset.from_dict(
            {"text": texts[:9], "label": [0, 1, 2] * 3}, features=features
        ),
    ).save_to_disk(str(tmp_path / "unseen"))
    cfg = DataConfig(source="hf", hf_name=str(tmp_path / "unseen"), hf_val_split="validation")
    with pytest.raises(DataError) as err:
        load_task_data(cfg)
    assert str(err.value) == (
        f"{tmp_path / 'unseen'}[validation]: labels not in the training data: ['c']"
    )


def test_hf_missing_split_is_named(hf_dir: Path) -> None:
    cfg = DataConfig(source="hf", hf_name=str(hf_dir / "dict"), hf_val_split="validation")
    with pytest.raises(DataError) as err:
        load_task_data(cfg)
    assert str(err.value) == (
        f"{hf_dir / 'dict'}[validation]: no split 'validation' (splits: train, test)"
    )


def test_hf_missing_column_is_named(hf_dir: Path) -> None:
    cfg = DataConfig(source="hf", hf_name=str(hf_dir / "dict"), text_column="sentence")
    expected = r"\[train\]: no column 'sentence' \(columns: text, label\)"
    with pytest.raises(DataError, match=expected):
        load_task_data(cfg)


def test_hf_unloadable_dataset_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped save_to_disk folder was asked of the Hub: "not in the Hugging Face cache, and
    huggingface.co cannot be reached" sent its user after the network."""
    monkeypatch.chdir(tmp_path)
    for name, what in (
        (str(tmp_path / "nothing-here"), "no such folder"), ("./hf_typo", "no such folder"),
        ("data/saved/hf", "no such folder"),
    ):  # fmt: skip
        with pytest.raises(DataError) as err:
            load_task_data(DataConfig(source="hf", hf_name=name))
        assert str(err.value) == f"data.hf_name: {name}: {what}"
    (tmp_path / "rows.csv").write_text("text,label\n")
    with pytest.raises(DataError, match=r"^data.hf_name: rows.csv: a file, not a save_to_disk"):
        load_task_data(DataConfig(source="hf", hf_name="rows.csv"))
    (tmp_path / "empty").mkdir()  # a folder, but no dataset
    with pytest.raises(DataError) as err:
        load_task_data(DataConfig(source="hf", hf_name="empty"))
    assert "empty[train]: cannot load" in str(err.value) and "\n" not in str(err.value)


def test_a_hub_dataset_without_its_config_names_data_hf_config(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`datasets` says so over three lines, with Python to run (`load_dataset(...)`)."""
    import datasets

    def missing_config(*args: object, **kwargs: object) -> None:
        raise ValueError(
            "Config name is missing.\nPlease pick one among the available configs: ['emoji', "
            "'irony']\nExample of usage:\n\t`load_dataset('tweet_eval', 'emoji')`"
        )

    monkeypatch.setattr(datasets, "load_dataset", missing_config)
    with pytest.raises(DataError) as err:
        load_task_data(DataConfig(source="hf", hf_name="tweet_eval"))
    assert str(err.value) == (
        "tweet_eval[train]: cannot load (ValueError: a config name is missing: set "
        "data.hf_config to one of ['emoji', 'irony'])"
    )


def test_hf_splits_encoded_one_by_one_are_decoded_by_their_own_class_names(
    tmp_path: Path,
) -> None:
    """`class_encode_column` per split numbers the classes each split holds: validation's
    id 1 was read with train's names (b, not c), so trials were chosen on wrong labels."""
    import datasets

    texts = [f"text {i}" for i in range(30)]
    train = datasets.Dataset.from_dict({"text": texts, "label": ["a", "b", "c"] * 10})
    val = datasets.Dataset.from_dict({"text": texts[:6], "label": ["a", "c"] * 3})
    datasets.DatasetDict(
        train=train.class_encode_column("label"), validation=val.class_encode_column("label")
    ).save_to_disk(str(tmp_path / "encoded"))
    cfg = DataConfig(source="hf", hf_name=str(tmp_path / "encoded"), hf_val_split="validation")
    task = load_task_data(cfg)
    assert task.label_names == ["a", "b", "c"]
    assert [task.label_names[i] for i in task.val.labels] == ["a", "c"] * 3
    # a split saved without its ClassLabel (plain ids): read with train's names, as before
    plain = datasets.Dataset.from_dict({"text": texts[:6], "label": [0, 2] * 3})
    datasets.DatasetDict(train=train.class_encode_column("label"), validation=plain).save_to_disk(
        str(tmp_path / "plain_ids")
    )
    task = load_task_data(replace(cfg, hf_name=str(tmp_path / "plain_ids")))
    assert [task.label_names[i] for i in task.val.labels] == ["a", "c"] * 3


def test_hf_plain_integers_beside_a_class_label_of_numbers_are_refused(tmp_path: Path) -> None:
    """`class_encode_column` on integers names its classes "0", "1", "10", "11", "2", ...: a
    validation split left with its plain integers had 2 read as the id of class "10", and
    every such row was scored against the wrong class without a word."""
    import datasets

    texts = [f"text {i}" for i in range(36)]
    for classes, folder in ((12, "twelve"), (3, "three")):
        train = datasets.Dataset.from_dict(
            {"text": texts, "label": [i % classes for i in range(36)]}
        )
        val = datasets.Dataset.from_dict({"text": texts[:6], "label": [2, 1, 0, 2, 1, 0]})
        datasets.DatasetDict(train=train.class_encode_column("label"), validation=val).save_to_disk(
            str(tmp_path / folder)
        )
    cfg = DataConfig(source="hf", hf_name=str(tmp_path / "twelve"), hf_val_split="validation")
    with pytest.raises(DataError) as err:
        load_task_data(cfg)
    assert str(err.value) == (
        f"{tmp_path / 'twelve'}[validation]: plain integer labels beside the train split's "
        "ClassLabel of numbers (0, 1, 10, 11, ...), whose ids are not its values: ids or "
        "values? encode every split with the train split's ClassLabel (Dataset.cast_column)"
    )
    # classes 0, 1, 2 are named in id order: an id is its value, read as before
    assert _val_names(replace(cfg, hf_name=str(tmp_path / "three"))) == ["2", "1", "0"] * 2


def _with_class_label(
    folder: Path, train_labels: list[Any], val_ids: list[int], names: list[str]
) -> DataConfig:
    """A saved DatasetDict: train with plain labels, validation with its own ClassLabel."""
    import datasets

    texts = [f"text {i}" for i in range(len(train_labels))]
    train = datasets.Dataset.from_dict({"text": texts, "label": train_labels})
    val = datasets.Dataset.from_dict(
        {"text": texts[: len(val_ids)], "label": val_ids},
        features=datasets.Features(
            text=datasets.Value("string"), label=datasets.ClassLabel(names=names)
        ),
    )
    datasets.DatasetDict(train=train, validation=val).save_to_disk(str(folder))
    return DataConfig(source="hf", hf_name=str(folder), hf_val_split="validation")


def _val_names(cfg: DataConfig) -> list[str]:
    task = load_task_data(cfg)
    return [task.label_names[i] for i in task.val.labels]


def test_hf_a_splits_own_class_names_decode_it_where_train_has_plain_labels(
    tmp_path: Path,
) -> None:
    """Train with plain string labels, validation with a ClassLabel of its own: validation's
    ids were read as their digits ("0", "1"), not as its class names."""
    mixed = _with_class_label(
        tmp_path / "mixed", ["neg", "pos", "neu"] * 10, [0, 1, 2] * 2, ["pos", "neg", "neu"]
    )
    assert _val_names(mixed) == ["pos", "neg", "neu"] * 2
    # the dataset's ClassLabel lists a class train lacks (filtered data): still its names
    superset = _with_class_label(
        tmp_path / "superset", ["neg", "pos"] * 15, [0, 1] * 3, ["neg", "pos", "neu"]
    )
    assert _val_names(superset) == ["neg", "pos"] * 3
    # the same with integer classes, as `class_encode_column` names them ("1", "10", "2"):
    # id 1 is class 10, not 1
    ints = _with_class_label(tmp_path / "ints", [1, 2, 10] * 10, [1, 2] * 3, ["1", "10", "2", "3"])
    assert _val_names(ints) == ["10", "2"] * 3


def test_hf_a_splits_own_class_names_beside_trains_integer_labels_stay_integers(
    tmp_path: Path,
) -> None:
    """Train's integers are class names as their text ("0", "1"): a split whose ClassLabel
    names its ids was refused ("labels not in the training data") when read by its names."""
    words = ["neg", "neu", "pos"]
    assert (
        _val_names(_with_class_label(tmp_path / "ints", [0, 1, 2] * 10, [0, 1, 2] * 2, words))
        == ["0", "1", "2"] * 2
    )
    # train's labels the digits as text: the same
    digits = _with_class_label(tmp_path / "digits", ["0", "1", "2"] * 10, [0, 1, 2] * 2, words)
    assert _val_names(digits) == ["0", "1", "2"] * 2


def test_hf_dataset_saved_in_torch_format_gives_its_integer_labels_as_names(
    tmp_path: Path,
) -> None:
    """A dataset saved after `set_format("torch")` gave tensors: the classes were named
    "tensor(0)", "tensor(1)" (in the export's id2label, and sorted as text)."""
    import datasets

    rows = {"text": [f"text {i}" for i in range(40)], "label": [i % 2 for i in range(40)]}
    saved = datasets.Dataset.from_dict(rows)
    saved.set_format("torch")
    saved.save_to_disk(str(tmp_path / "torch"))
    task = load_task_data(DataConfig(source="hf", hf_name=str(tmp_path / "torch")))
    assert task.label_names == ["0", "1"]
    assert all(isinstance(t, str) for t in task.train.texts)


def test_hf_integer_labels_read_alone_are_the_class_names_a_sweep_gives_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`automl-evaluate` reads one split: plain int labels stayed ints against the model's
    class names '0', '1' (every label unknown). A single saved Dataset has no `test` split:
    all of it is scored, with a warning (it may be what a sweep trained on)."""
    import datasets

    from automl.data.load import read_hf_split

    texts = [f"text {i}" for i in range(12)]
    datasets.DatasetDict(
        test=datasets.Dataset.from_dict({"text": texts, "label": [0, 1, 2] * 4})
    ).save_to_disk(str(tmp_path / "ints"))
    cfg = DataConfig(source="hf", hf_name=str(tmp_path / "ints"))
    _, labels, where = read_hf_split(cfg, "test")
    assert labels == ["0", "1", "2"] * 4 and where == f"{tmp_path / 'ints'}[test]"
    datasets.Dataset.from_dict({"text": texts, "label": ["x", "y"] * 6}).save_to_disk(
        str(tmp_path / "single")
    )
    with caplog.at_level("WARNING", logger="automl.data.load"):
        got, labels, where = read_hf_split(
            DataConfig(source="hf", hf_name=str(tmp_path / "single")), "test"
        )
    assert len(got) == 12 and where == str(tmp_path / "single")  # not "[test]"
    assert "a single saved Dataset" in caplog.text and "no split 'test'" in caplog.text


def test_hf_empty_splits_and_texts_that_are_not_strings_are_one_line(tmp_path: Path) -> None:
    """An empty train split was an IndexError; an empty validation split a ZeroDivisionError
    in every trial after its first epoch; a column of token lists trained on their repr."""
    import datasets

    texts = [f"text {i}" for i in range(20)]
    good = datasets.Dataset.from_dict({"text": texts, "label": ["a", "b"] * 10})
    empty = datasets.Dataset.from_dict({"text": [], "label": []})
    # num_shards: datasets writes no file at all for an empty split otherwise (and cannot
    # load it back: an IndexError of its own, which the loader names in one line)
    datasets.DatasetDict(train=good, validation=empty).save_to_disk(
        str(tmp_path / "empty"), num_shards={"train": 1, "validation": 1}
    )
    cfg = DataConfig(source="hf", hf_name=str(tmp_path / "empty"), hf_val_split="validation")
    with pytest.raises(DataError, match=r"^.*empty\[validation\]: no rows$"):
        load_task_data(cfg)
    empty.save_to_disk(str(tmp_path / "empty_train"), num_shards=1)
    with pytest.raises(DataError, match=r"^.*empty_train\[train\]: no rows$"):
        load_task_data(DataConfig(source="hf", hf_name=str(tmp_path / "empty_train")))
    tokens = datasets.Dataset.from_dict({"text": [t.split() for t in texts], "label": ["a"] * 20})
    tokens.save_to_disk(str(tmp_path / "tokens"))
    with pytest.raises(DataError, match=r"row 1: the text in column 'text' is not a string"):
        load_task_data(DataConfig(source="hf", hf_name=str(tmp_path / "tokens")))


def test_hf_val_split_of_a_single_dataset_folder_is_rejected(hf_dir: Path) -> None:
    cfg = DataConfig(source="hf", hf_name=str(hf_dir / "plain"), hf_val_split="test")
    with pytest.raises(DataError, match="test"):
        load_task_data(cfg)


def test_hf_unlabelled_rows_are_rejected(hf_dir: Path) -> None:
    cfg = DataConfig(source="hf", hf_name=str(hf_dir / "unlabelled"), hf_val_split="test")
    with pytest.raises(DataError, match="-1"):
        load_task_data(cfg)


# ---------------------------------------------------------------------------------------------
# Bad data: one line naming the file and the problem

GOOD = "text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(20))
GOOD_JSONL = "".join(
    json.dumps({"text": f"row {i}", "label": "ab"[i % 2]}) + "\n" for i in range(20)
)
EMPTY_SECOND_TEXT = '{"text": "a", "label": 1}\n{"text": "", "label": 2}\n'

# (id, file name, content or None for a missing file, extra DataConfig fields, message parts)
BAD_DATA: list[tuple[str, str, str | None, dict[str, Any], list[str]]] = [
    ("missing-file", "nope.csv", None, {}, ["file not found"]),
    ("a-folder", "saved", None, {"source": "jsonl"}, ["a folder, not a file", "use data=hf"]),
    ("no-rows", "empty.csv", "text,label\n", {}, ["no rows"]),
    (
        "no-text-column",
        "t.csv",
        GOOD.replace("text,", "sentence,", 1),
        {},
        ["no column 'text'", "sentence"],
    ),
    (
        "no-label-column",
        "l.csv",
        GOOD.replace(",label", ",topic", 1),
        {},
        ["no column 'label'", "topic"],
    ),
    ("custom-column-missing", "c.csv", GOOD, {"text_column": "body"}, ["no column 'body'"]),
    (  # another separator and a misnamed label column: the text column was named missing
        "semicolon-no-label-column",
        "l.csv",
        GOOD.replace(",label", ",topic", 1).replace(",", ";"),
        {},
        ["no column 'label' (columns: text, topic)"],
    ),
    (
        "excel-separator-hint",
        "hint.csv",
        "sep=;\n" + GOOD.replace(",", ";"),
        {},
        ["line 1 ('sep=;') is Excel's separator hint; delete it"],
    ),
    (  # two files joined with `cat`: the second header trained as a row of class "label"
        "repeated-header",
        "joined.csv",
        GOOD + GOOD,
        {},
        ["line 22 repeats the header (files joined together?): delete it"],
    ),
    (  # the same from two Excel files: the second header starts with a byte order mark
        "repeated-header-with-a-byte-order-mark",
        "joined_bom.csv",
        "\ufeff" + GOOD + "\ufeff" + GOOD,
        {},
        ["line 22 repeats the header (files joined together?)"],
    ),
    (  # a stray quote closed by an inch mark: the file keeps CSV's quoting rules, and the
        # three rows became one text labelled neg
        "stray-quote-closed-by-an-inch-mark",
        "inch.csv",
        GOOD + '"Best phone ever,a\nNice,a\nBad,b\nScreen is 6",b\nok,a\n',
        {},
        ["line 22: a quote opened here runs over 4 lines that read as rows of their own"],
    ),
    (
        "column-in-another-case",
        "caps.csv",
        GOOD.replace("text,label", "Text,Label", 1),
        {},
        ["no column 'text' (columns: Text, Label); set data.text_column=Text"],
    ),
    (  # another separator: found without case, so the message can name the column
        "tab-column-in-another-case",
        "caps.tsv",
        GOOD.replace("text,label", "Text,Label", 1).replace(",", "\t"),
        {"source": "csv"},
        ["no column 'text' (columns: Text, Label); set data.text_column=Text"],
    ),
    (
        "jsonl-read-as-csv",
        "rows.jsonl",
        GOOD_JSONL,
        {"source": "csv"},
        ["no column 'text': the file reads as JSON Lines, not CSV; use data=jsonl"],
    ),
    (
        "csv-read-as-jsonl",
        "rows.csv",
        GOOD,
        {"source": "jsonl"},
        ["line 1: not valid JSON (Expecting value); is it a CSV file? use data=csv"],
    ),
    (
        "one-class",
        "one.csv",
        "text,label\n" + "x,a\ny,a\nz,a\nw,a\n",
        {},
        ["only one class", "'a'"],
    ),
    (  # valid JSON, but no text: the tokenizer and the data's hash failed with tracebacks
        "half-a-character",
        "half.jsonl",
        "".join(f'{{"text": "row {i}", "label": "{"ab"[i % 2]}"}}\n' for i in range(20))
        + '{"text": "love it \\ud83d", "label": "a"}\n',
        {},
        ["line 21: half a character (\\ud83d, a lone UTF-16 surrogate) in the text: fix or"],
    ),
    ("empty-text", "e.csv", "text,label\nhi,a\n  ,b\nho,a\n", {}, ["line 3: empty text"]),
    ("missing-label", "m.csv", "text,label\nhi,a\nho,\n", {}, ["line 3: missing label"]),
    (  # a quoted text over three lines and a blank line before the bad row: counted as
        # rows, the message named line 3
        "line-of-the-bad-row",
        "q.csv",
        'text,label\n"one\ntwo\nthree",a\n\nfine,b\n  ,a\n',
        {},
        ["line 7: empty text"],
    ),
    (
        "jsonl-line-of-the-bad-row",
        "q.jsonl",
        '\n\n{"text": "hi", "label": "a"}\n{"text": " ", "label": "b"}\n',
        {},
        ["line 4: empty text"],
    ),
    (  # an unquoted comma in a text: the label read as "please help", "account" dropped
        "comma-in-a-text",
        "comma.csv",
        GOOD + "I can't log in, please help,account\n",
        {},
        ["line 22: 3 fields, the header has 2 (a comma inside a text? put the text in double"],
    ),
    (  # too few fields: no label, not "missing label" of a row the file does not number
        "short-row",
        "short.csv",
        GOOD.replace("row 3,b\n", "row 3\n"),
        {},
        ["line 5: 1 field, the header has 2"],
    ),
    (  # an empty column after the label: the surplus field was empty, the label shifted
        "comma-in-a-text-before-a-notes-column",
        "notes.csv",
        "text,label,notes\n"
        + "".join(f"row {i},{'ab'[i % 2]},\n" for i in range(20))
        + "hello, world,a,\n",
        {},
        ["line 22: 4 fields, the header has 3 (a comma inside a text?"],
    ),
    (  # a stray opening quote: the rows up to the next quote were read as one text
        "stray-quote-swallowing-rows",
        "stray.tsv",
        "text\tlabel\n"
        + "".join(f"row {i}\t{'ab'[i % 2]}\n" for i in range(20))
        + '"Best phone ever\ta\nbattery died\tb\nmy wife says "meh"\tb\n',
        {"source": "csv"},
        ["line 22: a quote opened here runs over 3 lines that read as rows of their own (a stray"],
    ),
    (  # one row swallowed by a stray quote in a file that breaks CSV's rules (`6" screen`):
        # the row and the next merged into one text, labelled by the next (19 rows loaded)
        "stray-quote-swallowing-one-row",
        "stray_one.csv",
        "text,label\n"
        + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(5))
        + '"Best phone ever,a\n6" screen,b\n'
        + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(5, 18)),
        {},
        ["line 7: a quote opened here runs over 2 lines that read as rows of their own (a stray"],
    ),
    (  # `text,label,notes` and a comma in a text: the header's field count, the label shifted
        # into the notes and the text's second half a class of one row
        "comma-in-text-shifting-the-label-into-a-later-column",
        "notes.csv",
        "text,label,notes\n"
        + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(20))
        + "hello, world,a\n",
        {},
        [
            "line 22: label 'world' is on no other row, and 'a', another row's label, follows it "
            "(a comma inside the text? put the text in double quotes)"
        ],
    ),
    (  # the stray quote in a middle column (an id first): its first line is a row's end
        "stray-quote-after-an-id-column",
        "ids.csv",
        "id,text,label\n"
        + "".join(f"{i},row {i},{'ab'[i % 2]}\n" for i in range(20))
        + '20,"Best phone ever,a\n21,row two,b\n22,row three,a\n23,"ok",b\n',
        {},
        ["line 22: a quote opened here runs over 4 lines that read as rows of their own"],
    ),
    (  # the same, the label first: the row was not short, so it loaded (7 rows into one)
        "open-quote-label-first",
        "quote_first.csv",
        "label,text\n" + "".join(f"{'ab'[i % 2]},row {i}\n" for i in range(20)) + 'a,"row x\nb,y\n',
        {},
        ["line 22: a quote opened here is never closed"],
    ),
    (  # mostly shifted rows (a comma in most texts): counted as the file's style, 6 of 10 wrong
        "comma-in-most-texts-before-a-notes-column",
        "mostly.csv",
        "text,label,notes\n"
        + "".join(f"hi {i}, you,{'ab'[i % 2]},\n" for i in range(12))
        + "".join(f"row {i},{'ab'[i % 2]},\n" for i in range(8)),
        {},
        ["line 2: 4 fields, the header has 3 (a comma inside a text?"],
    ),
    (  # a quote left open swallowed every later row into one text
        "open-quote",
        "quote.csv",
        GOOD.replace("row 3,b", '"row 3,b', 1),
        {},
        ["line 5: a quote opened here is never closed"],
    ),
    (
        "score-column",
        "scores.csv",
        "text,label\n" + "".join(f"row {i},{i / 7:.3f}\n" for i in range(20)),
        {},
        # the example a fraction (0.000 is a whole number, as an id column's 1.0 would be)
        ["column 'label' has 20 distinct values in 20 rows", "such as 0.143", "bin them into"],
    ),
    (
        "id-column",
        "ids.csv",
        "text,label,id\n" + "".join(f"row {i},{'ab'[i % 2]},r{i}\n" for i in range(20)),
        {"label_column": "id"},
        ["column 'id' has 20 distinct values", "20 of them alone", "is it the label column?"],
    ),
    ("too-few-to-split", "few.csv", "text,label\nhi,a\nho,b\n", {}, ["too few examples (2)"]),
    (
        "csv-column-twice",
        "twice.csv",
        "text,label, label\nx,a,b\n",
        {},
        ["column 'label' appears twice in the header"],
    ),  # (the last one was read)
    (
        "csv-blank-first-line",
        "blank.csv",
        "\ntext,label\nx,a\n",
        {},
        ["line 1 is empty; the header (the column names) comes first"],
    ),
    ("bad-json", "bad.jsonl", GOOD_JSONL + '{"text": "x", \n', {}, ["line 21", "not valid JSON"]),
    ("json-not-object", "list.jsonl", "[1, 2]\n", {}, ["line 1", "expected a JSON object"]),
    (  # a blank first line: the format still shows on the first line with content
        "json-array-after-a-blank-line",
        "array2.json",
        '\n[{"text": "x", "label": "a"}]\n',
        {"source": "jsonl"},
        ["line 2: expected a JSON object", "not an array"],
    ),
    (
        "json-array-file",
        "array.json",
        '[{"text": "x", "label": "a"},\n {"text": "y", "label": "b"}]\n',
        {"source": "jsonl"},
        ["line 1: not valid JSON", "JSON Lines holds one object per line, not an array"],
    ),
    ("jsonl-no-label", "nl.jsonl", '{"text": "x"}\n', {}, ["no column 'label'"]),
    ("jsonl-empty-text", "et.jsonl", EMPTY_SECOND_TEXT, {}, ["line 2", "empty text"]),
    (
        "jsonl-label-list",
        "multi.jsonl",
        GOOD_JSONL + '{"text": "x", "label": ["a", "b"]}\n',
        {},
        ["line 21", "the label in column 'label' is a list (['a', 'b'])", "multi-label"],
    ),
    (
        "jsonl-text-not-a-string",
        "num.jsonl",
        '{"text": "x", "label": "a"}\n{"text": 12345, "label": "b"}\n',
        {},
        ["line 2", "the text in column 'text' is not a string (12345)"],
    ),
    (
        "jsonl-label-nan",
        "nan.jsonl",
        '{"text": "x", "label": "a"}\n{"text": "y", "label": NaN}\n',
        {},
        ["line 2", "missing label"],
    ),
    (  # Python's int() refuses past 4,300 digits: a ValueError that was a traceback
        "jsonl-label-too-long-an-integer",
        "long.jsonl",
        '{"text": "x", "label": "a"}\n{"text": "y", "label": ' + "1" * 5000 + "}\n",
        {},
        ["line 2: a number of more than 4,300 digits"],
    ),
    (  # valid JSON past Python's recursion limit: a RecursionError traceback
        "jsonl-nested-too-deeply",
        "deep.jsonl",
        '{"text": "x", "label": "a"}\n{"text": "y", "label": '
        + "[" * 100_000
        + "]" * 100_000
        + "}\n",
        {},
        ["line 2: JSON nested too deeply to read"],
    ),
    (
        "jsonl-label-object",
        "obj.jsonl",
        '{"text": "x", "label": {"name": "a"}}\n',
        {},
        ["line 1", "is a JSON object ({'name': 'a'})"],
    ),
]


def test_a_class_of_one_row_beside_a_column_of_labels_loads(tmp_path: Path) -> None:
    """The label-shift check refused a file whose next column holds labels of its own (a
    model's prediction, a domain named like an intent), a class of one row among them."""
    rows = [f"row {i},{'ab'[i % 2]},{'ba'[i % 3 == 0]}\n" for i in range(20)]
    path = tmp_path / "predicted.csv"
    path.write_text("text,label,prediction\n" + "".join(rows) + "rare one,c,a\n")
    task = load_task_data(DataConfig(source="csv", path=str(path), test_fraction=0))
    assert task.label_names == ["a", "b", "c"]
    notes = tmp_path / "notes.csv"  # a class of one row, its note empty: no label follows it
    notes.write_text(
        "text,label,notes\n"
        + "".join(f"row {i},{'ab'[i % 2]},\n" for i in range(20))
        + "rare one,c,\nrare two,d,seen once\n"
    )
    assert load_task_data(DataConfig(source="csv", path=str(notes), test_fraction=0))
    one = tmp_path / "one_note.csv"  # one common-class row's note naming a class: still a shift
    one.write_text(
        "text,label,notes\nrow x,a,b\n"
        + "".join(f"row {i},{'ab'[i % 2]},\n" for i in range(20))
        + "hello, world,a\n"
    )
    with pytest.raises(DataError, match="label 'world' is on no other row"):
        load_task_data(DataConfig(source="csv", path=str(one), test_fraction=0))


def test_rows_of_separators_alone_are_skipped_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A spreadsheet's empty rows (`,` or `,,`) were dropped without a word, while an empty
    text or a missing label is an error."""
    path = tmp_path / "sheet.csv"
    rows = [f"text {i},{'ab'[i % 2]}\n" for i in range(20)]
    path.write_text("text,label\n" + "".join(rows[:2]) + ",\n" + "".join(rows[2:]) + " , \n\n")
    with caplog.at_level("WARNING", logger="automl.data.load"):
        task = load_task_data(DataConfig(source="csv", path=str(path), test_fraction=0))
    assert len(task.train.texts) + len(task.val.texts) == 20
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 2 rows hold only separators, skipped as empty rows (lines 4, 23)"
    ]


def test_labels_mostly_alone_in_their_class_only_warn_where_nothing_is_split(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Few-shot training data with its own validation and test files is not refused."""
    train = tmp_path / "train.csv"
    train.write_text("text,label\n" + "".join(f"row {i},c{i}\n" for i in range(12)))
    other = tmp_path / "other.csv"
    other.write_text("text,label\nx,c0\ny,c1\n")
    with caplog.at_level("WARNING", logger="automl.data.load"):
        task = load_task_data(
            DataConfig(source="csv", path=str(train), val_path=str(other), test_path=str(other))
        )
    assert len(task.label_names) == 12
    assert [r.getMessage() for r in caplog.records] == [
        f"{train}: column 'label' has 12 distinct values in 12 rows, 12 of them alone in "
        "their class: is it the label column?"
    ]
    # a test split to cut: refused, naming what few-shot data sets (the column may be right)
    with pytest.raises(DataError, match="is it the label column.*data.test_fraction=0 or data"):
        load_task_data(DataConfig(source="csv", path=str(train), val_path=str(other)))


@pytest.mark.parametrize(
    ("name", "content", "extra", "parts"), [c[1:] for c in BAD_DATA], ids=[c[0] for c in BAD_DATA]
)
def test_bad_data_fails_with_one_line_naming_file_and_problem(
    tmp_path: Path, name: str, content: str | None, extra: dict[str, Any], parts: list[str]
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    elif "." not in name:
        path.mkdir()  # what save_to_disk writes
    settings = {"source": "csv" if name.endswith(".csv") else "jsonl", **extra}
    with pytest.raises(DataError) as err:
        load_task_data(DataConfig(path=str(path), **settings))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    for part in parts:
        assert part in message


def test_a_label_that_reads_as_a_missing_value_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """R and pandas write a missing label as NA: it trained as a class of its own, unsaid."""
    path = tmp_path / "r.csv"
    path.write_text(GOOD + "row 20,NA\nrow 21,NA\n")
    with caplog.at_level("WARNING", logger="automl.data.load"):
        task = load_task_data(DataConfig(source="csv", path=str(path)))
    assert "NA" in task.label_names  # trained on as asked: a class may be called that
    assert [r.getMessage() for r in caplog.records] == [
        f"{path}: 2 rows have the label 'NA' in column 'label': a missing value written as "
        "text? It trains as a class of its own"
    ]


def test_validation_label_unseen_in_train_names_the_validation_file(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text(GOOD)
    val = tmp_path / "val.csv"
    val.write_text("text,label\nq,a\nr,zzz\n")
    with pytest.raises(DataError) as err:
        load_task_data(DataConfig(source="csv", path=str(train), val_path=str(val)))
    assert str(err.value) == f"{val}: labels not in the training data: ['zzz']"


def test_a_validation_file_named_its_columns_otherwise_is_told_to_rename_them(
    tmp_path: Path,
) -> None:
    """`set data.text_column=Text` (a training file's fix) would break the training file."""
    train, val = tmp_path / "train.csv", tmp_path / "val.csv"
    train.write_text(GOOD)
    val.write_text(GOOD.replace("text,label", "Text,Label", 1))
    with pytest.raises(DataError) as err:
        load_task_data(DataConfig(source="csv", path=str(train), val_path=str(val)))
    assert str(err.value) == (
        f"{val}: no column 'text' (columns: Text, Label); name it 'text', as {train} does"
    )


def test_a_validation_file_of_empty_objects_is_one_line(tmp_path: Path) -> None:
    train, val = tmp_path / "train.jsonl", tmp_path / "val.jsonl"
    train.write_text(GOOD_JSONL)
    val.write_text("{}\n")
    with pytest.raises(DataError, match=r"val.jsonl: no column 'text' \(columns: \); name it"):
        load_task_data(DataConfig(source="jsonl", path=str(train), val_path=str(val)))


def test_a_quoted_text_whose_lines_read_like_rows_loads_from_a_file_quoted_by_the_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Texts holding a table (`apples,0`) written by csv.writer were refused as a stray quote
    swallowing rows; a stray quote stays refused (BAD_DATA's stray-quote cases)."""
    import csv

    path = tmp_path / "tables.csv"
    with path.open("w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["text", "label"])
        for i in range(40):
            out.writerow([f"apples,0\npears,1\ntotal {i}", i % 2])
    with caplog.at_level(logging.WARNING, logger="automl.data.load"):
        task = load_task_data(DataConfig(source="csv", path=str(path)))
    texts = [t for split in _splits(task) for t in split.texts]
    assert len(texts) == 40 and "apples,0\npears,1\ntotal 3" in texts
    # said all the same: two stray quotes closed by inch marks would meet CSV's rules too
    assert (
        "40 quoted texts hold lines that read as rows of the file (lines 2, 5, 8, 11, 14 and 35 "
        "more): read as texts" in caplog.text
    )


def test_missing_validation_file_is_named(tmp_path: Path) -> None:
    train = tmp_path / "train.csv"
    train.write_text(GOOD)
    val = tmp_path / "val.csv"
    with pytest.raises(DataError, match=f"^{val}: file not found$"):
        load_task_data(DataConfig(source="csv", path=str(train), val_path=str(val)))


def test_csv_trailing_empty_fields_and_a_text_opening_with_a_quotation_load(
    tmp_path: Path,
) -> None:
    """What the field-count check must not refuse: Excel's trailing separators (on the rows
    alone, or on the header too, or on every row before a column of notes), `"Great" product`
    (a quoted start, then more text: read as Python's csv and pandas read it), the same
    written as CSV quotes it, and a quoted text over several lines."""
    path = tmp_path / "excel.csv"
    rows = "".join(f"row {i},{'ab'[i % 2]}{',' * (i % 3)}\n" for i in range(27))
    quoted = '"Great" product,b\n"""Great"" product",b\n"Dear team,\nplease, refund,\nthanks",a\n'
    path.write_text("text,label\n" + rows + quoted)
    task = load_task_data(DataConfig(source="csv", path=str(path)))
    texts = sorted(t for split in _splits(task) for t in split.texts)
    assert len(texts) == 30 and {"Great product", '"Great" product'} <= set(texts)
    assert "Dear team,\nplease, refund,\nthanks" in texts
    # quoted texts whose lines end like rows (`Well, b`: a label of the file): one such line
    # is a text's own, and a label-first file's options (`a, the first one`) too
    lines = '"Do you agree?\nWell, b\nthanks",a\n' + 'b,"Options:\na, the first\nb, the second"\n'
    path.write_text("text,label\n" + rows + lines.split("b,", 1)[0])
    assert (
        sum(len(s.texts) for s in _splits(load_task_data(DataConfig(source="csv", path=str(path)))))
        == 28
    )
    label_first = (
        "".join(f"{'ab'[i % 2]},row {i}\n" for i in range(27)) + "b," + lines.split("b,", 1)[1]
    )
    path.write_text("label,text\n" + label_first)
    assert (
        sum(len(s.texts) for s in _splits(load_task_data(DataConfig(source="csv", path=str(path)))))
        == 28
    )
    noted = "".join(f"row {i},{'ab'[i % 2]},note {i},\n" for i in range(30))
    path.write_text("text,label,notes\n" + noted)
    task = load_task_data(DataConfig(source="csv", path=str(path)))
    assert sum(len(s.texts) for s in _splits(task)) == 30
    path.write_text("text,label,,\n" + rows)
    assert (
        sum(len(s.texts) for s in _splits(load_task_data(DataConfig(source="csv", path=str(path)))))
        == 27
    )


def test_csv_lines_of_spaces_are_skipped_as_empty_ones_are(tmp_path: Path) -> None:
    path = tmp_path / "spaces.csv"
    rows = "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(30))
    path.write_text("text,label\n" + rows + "   \n\n  \t \n")
    task = load_task_data(DataConfig(source="csv", path=str(path)))
    assert sum(len(split.texts) for split in _splits(task)) == 30


def test_csv_reads_a_field_longer_than_pythons_default_limit(tmp_path: Path) -> None:
    """A long document in one row (Python's csv stops at 131,072 characters by default)."""
    path = tmp_path / "long.csv"
    long = "word " * 40_000
    path.write_text("text,label\n" + "".join(f"row {i},{'ab'[i % 2]}\n" for i in range(30))
                    + f'"{long}",a\n')  # fmt: skip
    task = load_task_data(DataConfig(source="csv", path=str(path), val_fraction=0.2))
    texts = task.train.texts + task.val.texts + (task.test.texts if task.test else [])
    assert long.strip() in texts


def test_csv_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "excel.csv"
    path.write_text("\ufeff" + GOOD, encoding="utf-8")
    task = load_task_data(DataConfig(source="csv", path=str(path)))
    assert task.label_names == ["a", "b"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_separator_is_found_from_the_header(tmp_path: Path, delimiter: str) -> None:
    """Excel writes `;` in many locales; texts hold commas and semicolons of their own."""
    import csv

    path = tmp_path / "export.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(["id", "body", "queue"])
        for i in range(30):
            writer.writerow([i, f"refund, please; order {i}", "billing"])
            writer.writerow([i, f"it crashed; again, {i}", "tech"])
    cfg = DataConfig(source="csv", path=str(path), text_column="body", label_column="queue")
    task = load_task_data(cfg)
    assert task.label_names == ["billing", "tech"]
    assert any(t.startswith("refund, please; order") for t in task.train.texts)


def test_csv_header_names_are_read_without_the_spaces_around_them(tmp_path: Path) -> None:
    """`text, label` (a space after the comma) had a column named ' label', and the message
    suggested `data.label_column= label`, which the shell cannot pass."""
    path = tmp_path / "spaced.csv"
    path.write_text(GOOD.replace("text,label", "text , label", 1))
    task = load_task_data(DataConfig(source="csv", path=str(path)))
    assert task.label_names == ["a", "b"]
    # what the message once told users to set (a recorded config still says it)
    spaced = DataConfig(source="csv", path=str(path), label_column=" label")
    assert load_task_data(spaced).label_names == ["a", "b"]


# ---------------------------------------------------------------------------------------------
# Tokenizing and collating


def _task(texts: list[str], labels: list[int]) -> TaskData:
    return TaskData(
        LabeledTexts(texts, labels), LabeledTexts(texts[:1], labels[:1]), ["a", "b"], "test"
    )


def test_tokenize_then_collate_pads_right_with_the_pad_id(tokenizer: Any) -> None:
    texts = ["hi", "a somewhat longer sentence about the weather", "three word text"]
    data = tokenize(_task(texts, [0, 1, 1]), tokenizer, 64)
    pad = tokenizer.pad_token_id
    assert data.pad_token_id == pad
    lengths = data.train.lengths
    assert list(lengths) == [len(tokenizer(t)["input_ids"]) for t in texts]
    assert all(
        ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
        for ids in data.train.input_ids
    )

    idx = np.array([2, 0, 1])
    batch = collate(data.train, idx, pad)
    width = int(lengths.max())
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (3, width)
    assert batch["labels"].tolist() == [1, 0, 1]
    for row, i in enumerate(idx):
        n = int(lengths[i])
        assert batch["input_ids"][row, :n].tolist() == data.train.input_ids[i]
        assert (batch["input_ids"][row, n:] == pad).all()
        assert batch["attention_mask"][row, :n].tolist() == [1] * n
        assert batch["attention_mask"][row, n:].sum() == 0
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == batch["labels"].dtype


def test_tokenize_truncates_to_max_length(tokenizer: Any) -> None:
    data = tokenize(_task([" ".join(["word"] * 100), "short"], [0, 1]), tokenizer, 16)
    assert list(data.train.lengths) == [16, 3]
    assert data.train.input_ids[0][-1] == tokenizer.sep_token_id


def test_tokenize_needs_a_pad_token(tokenizer: Any) -> None:
    no_pad = copy.deepcopy(tokenizer)
    no_pad.pad_token = None
    with pytest.raises(DataError, match="pad token"):
        tokenize(_task(["x", "y"], [0, 1]), no_pad, 16)


# ---------------------------------------------------------------------------------------------
# Length-bucketed batching


@pytest.mark.parametrize(
    ("n", "batch_size", "pool"), [(1, 4, 1), (103, 8, 3), (64, 16, 50), (500, 7, 1)]
)
def test_bucketed_batches_cover_every_index_once(n: int, batch_size: int, pool: int) -> None:
    lengths = np.random.default_rng(1).integers(1, 60, size=n)
    batches = length_bucketed_batches(lengths, batch_size, pool, np.random.default_rng(0))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(n))
    assert all(1 <= len(b) <= batch_size for b in batches)
    assert len(batches) <= -(-n // batch_size) + -(-n // (batch_size * pool))


@pytest.mark.parametrize(
    ("num_train", "accum", "expected"),
    [(100_000, 1, 32), (12_800, 1, 32), (12_799, 1, 16), (6_400, 1, 16), (6_399, 1, 8),
     (10, 1, 8), (12_800, 2, 16), (25_600, 2, 32)],
)  # fmt: skip
def test_auto_batch_size_keeps_400_steps_an_epoch(
    num_train: int, accum: int, expected: int
) -> None:
    size = auto_batch_size(num_train, accum)
    assert size == expected
    larger = {32: None, 16: 32, 8: 16}[size]  # the next size up would give fewer steps
    assert larger is None or num_train / (larger * accum) < 400


def test_bucketed_batches_are_seeded() -> None:
    lengths = np.random.default_rng(1).integers(1, 60, size=300)

    def run(seed: int) -> list[list[int]]:
        return [
            b.tolist() for b in length_bucketed_batches(lengths, 16, 4, np.random.default_rng(seed))
        ]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_sorted_batches_cover_every_index_in_length_order() -> None:
    lengths = np.array([5, 1, 9, 3, 3, 7, 2])
    batches = sorted_batches(lengths, 3)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(7))
    assert list(lengths[flat]) == sorted(lengths)


def _padded_tokens(batches: list[np.ndarray], lengths: np.ndarray) -> int:
    return int(sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches))


def _distinct_labels(batches: list[np.ndarray], labels: np.ndarray) -> float:
    return float(np.mean([len(set(labels[b].tolist())) for b in batches]))


def _shuffled_batches(n: int, batch_size: int, seed: int) -> list[np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


@pytest.mark.parametrize("batch_size", [16, 32])
def test_bucketed_batches_pad_much_less_than_random_ones(
    chatterbot_tokens: PreparedData, batch_size: int
) -> None:
    lengths = chatterbot_tokens.train.lengths
    bucketed = length_bucketed_batches(lengths, batch_size, 50, np.random.default_rng(0))
    shuffled = _shuffled_batches(len(lengths), batch_size, seed=0)
    assert _padded_tokens(bucketed, lengths) < 0.1 * _padded_tokens(shuffled, lengths)


def test_bucketed_batches_come_in_shuffled_order() -> None:
    """Even with one pool (the whole set sorted by length) the batches are not shortest first."""
    lengths = np.random.default_rng(1).integers(1, 60, size=400)
    batches = length_bucketed_batches(lengths, 8, 1000, np.random.default_rng(0))
    widths = [int(lengths[b].max()) for b in batches]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)
    # inside a batch the rows are neighbours in length order: at most a step or two apart
    assert all(int(lengths[b].max() - lengths[b].min()) <= 2 for b in batches)


@pytest.mark.parametrize(("batch_size", "seed"), [(16, 0), (32, 0), (32, 1)])
def test_bucketed_batches_are_not_class_sorted(
    chatterbot_tokens: PreparedData, batch_size: int, seed: int
) -> None:
    """On chatterbot the length tracks the topic (and the rows come in topic order), so sorting
    batches by length would also sort them by class. Bucketing must keep the mix of shuffling."""
    split: TokenizedSplit = chatterbot_tokens.train
    lengths, labels = split.lengths, split.labels
    bucketed = _distinct_labels(
        length_bucketed_batches(lengths, batch_size, 50, np.random.default_rng(seed)), labels
    )
    shuffled = _distinct_labels(_shuffled_batches(len(split), batch_size, seed + 100), labels)
    fully_sorted = _distinct_labels(sorted_batches(lengths, batch_size), labels)
    assert bucketed >= 0.75 * shuffled
    assert bucketed >= 1.8 * fully_sorted


@pytest.mark.parametrize("rule", ["buckets", "stratified", "fine_stratified"])
@pytest.mark.parametrize(("n", "batch_size"), [(400, 16), (401, 32), (7, 8)])
def test_length_buckets_visit_every_row_once_in_as_many_batches_as_shuffling(
    n: int, batch_size: int, rule: str
) -> None:
    def batch(seed: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        if rule == "buckets":
            return length_bucket_batches(lengths, batch_size, rng)
        edges = FINE_EDGES if rule == "fine_stratified" else (8, 16, 32, 64, 128)
        return length_bucket_batches(lengths, batch_size, rng, edges, labels)

    labels = np.random.default_rng(7).integers(0, 5, size=n)

    lengths = np.random.default_rng(2).integers(1, 200, size=n)
    batches = batch(0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(n))
    assert len(batches) == -(-n // batch_size)  # the schedule counts on ceil(n / batch)
    assert sum(len(b) < batch_size for b in batches) <= 1
    assert [b.tolist() for b in batches] == [b.tolist() for b in batch(0)]
    assert [b.tolist() for b in batches] != [b.tolist() for b in batch(1)] or n < batch_size


def test_spread_classes_gives_every_window_its_share_of_each_class() -> None:
    """Systematic sampling per class: any 10 consecutive rows of a 60/30/10 mix hold 6, 3 and 1
    of the classes, give or take one."""
    labels = np.repeat([0, 1, 2], [60, 30, 10])
    members = np.random.default_rng(0).permutation(100)
    spread = spread_classes(members, labels, np.random.default_rng(1))
    assert sorted(spread.tolist()) == list(range(100))
    for start in range(0, 91):
        counts = np.bincount(labels[spread[start : start + 10]], minlength=3)
        assert np.all(np.abs(counts - [6, 3, 1]) <= 1), (start, counts)
    # the order inside a class is the shuffle's: which rows of a class come first stays random
    zeros = [m for m in spread.tolist() if labels[m] == 0]
    assert zeros == [m for m in members.tolist() if labels[m] == 0]


def test_length_buckets_bound_the_padding_by_their_bucket() -> None:
    """A full batch inside one bucket pads to at most its bucket's upper edge."""
    lengths = np.random.default_rng(3).integers(1, 129, size=2000)
    edges = np.asarray([8, 16, 32, 64, 128])
    for batch in length_bucket_batches(lengths, 16, np.random.default_rng(0)):
        buckets = set(np.searchsorted(edges, lengths[batch], side="left").tolist())
        assert len(buckets) <= 2  # one bucket, or a bucket plus the leftovers of the one below


@pytest.mark.parametrize(("batch_size", "seed"), [(16, 0), (32, 1)])
def test_length_buckets_mix_classes_better_than_pools_and_pad_like_them(
    chatterbot_tokens: PreparedData, batch_size: int, seed: int
) -> None:
    """The point of the default: nearly the padding of pools of 50 batches, a better class mix."""
    split: TokenizedSplit = chatterbot_tokens.train
    lengths, labels = split.lengths, split.labels
    buckets = length_bucket_batches(lengths, batch_size, np.random.default_rng(seed))
    pools = length_bucketed_batches(lengths, batch_size, 50, np.random.default_rng(seed))
    shuffled = _shuffled_batches(len(split), batch_size, seed)
    assert _distinct_labels(buckets, labels) > _distinct_labels(pools, labels)
    assert _padded_tokens(buckets, lengths) < 0.4 * _padded_tokens(shuffled, lengths)


@pytest.mark.parametrize(("batch_size", "seed"), [(8, 0), (16, 1), (32, 2)])
def test_stratified_buckets_mix_classes_better_than_random_batches_and_pad_like_buckets(
    chatterbot_tokens: PreparedData, batch_size: int, seed: int
) -> None:
    """`train.bucket_edges=pow2`: the coarse buckets' padding, each batch its bucket's class mix, on
    this corpus holds more classes a batch than random batches do."""
    split: TokenizedSplit = chatterbot_tokens.train
    lengths, labels = split.lengths, split.labels
    rng = np.random.default_rng(seed)
    stratified = length_bucket_batches(lengths, batch_size, rng, labels=labels)
    buckets = length_bucket_batches(lengths, batch_size, np.random.default_rng(seed))
    shuffled = _shuffled_batches(len(split), batch_size, seed)
    assert _padded_tokens(stratified, lengths) <= 1.05 * _padded_tokens(buckets, lengths)
    assert _distinct_labels(stratified, labels) > 1.05 * _distinct_labels(buckets, labels)
    assert _distinct_labels(stratified, labels) > _distinct_labels(shuffled, labels)


@pytest.mark.parametrize(("batch_size", "seed"), [(8, 0), (16, 1), (32, 2)])
def test_fine_stratified_buckets_pad_like_sorted_pools_and_mix_like_coarse_buckets(
    chatterbot_tokens: PreparedData, batch_size: int, seed: int
) -> None:
    """The default (`train.bucket_edges=fine`): near the padding of pools of 50 sorted batches
    (under half the coarse buckets' padding), the class mix of the coarse random buckets, a
    better mix than the pools."""
    split: TokenizedSplit = chatterbot_tokens.train
    lengths, labels = split.lengths, split.labels
    rng = np.random.default_rng(seed)
    fine = length_bucket_batches(lengths, batch_size, rng, FINE_EDGES, labels)
    buckets = length_bucket_batches(lengths, batch_size, np.random.default_rng(seed))
    pools = length_bucketed_batches(lengths, batch_size, 50, np.random.default_rng(seed))
    assert _padded_tokens(fine, lengths) <= 1.5 * _padded_tokens(pools, lengths)
    assert _padded_tokens(fine, lengths) < 0.5 * _padded_tokens(buckets, lengths)
    assert _distinct_labels(fine, labels) >= 0.97 * _distinct_labels(buckets, labels)
    assert _distinct_labels(fine, labels) > 1.05 * _distinct_labels(pools, labels)


@pytest.mark.parametrize(
    ("n", "step", "per_step"), [(400, 8, 2), (401, 8, 4), (7, 8, 8), (50, 16, 1)]
)
def test_steps_of_length_groups_keep_every_row_and_the_step_count(
    n: int, step: int, per_step: int
) -> None:
    """Groups of step / per_step rows join into ceil(n / step) steps, the one partial group in
    the last step, so cutting a step into groups of that size never straddles two groups.
    One group a step leaves the batches as they were."""
    lengths = np.random.default_rng(2).integers(1, 200, size=n)
    labels = np.random.default_rng(7).integers(0, 5, size=n)
    size = step // per_step
    groups = length_bucket_batches(lengths, size, np.random.default_rng(0), FINE_EDGES, labels)
    steps = steps_of_length_groups(groups, per_step)
    assert sorted(np.concatenate(steps).tolist()) == list(range(n))
    assert len(steps) == -(-n // step)
    if per_step == 1:  # one group a step: the batcher's own order, partial batch anywhere
        assert [s.tolist() for s in steps] == [g.tolist() for g in groups]
        return
    assert all(len(s) == step for s in steps[:-1])
    cut = [s[i : i + size].tolist() for s in steps for i in range(0, len(s), size)]
    assert cut == [g.tolist() for g in groups if len(g) == size] + [
        g.tolist() for g in groups if len(g) < size
    ]


def _class_mix_distance(steps: list[np.ndarray], labels: np.ndarray) -> float:
    """Mean total-variation distance between a full step's class mix and the whole epoch's."""
    classes = labels.max() + 1
    overall = np.bincount(labels, minlength=classes) / len(labels)
    full = [s for s in steps if len(s) == len(steps[0])]
    return float(
        np.mean([0.5 * np.abs(np.bincount(labels[s], minlength=classes) / len(s) - overall).sum()
                 for s in full])
    )  # fmt: skip


@pytest.mark.parametrize("seed", [0, 1])
def test_steps_of_several_length_groups_carry_the_datas_class_mix(
    chatterbot_tokens: PreparedData, seed: int
) -> None:
    """On chatterbot a length bucket has its own topic mix, so a step cut from one bucket is
    further from the data's mix than a random batch; steps of 4 groups of 2 come closer to the
    random batches' mix while each forward pass still pads within its bucket."""
    split: TokenizedSplit = chatterbot_tokens.train
    lengths, labels = split.lengths, split.labels

    def steps(per_step: int) -> list[np.ndarray]:
        rng = np.random.default_rng(seed)
        groups = length_bucket_batches(lengths, 8 // per_step, rng, FINE_EDGES, labels)
        return steps_of_length_groups(groups, per_step)

    one, four = steps(1), steps(4)
    shuffled = _shuffled_batches(len(split), 8, seed)
    assert _class_mix_distance(four, labels) < 0.93 * _class_mix_distance(one, labels)
    assert _class_mix_distance(four, labels) < 1.08 * _class_mix_distance(shuffled, labels)
    forward = [s[i : i + 2] for s in four for i in range(0, len(s), 2)]
    assert _padded_tokens(forward, lengths) <= _padded_tokens(one, lengths)


def test_max_examples_below_the_number_of_classes_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every class keeps an example: 50 asked of 100 classes gave 100 rows, then a split
    refused "too few examples (100)", naming neither the cap nor the classes."""
    names = [f"intent {c}" for c in range(100)]
    path = write_rows(tmp_path / "train.csv", _rows(1000, names))
    with pytest.raises(
        DataError, match=r"data.max_examples=50 is below the number of classes \(100\)"
    ):
        load_task_data(DataConfig(source="csv", path=str(path), max_examples=50))
    # no split cut from the capped rows (validation and test files of its own): as before
    val = write_rows(tmp_path / "val.csv", _rows(200, names))
    task = load_task_data(
        DataConfig(
            source="csv", path=str(path), max_examples=50, val_path=str(val), test_fraction=0
        )
    )
    assert len(task.train.labels) == 100
    three = write_rows(tmp_path / "three.csv", _rows(90, ["a"] * 80 + ["b"] * 9 + ["c"]))
    with caplog.at_level(logging.INFO, logger="automl.data.load"):
        task = load_task_data(
            DataConfig(source="csv", path=str(three), max_examples=4, test_fraction=0)
        )
    assert len(_all_labels(task)) == 5
    assert "data.max_examples=4 kept 5 rows: every class keeps an example" in caplog.text


def test_json_lines_whose_first_row_lacks_a_column_names_that_row(tmp_path: Path) -> None:
    """The column was looked for in the first row alone: "no column 'label' (columns:
    text)" for a file whose other rows all have it."""
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "hi"}\n' + GOOD_JSONL)
    with pytest.raises(DataError, match=r"a.jsonl: line 1: .*label"):
        load_task_data(DataConfig(source="jsonl", path=str(path)))


def test_a_csv_quoted_after_a_space_reads_its_columns(tmp_path: Path) -> None:
    """`"text", "label"`: the space before the quote kept the quotes in the name ("no column
    'label' (columns: text, "label")"), and in every label."""
    path = tmp_path / "k.csv"
    rows = "".join(f'"row {i}, with a comma", "{"ab"[i % 2]}"\n' for i in range(20))
    path.write_text('"text", "label"\n' + rows)
    task = load_task_data(DataConfig(source="csv", path=str(path)))
    assert task.label_names == ["a", "b"]
    assert "row 3, with a comma" in [t for split in _splits(task) for t in split.texts]


def test_a_quote_after_a_space_opens_no_field_where_the_header_does_not_quote_so(
    tmp_path: Path,
) -> None:
    """Read with spaces before quotes skipped everywhere, `pos, "Best phone ever` opened a
    quote that swallowed the next rows into one text, unsaid, and `pos, "Best" says my wife`
    lost its quotes (the data of earlier sweeps told apart as changed)."""
    path = tmp_path / "reviews.csv"
    rows = "".join(f"{'ab'[i % 2]}, plain text number {i}\n" for i in range(36))
    path.write_text(
        "label, text\n" + 'a, "Best phone ever\n' + rows + 'b, "meh" she said\n'
        + 'a, "Best" says my wife\n'
    )  # fmt: skip
    texts = [t for split in _splits(load_task_data(DataConfig(source="csv", path=str(path))))
             for t in split.texts]  # fmt: skip
    assert len(texts) == 39
    assert {'"Best phone ever', '"meh" she said', '"Best" says my wife'} <= set(texts)


def test_whole_numbers_written_as_floats_keep_numeric_order(tmp_path: Path) -> None:
    """Labels `0.0 .. 11.0` (pandas writes an int column that held a NaN so) were ordered
    0.0, 1.0, 10.0, 11.0, 2.0; and `1.0` in a validation file against the training file's `1`
    was refused without saying they are one number."""
    train = write_rows(tmp_path / "train.jsonl", _rows(120, [float(c) for c in range(12)]))
    task = load_task_data(DataConfig(source="jsonl", path=str(train)))
    assert task.label_names == [f"{c}.0" for c in range(12)]
    ints = write_rows(tmp_path / "ints.jsonl", _rows(40, [0, 1]))
    floats = write_rows(tmp_path / "floats.jsonl", _rows(10, [0.0, 1.0]))
    with pytest.raises(DataError, match=r"\('0.0' is the training data's '0' written another way"):
        load_task_data(DataConfig(source="jsonl", path=str(ints), val_path=str(floats)))
    # ids past 2**53, which floats merge, and `1_0` are not one number written two ways
    from automl.data.load import _written_apart

    index = {"9007199254740992": 0, "10": 1}
    assert _written_apart(["9007199254740993", "1_0"], index) == ""
    assert "'10.0' is the training data's '10'" in _written_apart(["10.0"], index)
