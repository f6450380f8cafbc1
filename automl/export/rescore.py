"""An exported model scored on labelled data it has not been scored on: this month's tickets,
a colleague's test set, the same file for the champion and a challenger.

The sweep scores its export once, on the held-out split it cut. Data arriving later (or kept
apart by the user) is the other honest judge, and the question a practitioner asks of it is
whether the model still holds: the same scores as the sweep's (accuracy, macro-F1, balanced
accuracy, per class, confusion), plus the texts whose label the model has no class for, named,
since each of them is an error the model cannot avoid.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from automl.config.schema import DataConfig
from automl.console import first_line, listed
from automl.data.load import read_hf_split, read_labeled_file
from automl.data.task import DataError
from automl.export.evaluation import predict_folder, score, score_unseen
from automl.export.trained_texts import TRAINED_TEXTS_FILE, base_trained_texts, seen_by_base
from automl.model.load import ModelError
from automl.provenance import redact

log = logging.getLogger(__name__)


def model_labels(folder: Path) -> list[str]:
    """The classes of an exported (or any transformers classifier) folder, in id order; a
    folder that is none is one line."""
    if not folder.is_dir():
        raise ModelError(
            f"{folder}: {'a file, not a folder' if folder.exists() else 'no such folder'}"
        )
    if (folder / "summary.json").is_file() and (folder / "best" / "config.json").is_file():
        raise ModelError(f"{folder}: a sweep's folder, not a model; its model is {folder / 'best'}")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{folder}: no config.json (not an exported model folder)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
        id2label = {int(i): str(name) for i, name in config["id2label"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ModelError(f"{config_path}: no id2label (not a classifier)") from None
    return [id2label[i] for i in sorted(id2label)]


Rows = tuple[list[str], list[str], str]  # texts, label names, the file's name


def read_rows(
    data: DataConfig,
    options: tuple[str, str, str] = ("--text-column", "--label-column", "--format"),
    split: str = "test",
) -> Rows:
    """Every row of the file `data.path` (`data.source` csv or jsonl) or of one `split` of a
    dataset saved with `save_to_disk` (`data.source` hf, `data.hf_name`), checked before any
    model is loaded. `options`: how the caller sets the two columns and the format, for the
    fixes messages suggest."""
    if data.source == "hf":
        return read_hf_split(data, split, options)
    return read_labeled_file(Path(data.path), data, options)


def rescore(folder: Path, rows: Rows, trust_remote_code: bool = False) -> dict[str, Any]:
    """Score the model in `folder` on `rows` (read_rows). Labels the model has no class for
    count as errors and are listed under `unknown_labels`; a file with none of its classes is
    refused before any compute (integer ids against named classes, say). Texts an export of
    this project trained on (its `trained_texts.json`) score what it memorised: counted, said,
    and the others scored apart under `unseen`."""
    classes = model_labels(folder)
    texts, labels, where = rows
    unknown = Counter(label for label in labels if label not in classes)
    if len(unknown) == len(set(labels)):
        unread = listed([repr(name) for name in sorted(unknown)], 8)
        raise DataError(
            f"{where}: none of its labels ({unread}) is a class of the model "
            f"({listed([repr(name) for name in classes], 8)})"
        )
    if unknown:
        log.warning(
            "%s: %d texts have labels the model has no class for, each counted as an error: %s",
            where, sum(unknown.values()),
            ", ".join(f"{name!r} ({count})" for name, count in unknown.most_common()),
        )  # fmt: skip
    predicted = predict_folder(folder, texts, trust_remote_code=trust_remote_code)
    scored_as = classes + sorted(unknown)  # the model's classes, then the labels it lacks
    evaluation = score(labels, predicted, scored_as)
    evaluation.update(model=str(folder), data=where, unknown_labels=dict(unknown.most_common()))
    if (folder / TRAINED_TEXTS_FILE).is_file():  # (a registered version's folder has none)
        trained = base_trained_texts(str(folder))
        seen = seen_by_base(texts, trained)
        if any(seen):
            log.warning(
                "%s: %d of %d texts are ones the model trained on (they score what it memorised):"
                " the others are scored apart as unseen", where, sum(seen), len(texts),
            )  # fmt: skip
        evaluation["trained_on"] = sum(seen) if trained.complete else "unknown"
        evaluation["unseen"] = score_unseen(labels, predicted, scored_as, seen)
    return evaluation


REGISTRY_SCHEMES = ("models:/", "runs:/")
_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


@contextmanager
def registered_folder(uri: str, tracking: str | None = None) -> Iterator[Path]:
    """A registered version (`models:/name@champion`, `models:/name/3`) or a logged model
    (`runs:/<id>/model`) as a plain transformers folder, for as long as the block runs: MLflow's
    transformers flavor loads its model and tokenizer (on the CPU), saved to a temporary
    folder. `tracking`: the store (default: $MLFLOW_TRACKING_URI, else the sqlite file sweeps
    write here); the registry is $MLFLOW_REGISTRY_URI where set, as for the sweeps; both set
    for this call only, never process-wide."""
    from automl.tracking.uri import sqlite_file, store_problem, tracking_uri

    problem = store_problem(tracking)  # a bad scheme, a server that does not answer: at once
    if problem:
        origin = (  # what set the store: the option, the environment, or neither
            "--tracking-uri" if tracking
            else "MLFLOW_TRACKING_URI" if os.environ.get("MLFLOW_TRACKING_URI")
            else "the default store"
        )  # fmt: skip
        raise ModelError(f"{origin}: {problem}")
    store = tracking_uri(tracking)
    database = sqlite_file(store)
    if database is not None and not database.is_file():  # MLflow would create an empty one
        hint = "" if tracking else " (set --tracking-uri)"
        raise ModelError(f"{uri}: no MLflow store at {database}{hint}")
    saved = {k: os.environ.get(k) for k in _URI_VARIABLES}
    os.environ["MLFLOW_TRACKING_URI"] = store
    os.environ.setdefault("MLFLOW_REGISTRY_URI", store)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "automl-evaluate"
            _save_components(uri, store, Path(tmp), folder)
            yield folder
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _save_components(uri: str, store: str, download: Path, folder: Path) -> None:
    """The version's model and tokenizer, loaded by MLflow and saved as one plain folder (the
    loaded copy goes with this call, before anyone loads the folder)."""
    try:
        import mlflow.transformers

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            parts = mlflow.transformers.load_model(
                uri, dst_path=str(download), return_type="components", device=-1
            )
    except Exception as err:  # no such model, alias or store: one line, the cause
        first = first_line(err)
        raise ModelError(f"{uri}: cannot load from {redact(store)} ({redact(first)})") from None
    if not isinstance(parts, dict) or "model" not in parts or "tokenizer" not in parts:
        raise ModelError(f"{uri}: not a text classifier with a tokenizer (MLflow components)")
    parts["model"].save_pretrained(folder)
    parts["tokenizer"].save_pretrained(folder)
