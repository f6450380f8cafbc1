"""Load a text-classification task: the chatterbot topics shipped in `chatterbot-corpus`
(offline default), CSV/JSONL files, Hugging Face datasets. Bad data fails here, with the file
and the problem named, before any model is built.
"""

from __future__ import annotations

import csv
import json
import logging
import operator
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from automl.config.schema import DataConfig
from automl.data.split import stratified_sample, stratified_split
from automl.data.task import DataError, DataFileMissing, LabeledTexts, TaskData, label_number
from automl.hub import looks_like_path, missing_offline

log = logging.getLogger(__name__)


Rows = tuple[list[str], list[Any], str]  # texts, raw labels, where they came from
# libyaml's parser where PyYAML was built with it: the same documents, ~12x faster on the corpus
# (0.03 s against 0.36 s here)
_YAML_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Below this many rows, classes of one example are left to the split's own "too few" message.
SINGLETON_CHECK_MIN_ROWS = 10


def load_task_data(cfg: DataConfig) -> TaskData:
    """Load, label-encode, cap and split the configured data (test first, then validation)."""
    rng = np.random.default_rng(cfg.seed)
    val_rows = test_rows = None
    names = None
    if cfg.source == "chatterbot_topics":
        texts, raw_labels, where = _read_chatterbot(cfg.language)
    elif cfg.source in ("csv", "jsonl"):
        texts, raw_labels, where = read_labeled_file(Path(cfg.path), cfg)
        val_rows = read_labeled_file(Path(cfg.val_path), cfg) if cfg.val_path else None
        test_rows = read_labeled_file(Path(cfg.test_path), cfg) if cfg.test_path else None
    elif cfg.source == "hf":
        (texts, raw_labels, where), val_rows, test_rows, names = _read_hf(cfg)
    else:
        raise DataError(f"data.source: unknown source {cfg.source!r}")
    return _assemble(texts, raw_labels, val_rows, test_rows, cfg, rng, where, names)


def _assemble(
    texts: list[str],
    raw_labels: list[Any],
    val_rows: Rows | None,
    test_rows: Rows | None,
    cfg: DataConfig,
    rng: np.random.Generator,
    where: str,
    names: list[str] | None,
) -> TaskData:
    label_names = names or _label_names(raw_labels)
    index = {name: i for i, name in enumerate(label_names)}
    labels = [index[str(x)] for x in raw_labels]
    if len(set(labels)) < 2:
        raise DataError(f"{where}: only one class ({label_names[labels[0]]!r}); need at least two")
    cuts = val_rows is None or (test_rows is None and cfg.test_fraction > 0)  # from these rows
    if names is None:  # a ClassLabel column holds classes by definition
        _labels_without_classes(
            raw_labels, cfg.label_column, where, refuse=cuts, test_cut_alone=val_rows is not None
        )
    if cfg.max_examples is not None and cfg.max_examples < len(texts):
        classes = len(set(labels))
        if cfg.max_examples < classes and cuts:  # every class keeps one: more rows than
            raise DataError(  # asked, and a split then refused "too few examples (100)"
                f"{where}: data.max_examples={cfg.max_examples} is below the number of "
                f"classes ({classes}), each of which keeps an example at least: raise it"
            )
        keep = stratified_sample(labels, cfg.max_examples, rng)
        if len(keep) > cfg.max_examples:
            log.info(
                "%s: data.max_examples=%d kept %d rows: every class keeps an example at least",
                where, cfg.max_examples, len(keep),
            )  # fmt: skip
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    rest = LabeledTexts(texts, labels)
    test: LabeledTexts | None = None
    val_share = cfg.val_fraction  # of the whole data
    if test_rows is not None:
        test = _encoded(test_rows, index, set(rest.labels))
    elif cfg.test_fraction > 0:
        # Test first: every class keeps two examples for train and validation.
        rest, test = stratified_split(
            texts, labels, cfg.test_fraction, rng, where,
            key="test_fraction", keep=2, allow_empty=True,
        )  # fmt: skip
        if test.texts:  # validation stays val_fraction of the whole data
            val_share = cfg.val_fraction / (1 - cfg.test_fraction)
        else:
            log.warning("%s: too few examples for a test split (data.test_fraction)", where)
            test = None
    if val_rows is not None:
        train, val = rest, _encoded(val_rows, index, set(rest.labels))
    else:
        train, val = stratified_split(rest.texts, rest.labels, val_share, rng, where)
    return TaskData(train, val, label_names, where, test)


def _labels_without_classes(
    raw_labels: Sequence[Any], column: str, where: str, *, refuse: bool, test_cut_alone: bool
) -> None:
    """Most rows alone in their class: an id or a score column, not classes to learn. Refused
    in one line where a split is cut from this data (it would fail on it in a puzzling way),
    a warning where validation and test come from their own files (few-shot data may)."""
    counts = Counter(str(x) for x in raw_labels)
    alone = sum(1 for n in counts.values() if n == 1)
    if len(raw_labels) < SINGLETON_CHECK_MIN_ROWS or alone * 2 <= len(raw_labels):
        return
    numbers = [
        x for x in counts if (v := label_number(x)) is not None and v != v.to_integral_value()
    ]
    problem = (
        f"values such as {numbers[0]} look like a score to regress; this tool trains"
        " classifiers, so bin them into classes first"
        if len(numbers) * 2 > len(counts)
        else "is it the label column?"
    )
    message = (
        f"{where}: column {column!r} has {len(counts)} distinct values in {len(raw_labels)} rows,"
        f" {alone} of them alone in their class: {problem}"
    )
    if refuse and test_cut_alone:  # few-shot data with a validation file of its own
        message += "; few-shot data with a validation file: data.test_fraction=0 or data.test_path"
    if refuse:
        raise DataError(message)
    log.warning("%s", message)


def _encoded(rows: Rows, index: dict[str, int], trained: set[int]) -> LabeledTexts:
    """A separate validation or test set, labelled with the training data's ids. A label the
    training rows (`trained`: their ids) lack is refused: a file's, or a dataset's ClassLabel
    name that only its own validation or test split holds (the model could only miss it)."""
    texts, raw, where = rows
    unknown = sorted({str(x) for x in raw if index.get(str(x)) not in trained})
    if unknown:
        hint = _written_apart(unknown, index)
        raise DataError(f"{where}: labels not in the training data: {unknown[:5]}{hint}")
    return LabeledTexts(texts, [index[str(x)] for x in raw])


def _written_apart(unknown: list[str], index: dict[str, int]) -> str:
    """`1.0` in a validation file against the training file's `1`: the same number written
    another way, which the bare refusal did not say."""
    known = {value: x for x in index if (value := label_number(x)) is not None}
    for label in unknown:
        if (value := label_number(label)) is not None and value in known:
            twin = known[value]
            return (
                f" ({label!r} is the training data's {twin!r} written another way: write "
                "labels alike)"
            )
    return ""


def _label_names(raw_labels: Sequence[Any]) -> list[str]:
    """Sorted label names; integer labels keep numeric order so 0..k-1 stay 0..k-1, also
    written as floats (`0.0 .. 11.0`, as pandas writes an int column that held a NaN)."""
    distinct = {str(x) for x in raw_labels}
    # kept exactly as it was (ints by int(), whole floats by float()): the classes' ids are
    # their places in this order, and a sweep or an export checks them against its records
    if all(_parses(x, int) for x in distinct):
        return sorted(distinct, key=lambda x: (int(x), x))  # "1" and "01": one order always
    if all(_parses(x, float) and float(x).is_integer() for x in distinct):
        return sorted(distinct, key=lambda x: (float(x), x))
    return sorted(distinct)


def _parses(value: str, kind: type) -> bool:
    try:
        kind(value)
    except ValueError:
        return False
    return True


def _chatterbot_dir(language: str) -> Path:
    import chatterbot_corpus

    folder = Path(chatterbot_corpus.__file__).parent / "data" / language
    if not folder.is_dir():
        raise DataError(f"chatterbot-corpus: no language folder {language!r} (data.language)")
    return folder


def _read_chatterbot(language: str) -> tuple[list[str], list[str], str]:
    """Every utterance of every topic file; the label is the topic file's name. A conversation
    written without its list's dash (English trivia.yml has one; Ukrainian files, hundreds)
    is one utterance: read as a list, its every character was a text of its own."""
    folder = _chatterbot_dir(language)
    texts: list[str] = []
    labels: list[str] = []
    blank = 0
    for path in sorted(folder.glob("*.yml")):
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER) or {}
        for conversation in doc.get("conversations", []):
            if not isinstance(conversation, list):
                conversation = [conversation]
            for utterance in conversation:
                if not isinstance(utterance, str) or not utterance.strip():
                    blank += 1  # the corpus has a few blank answers; they carry no topic
                    continue
                texts.append(utterance.strip())
                labels.append(path.stem)
    log.debug("chatterbot %s: %d utterances, %d blank skipped", language, len(texts), blank)
    return texts, labels, f"chatterbot-corpus/{language}"


# How a caller sets the text column, the label column and the format, for the fixes messages
# suggest: a sweep's config keys, or a command's options (`--text-column`, ...).
SWEEP_OPTIONS = ("data.text_column", "data.label_column", "data")


def setting(option: str, value: str) -> str:
    """`data.text_column=Text` for a config key, `--text-column Text` for an option."""
    return f"{option} {value}" if option.startswith("--") else f"{option}={value}"


def read_labeled_file(
    path: Path, cfg: DataConfig, options: tuple[str, str, str] = SWEEP_OPTIONS
) -> tuple[list[str], list[str], str]:
    """A CSV or JSON Lines file (`cfg.source`) as its texts and label names, each row checked;
    the file's name for messages. `options`: how the caller sets the two columns and the
    format, for the fixes the messages suggest."""
    if path.is_dir():  # the training data only: a validation folder is no dataset of its own
        hint = options == SWEEP_OPTIONS and path == Path(cfg.path)
        saved = f" (a dataset saved with save_to_disk: use data=hf data.hf_name={path})"
        raise DataError(f"{path}: a folder, not a file{saved if hint else ''}")
    if not path.is_file():
        raise DataFileMissing(path)
    columns = (cfg.text_column, cfg.label_column)
    if cfg.source == "csv":  # header names are read stripped: so are the configured ones
        columns = (cfg.text_column.strip(), cfg.label_column.strip())  # (' label', recorded)
    text_column, label_column = columns
    fmt = options[2]
    # (the line a row starts on, the row): a row count missed quoted texts over several lines
    # and blank lines, so it named another line of the file than the bad row's
    rows = _csv_rows(path, columns) if cfg.source == "csv" else _jsonl_rows(path, fmt)
    if not rows:
        raise DataError(f"{path}: no rows")
    for option, column in zip(options, columns, strict=False):
        if column not in rows[0][1] and not any(column in row for _, row in rows):
            have = list(rows[0][1])
            if cfg.path and path != Path(cfg.path):  # a validation or test file: setting the
                # column (the hint for a training file) would break the training file
                found = f"no column {column!r} (columns: {', '.join(map(str, have))})"
                if have and str(have[0]).lstrip().startswith("{"):
                    found = f"no column {column!r}: the file reads as JSON Lines, not CSV"
                    raise DataError(f"{path}: {found}; write it as {cfg.path} is written")
                raise DataError(f"{path}: {found}; name it {column!r}, as {cfg.path} does")
            raise DataError(f"{path}: " + _no_column(column, have, option, fmt))
    texts, labels = [], []
    for number, row in rows:
        text, label = row.get(text_column), row.get(label_column)
        if text is not None and not isinstance(text, str):
            raise DataError(
                f"{path}: line {number}: the text in column {text_column!r} is not a string "
                f"({str(text)[:40]})"
            )
        if not text or not text.strip():
            raise DataError(f"{path}: line {number}: empty text in column {text_column!r}")
        _check_label(label, f"{path}: line {number}", label_column)
        _check_whole_characters(text, str(label), f"{path}: line {number}")
        texts.append(text.strip())
        labels.append(str(label).strip())
    _warn_missing_as_text(labels, str(path), label_column)
    return texts, labels, str(path)


# How R, pandas and spreadsheets write a missing value: a class of its own if read as a label
_MISSING_AS_TEXT = {"na", "n/a", "nan", "null", "#n/a"}  # not "none": a real class in intents


def _warn_missing_as_text(labels: Sequence[str], where: str, column: str) -> None:
    """A label such as `NA` is most likely a missing value written out, which would train as a
    class of its own; warned, not refused (a class may really be called `None`)."""
    missing = Counter(x for x in labels if x.lower() in _MISSING_AS_TEXT)
    for name, count in missing.most_common():
        log.warning(
            "%s: %d rows have the label %r in column %r: a missing value written as text? It "
            "trains as a class of its own", where, count, name, column,
        )  # fmt: skip


def _no_column(column: str, have: list[Any], option: str, fmt: str) -> str:
    """ "no column 'text' (columns: ...)", with the likely fix: a column named alike (another
    case), or the other format where the header reads as JSON."""
    names = [str(name) for name in have]
    text = f"no column {column!r} (columns: {', '.join(names)})"
    alike = [name for name in names if name.strip().lower() == column.strip().lower()]
    if alike:
        return f"{text}; {'use' if option.startswith('--') else 'set'} {setting(option, alike[0])}"
    if names and names[0].lstrip().startswith("{"):
        return (
            f"no column {column!r}: the file reads as JSON Lines, not CSV; "
            f"use {setting(fmt, 'jsonl')}"
        )
    return f"{text}; name the column with {setting(option, '<column>')}"


def _check_label(label: Any, where: str, column: str) -> None:
    """One class per text: a missing label, or a list or object of them (multi-label data,
    which would silently become one class per combination), is one line."""
    if isinstance(label, list | tuple | dict):
        kind = "a JSON object" if isinstance(label, dict) else "a list"
        raise DataError(
            f"{where}: the label in column {column!r} is {kind} ({str(label)[:40]}): one label "
            "per text (multi-label classification is not supported)"
        )
    if label is None or str(label).strip() == "" or (isinstance(label, float) and label != label):
        raise DataError(f"{where}: missing label in column {column!r}")  # (NaN: pandas' None)


def _check_whole_characters(text: str, label: str, where: str) -> None:
    """JSON's `\\ud83d` alone (half an emoji, a text cut at a fixed length in JavaScript) is
    read by Python, then failed the tokenizer and the data's hash with a traceback."""
    for value in (text, label):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            half = value[err.start].encode("unicode_escape").decode()
            raise DataError(
                f"{where}: half a character ({half}, a lone UTF-16 surrogate) in "
                f"{'the text' if value is text else 'the label'}: fix or drop the row"
            ) from None


# Python's csv refuses a field over 128 KiB by default: a long document in a row is data
CSV_FIELD_LIMIT = 2**31 - 1


def _csv_rows(path: Path, columns: tuple[str, str]) -> list[tuple[int, dict[str, Any]]]:
    """The rows as {column: field}, each row's field count checked against the header: an
    unquoted separator inside a text used to shift the label silently (the field past the
    header's dropped), and a stray opening quote swallowed the rows up to the next quote into
    one text (to the end of the file, if none came). Where the header lacks a wanted column,
    the caller's message (another format, another case) says more than a field count would:
    no counts then. Read leniently otherwise (`"Great" product` is `Great product`, as
    Python's csv and pandas read it)."""
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    with _readable(path), path.open(newline="", encoding="utf-8-sig") as handle:  # -sig: BOM
        header = handle.readline()
        if not header.strip():
            raise DataError(f"{path}: line 1 is empty; the header (the column names) comes first")
        if re.fullmatch(r"sep=.", header.rstrip("\r\n"), flags=re.IGNORECASE):
            raise DataError(
                f"{path}: line 1 ({header.strip()!r}) is Excel's separator hint; delete it: "
                "the header (the column names) comes first"
            )
        delimiter = _delimiter(header, columns)
        # `"text", "label"`: a file that quotes after a space reads so throughout; others as
        # before (a label-first `pos, "Best phone` must not open a quote over later rows)
        spaced = _quoted_after_space(header, delimiter)
        handle.seek(0)
        lines = _Lines(handle)
        reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=spaced)
        # `text, label`: the space after the comma is no part of a name
        names = [name.strip() for name in next(reader, [])]
        twice = sorted({name for name in names if name in columns and names.count(name) > 1})
        if twice:
            raise DataError(f"{path}: column {twice[0]!r} appears twice in the header")
        checked = all(c in names for c in columns)
        needed = max((names.index(c) for c in columns if c in names), default=-1)
        read: list[tuple[int, list[str]]] = []  # (the line a row starts on, its fields)
        separators_only: list[int] = []
        line = reader.line_num + 1  # where the next row starts
        try:
            for fields in reader:
                if names and [f.strip().lstrip("\ufeff") for f in fields] == names:  # `cat`
                    raise DataError(
                        f"{path}: line {line} repeats the header (files joined together?): "
                        "delete it, or it trains as a text of its own"
                    )
                if any(_has_content(f) for f in fields):  # a line of spaces alone is skipped
                    # the reader asks past the last line only inside a quote left open
                    if lines.ended and any("\n" in f for f in fields):
                        raise DataError(f"{path}: line {line}: a quote opened here is never closed")
                    read.append((line, fields))
                elif len(fields) > 1:  # `,,`: a spreadsheet's empty row, skipped but said
                    separators_only.append(line)
                line = reader.line_num + 1
        except csv.Error as err:
            raise DataError(f"{path}: line {line}: not readable as CSV ({err})") from None
    if separators_only:
        more = f" and {len(separators_only) - 3} more" if len(separators_only) > 3 else ""
        log.warning(
            "%s: %d rows hold only separators, skipped as empty rows (%s %s%s)", path,
            len(separators_only), "line" if len(separators_only) == 1 else "lines",
            ", ".join(map(str, separators_only[:3])), more,
        )  # fmt: skip
    if checked:
        # a trailing separator on every row (`hi,pos,n,`) is the file's style, not a shift:
        # where no row has just the header's fields, one more (empty) is allowed
        trailing = bool(read) and all(len(fields) > len(names) for _, fields in read)
        allowed = len(names) + trailing
        for number, fields in read:
            _check_fields(fields, names, needed, f"{path}: line {number}", delimiter, allowed)
        label_at = names.index(columns[1])
        suspects = _swallowed_rows(read, label_at, needed, delimiter)
        swallowed = [(number, count) for number, count, rows in suspects if rows >= 2]
        strict = not suspects or _strictly_quoted(path, delimiter, spaced)
        # texts holding lines like rows (tables, logs) in a file quoted by CSV's rules, two or
        # more of them, are data; one alone is a stray quote, closed by a later text's own
        # quote (`6",neg`, an inch mark, follows the rules too). In a file that breaks the
        # rules (`6" screen`), one row read into a text is a stray quote too.
        if not strict and not swallowed:
            swallowed = [(number, count) for number, count, _ in suspects]
        if swallowed and (len(swallowed) < 2 or not strict):
            number, count = swallowed[0]
            raise DataError(
                f"{path}: line {number}: a quote opened here runs over {count} lines that "
                "read as rows of their own (a stray double quote? put the text in double "
                "quotes, its own quotes doubled)"
            )
        if swallowed:  # read as texts: said, in case two stray quotes met CSV's rules
            where = ", ".join(str(number) for number, _ in swallowed[:5])
            more = f" and {len(swallowed) - 5} more" if len(swallowed) > 5 else ""
            log.warning(
                "%s: %d quoted texts hold lines that read as rows of the file (lines %s%s): "
                "read as texts, as the file quotes them", path, len(swallowed), where, more,
            )  # fmt: skip
        if names.index(columns[0]) < label_at:
            _check_label_shift(read, label_at, str(path), delimiter)
    width = len(names)
    return [(n, dict(zip(names, f + [""] * (width - len(f)), strict=False))) for n, f in read]


def _check_label_shift(
    read: list[tuple[int, list[str]]], label_at: int, path: str, sep: str
) -> None:
    """`hello, world,pos` under `text,label,notes` has the header's field count: `world` became
    a class of one row and `pos` a note. A label no other row has, followed by another row's
    label in the next column, is one line; unless that column holds labels on the rows of
    common classes too (a prediction, a domain named like an intent, numbers): its own data."""
    labels = [f[label_at].strip() if len(f) > label_at else "" for _, f in read]
    after = [f[label_at + 1].strip() if len(f) > label_at + 1 else "" for _, f in read]
    counts = Counter(labels)
    holding = sum(
        counts[own] > 1 and bool(next_) and next_ in counts
        for own, next_ in zip(labels, after, strict=True)
    )
    if holding >= 2:  # the column holds labels on common classes' rows: its own data
        return
    for (number, _), label, known in zip(read, labels, after, strict=True):
        if label and "\n" not in label and counts[label] == 1 and known and counts[known] > 1:
            raise DataError(
                f"{path}: line {number}: label {label!r} is on no other row, and {known!r}, "
                f"another row's label, follows it (a {_name(sep)} inside the text? put the text "
                "in double quotes)"
            )


def _quoted_after_space(header: str, delimiter: str) -> bool:
    """The header quotes its names after a space (`"text", "label"`): the file's style."""
    return re.search(re.escape(delimiter) + r" +\"", header) is not None  # (spaces: what csv skips)


def _strictly_quoted(path: Path, delimiter: str, spaced: bool) -> bool:
    """Whether every quote of the file follows CSV's rules (a closing quote is followed by the
    separator or the line's end), as `csv.writer` and pandas write them."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            for _ in csv.reader(handle, delimiter=delimiter, strict=True, skipinitialspace=spaced):
                pass
        except csv.Error:
            return False
    return True


def _swallowed_rows(
    read: list[tuple[int, list[str]]], label_at: int, needed: int, sep: str
) -> list[tuple[int, int, int]]:
    """A stray opening quote (`"Best phone ever<TAB>pos`, a naive export) ran on to the next
    quote: the rows between became one text. A quoted field over several lines is fine; one
    whose inner lines are rows of their own, two or more and each with a label the file uses,
    is a swallow (the first line is the stray row's rest: a row where the label follows the
    text; the last is cut by the closing quote). One swallowed row alone goes unseen: a text's
    line ending in `, yes` would look the same, in a file that follows CSV's quoting rules. The
    suspects: (the line, its lines count, how many of them read as rows)."""
    labels = {f[label_at].strip() for _, f in read if len(f) > label_at and "\n" not in f[label_at]}
    labels.discard("")  # a missing label is its own error

    def is_row(line: str, start: int = 0) -> bool:  # `start`: the column the line begins in
        parts = line.split(sep)
        return len(parts) > needed - start and parts[label_at - start].strip() in labels

    suspects = []
    for number, fields in read:
        for column, field in enumerate(fields):
            inner = field.split("\n") if "\n" in field else []
            # the first line is the stray row's rest, from this column on: a row's end if the
            # label is still to come; the last is cut by the closing quote
            rest = [(inner[0], column)] if inner and column <= label_at else []
            whole = rest + [(line, 0) for line in inner[1:-1]]
            if whole and all(is_row(line, start) for line, start in whole):
                suspects.append((number, len(inner), len(whole)))
    return suspects


class _Lines:
    """A file's lines, and whether they have run out: a short row read at the end of the file
    inside a quoted field is a quote never closed, elsewhere a row short of fields."""

    def __init__(self, handle: Any) -> None:
        self._lines = iter(handle)
        self.ended = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            return next(self._lines)
        except StopIteration:
            self.ended = True
            raise


def _check_fields(
    fields: list[str], names: list[str], needed: int, where: str, sep: str, allowed: int
) -> None:
    """More fields than the header names, or too few to reach the text and label columns: one
    line saying where and the likely cause. An empty field past the header's last name is a
    trailing separator (`hi,pos,`) where the label or text is the last column, or up to
    `allowed` fields (every row ending so); with a column after them (`text,label,notes`),
    `hello, world,neg,` among rows of three fields shifted the label."""
    # Excel's `text,label,,`: the empty names past the last one take no fields of a text
    width = max((i + 1 for i, name in enumerate(names) if name), default=0)
    count = len(fields)
    shifted = count > allowed and needed < width - 1
    if shifted or any(_has_content(f) for f in fields[width:]):
        raise DataError(
            f"{where}: {count} fields, the header has {width} (a {_name(sep)} inside a text? "
            "put the text in double quotes)"
        )
    if count <= needed:
        raise DataError(f"{where}: {count} field{'s' * (count != 1)}, the header has {width}")


def _name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab", "|": "'|'"}.get(delimiter, repr(delimiter))


def _has_content(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _delimiter(header: str, columns: tuple[str, str]) -> str:
    """The separator that splits the header into the wanted columns: `,`, else `;` (Excel's
    CSV in many locales), a tab or `|`; judged on the header alone, since texts hold commas.
    Names are compared without spaces around them, then also without case (so that the
    missing-column message can name `Text` for `text`). Where no separator gives both, the
    one giving most of them, else most fields, so that the message names the missing column
    among the header's columns (`text;category` with `label`: no column 'label')."""
    delimiters = (",", ";", "\t", "|")
    fields = {
        d: [
            n.strip()
            for n in next(
                csv.reader([header.rstrip("\r\n")], delimiter=d, skipinitialspace=True), []
            )
        ]
        for d in delimiters
    }
    for fold in (str.strip, lambda name: name.strip().lower()):
        for delimiter in delimiters:
            names = {fold(n) for n in fields[delimiter]}
            if all(fold(column) in names for column in columns):
                return delimiter

    def fit(d: str) -> tuple[int, int]:  # wanted columns found (any case), then fields
        names = {n.lower() for n in fields[d]}
        return sum(c.strip().lower() in names for c in columns), len(fields[d])

    return max(delimiters, key=fit)  # a tie keeps the earlier: `,` first


@contextmanager
def _readable(path: Path) -> Iterator[None]:
    """A file in another encoding (an Excel export in cp1252, UTF-16), or one this user may not
    read, is one line naming it."""
    try:
        yield
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text (a byte {err.object[err.start]:#04x}); save it as UTF-8"
        ) from None
    except OSError as err:
        raise DataError(f"{path}: cannot read it ({err.strerror or err})") from None


def _jsonl_rows(path: Path, fmt: str = "data") -> list[tuple[int, dict[str, Any]]]:
    rows: list[tuple[int, dict[str, Any]]] = []
    with _readable(path), path.open(encoding="utf-8-sig") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            first = not rows  # the first line with content: where another format shows
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                csv_hint = f"; is it a CSV file? use {setting(fmt, 'csv')}"
                hint = (
                    _ARRAY_HINT if first and line.lstrip().startswith("[")
                    else csv_hint if first and _reads_as_csv(line)
                    else ""
                )  # fmt: skip
                raise DataError(
                    f"{path}: line {number}: not valid JSON ({err.msg}){hint}"
                ) from None
            except ValueError:  # valid JSON Python will not read: an integer past 4,300 digits
                raise DataError(
                    f"{path}: line {number}: a number of more than 4,300 digits (a corrupted "
                    "id or score?)"
                ) from None
            except RecursionError:  # valid JSON nested past Python's stack
                raise DataError(f"{path}: line {number}: JSON nested too deeply to read") from None
            if not isinstance(row, dict):
                array = first and line.lstrip().startswith("[")
                raise DataError(
                    f"{path}: line {number}: expected a JSON object"
                    + (_ARRAY_HINT if array else "")
                )
            rows.append((number, row))
    return rows


_ARRAY_HINT = "; JSON Lines holds one object per line, not an array"


def _reads_as_csv(line: str) -> bool:
    """A line that is no JSON object but splits into columns: most likely a CSV header."""
    stripped = line.strip()
    return not stripped.startswith(("{", "[")) and any(d in stripped for d in ",;\t|")


def check_hub_dataset(cfg: DataConfig) -> None:
    """A Hub dataset (not a `save_to_disk` folder) neither cached nor reachable: one line in
    seconds, not after huggingface_hub's retries (automl/hub.py)."""
    if not Path(cfg.hf_name).is_dir():
        if looks_like_path(cfg.hf_name):  # a mistyped save_to_disk folder: not asked of the Hub
            what = (
                "a file, not a save_to_disk folder"
                if Path(cfg.hf_name).exists()
                else "no such folder"
            )
            raise DataError(f"data.hf_name: {cfg.hf_name}: {what}")
        missing = missing_offline(cfg.hf_name, "dataset")
        if missing:
            raise DataError(f"data.hf_name: {cfg.hf_name!r}: {missing}")


def read_hf_split(
    cfg: DataConfig, name: str, options: tuple[str, str, str] = SWEEP_OPTIONS
) -> Rows:
    """One split of a Hugging Face dataset (`cfg.hf_name`), its ClassLabel ids as their names:
    the rows `automl-evaluate` scores a model on. `options` as for `read_labeled_file`."""
    one = replace(cfg, hf_train_split=name, hf_val_split=None, hf_test_split=None)
    return _read_hf(one, whole=False, options=options)[0]


def _whole_dataset(folder: str, name: str) -> str:
    """A single saved Dataset has no splits: `automl-evaluate` scores all of it, and says so
    (it may be the very rows a sweep trained on)."""
    log.warning(
        "%s: a single saved Dataset, not a DatasetDict: every row is scored (no split %r); "
        "if a sweep trained on it, this is no held-out score", folder, name,
    )  # fmt: skip
    return folder


def _read_hf(
    cfg: DataConfig, whole: bool = True, options: tuple[str, str, str] = SWEEP_OPTIONS
) -> tuple[Rows, Rows | None, Rows | None, list[str] | None]:
    """A Hugging Face dataset: a hub name (online) or a folder written by `save_to_disk`.
    `whole`: the dataset of a run (its unread splits are named), not one split read alone."""
    import datasets

    saved: Any = None  # a `save_to_disk` folder, loaded once (memory-mapped)
    check_hub_dataset(cfg)

    def split(name: str) -> tuple[list[str], list[Any], str, Any]:
        nonlocal saved
        where = f"{cfg.hf_name}[{name}]"
        try:
            if Path(cfg.hf_name).is_dir():
                if saved is None:
                    saved = datasets.load_from_disk(cfg.hf_name)
                loaded = saved
                if isinstance(loaded, datasets.DatasetDict):
                    ds = loaded[name]
                elif not whole:
                    ds, where = loaded, _whole_dataset(cfg.hf_name, name)
                elif name == cfg.hf_train_split:
                    ds = loaded  # a single saved Dataset is the train split, and only that
                else:
                    raise KeyError(name)
            else:
                ds = datasets.load_dataset(cfg.hf_name, cfg.hf_config, split=name)
        except KeyError:
            splits = list(saved) if isinstance(saved, datasets.DatasetDict) else []
            have = f" (splits: {', '.join(splits)})" if splits else ""
            raise DataError(f"{where}: no split {name!r}{have}") from None
        except Exception as err:  # network, unknown dataset, bad config: one line, the cause
            raise DataError(
                f"{where}: cannot load ({type(err).__name__}: {_one_line(err)})"
            ) from None
        ds = ds.with_format(None)  # saved with set_format("torch"): labels were "tensor(0)"
        for option, column in zip(options, (cfg.text_column, cfg.label_column), strict=False):
            if column not in ds.column_names:
                no_column = _no_column(column, ds.column_names, option, options[2])
                raise DataError(f"{where}: {no_column}")
        if len(ds) == 0:
            raise DataError(f"{where}: no rows")
        texts = list(ds[cfg.text_column])
        for number, text in enumerate(texts, start=1):
            if text is not None and not isinstance(text, str):  # a list of tokens, a number
                raise DataError(
                    f"{where}: row {number}: the text in column {cfg.text_column!r} is not a "
                    f"string ({str(text)[:40]})"
                )
            if not text or not text.strip():
                raise DataError(f"{where}: row {number}: empty text in column {cfg.text_column!r}")
        texts = [t.strip() for t in texts]
        labels = list(ds[cfg.label_column])
        for number, label in enumerate(labels, start=1):
            _check_label(label, f"{where}: row {number}", cfg.label_column)
        return texts, labels, where, ds.features[cfg.label_column]

    def named(ids: list[Any], where: str, own: list[str]) -> list[str]:
        """ClassLabel ids -> class names (-1, an unlabelled row, is an error): by the split's own
        ClassLabel, else by train's (a split saved without its ClassLabel; refused where its
        ids and values could differ: `_ids_or_values`); plain values -> their
        text, as the training data's labels become class names. Beside train's plain integers a
        ClassLabel of words is no naming of them: its ids are read as integers (as text)."""
        # (a ClassLabel of integers, `class_encode_column`'s "1", "10", "2", names them)
        by_own = not numeric_train or all(n.lstrip("-").isdigit() for n in own)
        decode = (own or names) if names else (own if by_own else [])
        if not decode:  # stripped, as a file's labels are (' pos' and 'pos' were two classes)
            return [str(x).strip() for x in ids]
        if decode is names and not own and _ids_or_values(names, ids):
            raise DataError(
                f"{where}: plain integer labels beside the train split's ClassLabel of numbers "
                f"({', '.join(names[:4])}{', ...' if len(names) > 4 else ''}), whose ids are "
                "not its values: ids or values? "
                "encode every split with the train split's ClassLabel (Dataset.cast_column)"
            )
        out = []
        for number, x in enumerate(ids, start=1):
            if isinstance(x, str) and not own:  # plain names beside train's ClassLabel
                out.append(x.strip())
                continue
            try:
                index = operator.index(x)  # numpy and torch ints too (a dataset's set_format)
            except TypeError:
                index = -1
            if not 0 <= index < len(decode):
                raise DataError(f"{where}: row {number}: label {x} is not a class id (unlabelled?)")
            out.append(decode[index])
        return out

    def class_names(feature: Any) -> list[str]:
        return list(getattr(feature, "names", []) or [])

    texts, labels, where, feature = split(cfg.hf_train_split)
    names = class_names(feature)
    # train's plain labels are integers (or their digits): beside them a split's ids read so
    numeric_train = not names and all(str(x).lstrip("-").isdigit() for x in labels)
    labels = named(labels, where, names)

    def other(name: str | None) -> Rows | None:
        """A validation or test split, decoded by its own ClassLabel: splits encoded one by one
        (`class_encode_column` per split) number their classes differently."""
        if not name:
            return None
        t, raw, w, own = split(name)
        return t, named(raw, w, class_names(own)), w

    val, test = other(cfg.hf_val_split), other(cfg.hf_test_split)
    if whole and isinstance(saved, datasets.DatasetDict):
        _name_unread_splits(cfg, list(saved))
    # no ClassLabel: None, so the labels get the checks a file's labels get (a score column)
    return (texts, labels, where), val, test, names or None


def _ids_or_values(names: list[str], ids: list[Any]) -> bool:
    """`class_encode_column` on integers names its classes "0", "1", "10", "2", ...: a split
    left with plain integers beside it could mean ids or values, and reading 2 as the id of
    "10" scored every such row against the wrong class, silently."""
    numbers = all(n.lstrip("-").isdigit() for n in names)
    in_order = names == [str(i) for i in range(len(names))]
    return numbers and not in_order and any(not isinstance(x, str) for x in ids)


def _name_unread_splits(cfg: DataConfig, splits: list[str]) -> None:
    """A saved DatasetDict's splits the config leaves unread (its own `test`, say) while
    validation or test are cut from train: say so, or a user's test split goes unused."""
    unread = [
        s for s in splits if s not in (cfg.hf_train_split, cfg.hf_val_split, cfg.hf_test_split)
    ]
    cut = []  # what is cut from train instead of read: (its name, the setting that reads one)
    if not cfg.hf_val_split:
        cut.append(("validation", "hf_val_split"))
    if not cfg.hf_test_split and cfg.test_fraction:
        cut.append(("test", "hf_test_split"))
    if not (unread and cut):
        return
    message = "{}: its split {} is not read; {} {} cut from {!r} (set data.{} to read one)".format(
        cfg.hf_name, ", ".join(map(repr, unread)), " and ".join(n for n, _ in cut),
        "is" if len(cut) == 1 else "are", cfg.hf_train_split,
        " or data.".join(key for _, key in cut),
    )  # fmt: skip
    log.warning("%s", message)


def _one_line(err: Exception) -> str:
    """A `datasets` error on one line: "Config name is missing" lists the configs over three
    lines, with Python to run; here it names `data.hf_config`."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = "; ".join(lines)
    configs = next((line for line in lines if "available configs:" in line), None)
    if text.startswith("Config name is missing") and configs is not None:
        names = configs.split(":", 1)[1].strip()
        text = f"a config name is missing: set data.hf_config to one of {names}"
    return text if len(text) <= 600 else text[:597] + "..."
