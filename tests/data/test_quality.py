"""The data-quality report on synthetic tasks: every count checked against a hand-made case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from automl.data.quality import (
    assess,
    duplicates_within,
    enforce,
    metrics,
    normalise,
    overlap,
    summary_lines,
)
from automl.data.task import DataError, LabeledTexts, TaskData


def _task(
    train: list[tuple[str, int]],
    val: list[tuple[str, int]],
    test: list[tuple[str, int]] | None = None,
    names: tuple[str, ...] = ("a", "b", "c"),
) -> TaskData:
    def split(rows: list[tuple[str, int]]) -> LabeledTexts:
        return LabeledTexts([t for t, _ in rows], [label for _, label in rows])

    return TaskData(
        split(train), split(val), list(names), "synthetic", split(test) if test else None
    )


def _lengths(task: TaskData, value: int = 5) -> dict[str, np.ndarray]:
    out = {
        "train": np.full(len(task.train.texts), value),
        "val": np.full(len(task.val.texts), value),
    }
    if task.test is not None:
        out["test"] = np.full(len(task.test.texts), value)
    return out


def _clean_task() -> TaskData:
    train = [(f"train text {i}", i % 3) for i in range(30)]
    val = [(f"val text {i}", i % 3) for i in range(9)]
    test = [(f"test text {i}", i % 3) for i in range(6)]
    return _task(train, val, test)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Hello, World!", "hello world", True),
        ("  What's   up?", "whats up", False),  # the apostrophe splits the word
        ("What's up?", "what s up", True),
        ("hello world", "hello there world", False),
        ("Ça va?", "ça va", True),
        ("`reset` password!", "reset password", True),  # backticks are punctuation here
        ("great 😍", "great", False),  # symbols stay: emoji, math, currency
        ("x < 5", "x > 5", False),
        ("5 €", "5 £", False),
        ("Le café est fermé", "le cafe\u0301 est ferme\u0301", True),  # composed or not
        ("ＡＢＣ ｗｏｒｄ", "abc word", True),  # full-width letters
        ("Straße", "STRASSE", True),
    ],
)
def test_normalise_keys(a: str, b: str, same: bool) -> None:
    assert (normalise(a) == normalise(b)) is same


def test_duplicates_and_overlap_count_rows() -> None:
    texts = ["Hi!", "hi", "hi", "bye"]
    assert duplicates_within(texts) == {"exact": 1, "near": 2}
    assert overlap(["hi", "bye"], ["HI", "bye", "new"]) == {"exact": 1, "near": 2}


def test_a_clean_task_has_no_problems_or_warnings() -> None:
    task = _clean_task()
    report = assess(task, _lengths(task), max_length=16, min_class_examples=5)
    assert report["sizes"] == {"train": 30, "val": 9, "test": 6}
    assert report["problems"] == [] and report["warnings"] == []
    assert report["classes"]["majority_share"] == pytest.approx(1 / 3, abs=1e-3)
    assert report["classes"]["below_min"] == []
    enforce(report, "fail")  # nothing to refuse


def test_leakage_duplicates_and_conflicts_are_counted() -> None:
    task = _clean_task()
    task.val.texts[0] = "Train text 0."  # near copy of a training text
    task.test.texts[1] = "train text 1"  # exact copy  # type: ignore[union-attr]
    task.test.texts[2] = "val text 2"  # exact copy of a validation text  # type: ignore[union-attr]
    task.train.texts[5] = "train text 4"  # duplicate inside train (labels 1 and 2: a conflict)
    report = assess(task, _lengths(task), max_length=16, min_class_examples=5)
    assert report["leakage"]["train->val"] == {"exact": 0, "near": 1}
    assert report["leakage"]["train->test"] == {"exact": 1, "near": 1}
    assert report["leakage"]["val->test"] == {"exact": 1, "near": 1}
    assert report["duplicates"]["train"] == {"exact": 1, "near": 1}
    assert report["conflicting_labels"] == 1
    assert report["problems"] == [
        "1 val text also in train (0 exact)",
        "1 test text also in train (1 exact)",
        "1 test text also in val (1 exact)",
    ]
    assert "1 duplicate text in train (1 exact)" in report["warnings"]
    assert "1 text carries more than one label" in report["warnings"]
    assert metrics(report)["dq_leakage_test"] == 1


def test_label_names_that_differ_only_in_case_or_spacing_are_named() -> None:
    rows = [(f"text {i}", i % 3) for i in range(30)]
    task = _task(rows, rows[:9], names=("Sport", "sport ", "tech"))
    report = assess(task, _lengths(task), max_length=16, min_class_examples=5)
    assert report["similar_label_names"] == [["Sport", "sport "]]
    assert (
        "labels that differ only in case, spacing or punctuation: 'Sport' / 'sport '"
        in report["warnings"]
    )
    assert assess(_clean_task(), _lengths(_clean_task()), 16, 5)["similar_label_names"] == []


def test_numeric_labels_compare_by_value() -> None:
    """-1/0/1 sentiment is three classes, not `-1` and `1` typed two ways; `1` and `1.0`
    (ints and floats mixed in a JSONL file) are one class typed two ways."""
    rows = [(f"text {i}", i % 3) for i in range(30)]
    signed = _task(rows, rows[:9], names=("-1", "0", "1"))
    assert assess(signed, _lengths(signed), 16, 5)["similar_label_names"] == []
    income = _task(rows, rows[:9], names=("<=50K", ">50K", "A+"))  # symbols tell them apart
    assert assess(income, _lengths(income), 16, 5)["similar_label_names"] == []
    mixed = _task(rows, rows[:9], names=("0", "1", "1.0"))
    assert assess(mixed, _lengths(mixed), 16, 5)["similar_label_names"] == [["1", "1.0"]]
    # judged exactly, as the loader orders them: ids past 2**53 (one float) and `1_0` (which
    # float() reads as 10) are other labels
    ids = _task(rows, rows[:9], names=("9007199254740992", "9007199254740993", "0"))
    assert assess(ids, _lengths(ids), 16, 5)["similar_label_names"] == []
    underscored = _task(rows, rows[:9], names=("1_0", "10", "0"))
    assert assess(underscored, _lengths(underscored), 16, 5)["similar_label_names"] == []
    long_ids = ("12345678901234567890123456789012", "12345678901234567890123456789013", "0")
    long = _task(rows, rows[:9], names=long_ids)  # past Decimal's 28 digits of arithmetic
    assert assess(long, _lengths(long), 16, 5)["similar_label_names"] == []
    named = _task(rows, rows[:9], names=("Number 1", "1", "2"))  # a name, and a number
    assert assess(named, _lengths(named), 16, 5)["similar_label_names"] == []


def test_texts_without_words_are_no_duplicates_of_each_other() -> None:
    """Emoji and emoticons carry the label in short texts: `:)` and `:(` (no word at all) or
    `great 😍` and `great 😡` are not one text; `Great!! 😍` and `great 😍` are."""
    assert duplicates_within([":)", ":(", "😍", "😡"]) == {"exact": 0, "near": 0}
    assert duplicates_within(["great 😍", "great 😡"]) == {"exact": 0, "near": 0}
    assert duplicates_within(["Great!! 😍", "great 😍", ":)", ":)"]) == {"exact": 1, "near": 2}
    train = [(f"train text {i}", i % 2) for i in range(20)] + [(":)", 0), ("😍", 0)]
    val = [(f"val text {i}", i % 2) for i in range(6)] + [(":(", 1), ("😡", 1)]
    task = _task(train, val)
    report = assess(task, _lengths(task), max_length=16, min_class_examples=5)
    assert report["leakage"]["train->val"] == {"exact": 0, "near": 0}
    assert report["conflicting_labels"] == 0
    assert not any("also in" in problem for problem in report["problems"])


def test_empty_texts_truncation_and_small_classes() -> None:
    train = [(f"train text {i}", i % 2) for i in range(20)] + [("rare one", 2), ("rare two", 2)]
    val = [(f"val {i}", i % 2) for i in range(4)] + [("   ", 0)]
    task = _task(train, val)
    lengths = _lengths(task)
    lengths["train"][:3] = [40, 17, 16]  # two longer than 16 tokens; 16 itself fits
    report = assess(task, lengths, max_length=16, min_class_examples=3)
    assert report["empty_texts"] == {"train": 0, "val": 1}
    assert report["truncation"]["count"] == 2 and report["truncation"]["longest"] == 40
    assert report["truncation"]["share"] == pytest.approx(2 / 27, abs=1e-4)
    assert report["classes"]["below_min"] == ["c"]
    assert report["classes"]["missing_from"] == {"val": ["c"]}
    assert report["classes"]["smallest"][0] == ["c", 2]
    assert "1 empty text" in report["problems"]
    assert "1 class below 3 examples: c" in report["problems"]
    assert "2 texts (7.4%) longer than 16 tokens are truncated (longest 40)" in report["warnings"]
    assert "1 class has no val example: c" in report["warnings"]


def test_fail_mode_stops_with_one_line_and_warn_does_not() -> None:
    task = _clean_task()
    task.val.texts[0] = "train text 0"
    report = assess(task, _lengths(task), max_length=16, min_class_examples=1)
    enforce(report, "warn")
    with pytest.raises(DataError) as err:
        enforce(report, "fail")
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("synthetic: data quality (data.quality=fail): 1 val text also")


def test_summary_lines_are_few_and_name_the_problems() -> None:
    task = _clean_task()
    task.val.texts[0] = "train text 0"
    lines = summary_lines(assess(task, _lengths(task), 16, 1))
    assert lines[0].startswith("data quality: 30 train / 9 val / 6 test, 3 classes")
    assert lines[1:] == ["data quality: problem: 1 val text also in train (1 exact)"]


def test_without_a_test_split_there_is_no_test_leakage_entry() -> None:
    task = _task([(f"t {i}", i % 2) for i in range(10)], [("v", 0), ("w", 1)], names=("a", "b"))
    report = assess(task, _lengths(task), 16, 1)
    assert set(report["leakage"]) == {"train->val"}
    assert report["sizes"] == {"train": 10, "val": 2}


# ---------------------------------------------------------------------------------------------
# Through prepare_data: the report rides on the prepared data; `fail` stops before any compute


def _leaky_csv(tmp_path: Path) -> Path:
    rows = [f"topic {i % 2} example number {i}" for i in range(40)]
    rows += ["Repeated text!", "repeated text"] * 5 + [" ".join(["long"] * 100)]
    labels = [i % 2 for i in range(40)] + [0] * 10 + [1]
    path = tmp_path / "leaky.csv"
    path.write_text(
        "text,label\n" + "".join(f"{t},{x}\n" for t, x in zip(rows, labels, strict=True))
    )
    return path


def test_prepare_data_reports_and_warn_keeps_going(tmp_path: Path, tiny_config: Any) -> None:
    from automl.data.prepare import prepare_data

    conf = tiny_config(data__path=str(_leaky_csv(tmp_path)), data__min_class_examples=1)
    data = prepare_data(conf)
    report = data.quality
    assert sum(report["sizes"].values()) == 51
    assert report["duplicates"]["train"]["near"] >= 1
    # 100 words are 102 tokens untruncated: counted as cut at max_length=64, not as 64 tokens
    assert report["truncation"]["count"] == 1 and report["truncation"]["longest"] == 102
    assert (
        max(max(s.lengths) for s in (data.train, data.val) + ((data.test,) if data.test else ()))
        == 64
    )
    assert report["problems"]  # the repeated text lands in more than one split


def test_prepare_data_with_quality_fail_stops_with_one_line(
    tmp_path: Path, tiny_config: Any
) -> None:
    from automl.data.prepare import prepare_data

    conf = tiny_config(data__path=str(_leaky_csv(tmp_path)), data__quality="fail")
    with pytest.raises(DataError, match=r"leaky.csv: data quality \(data.quality=fail\): \d+ "):
        prepare_data(conf)
    off = prepare_data(tiny_config(data__path=str(_leaky_csv(tmp_path)), data__quality="off"))
    assert off.quality == {}


def test_quality_fail_stops_before_the_tokenizer_and_in_a_multiruns_check(
    tmp_path: Path, tiny_config: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its problems need no tokens: the refusal came after the tokenizer loaded (a download,
    for a Hub model) and every split was tokenized; and a multirun's later job with bad data
    was refused only after the earlier jobs' whole sweeps."""
    from automl.cli.app import check_data_readable
    from automl.data import prepare

    def no_tokenizer(model: Any) -> None:
        raise AssertionError("the tokenizer was loaded before the refusal")

    monkeypatch.setattr(prepare, "load_tokenizer", no_tokenizer)
    conf = tiny_config(data__path=str(_leaky_csv(tmp_path)), data__quality="fail")
    with pytest.raises(DataError, match=r"data quality \(data.quality=fail\): \d+ "):
        prepare.prepare_data(conf)
    with pytest.raises(DataError, match=r"data quality \(data.quality=fail\): \d+ "):
        check_data_readable(conf)
    check_data_readable(tiny_config(data__path=str(_leaky_csv(tmp_path))))  # warn: its run's
