"""The exported model scored once on the held-out test split.

Why: the validation score chose the best trial (and its epoch) out of many, so it is biased
upwards; the test split was never seen by training or selection, so its score is the honest
estimate. It is computed from the exported folder itself (its tokenizer and merged weights), the
very thing a user loads, and only after the best trial has been chosen.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from automl.config.paths import write_text_atomic
from automl.console import first_line
from automl.export.trained_texts import NO_BASE, BaseTexts, base_note, seen_by_base

log = logging.getLogger(__name__)

EVALUATION_FILE = "test_evaluation.json"
CONFUSION_FILE = "confusion_matrix.png"


def predict_folder(
    folder: Path, texts: Sequence[str], batch_size: int = 64, trust_remote_code: bool = False
) -> list[str]:
    """Label names predicted by an exported model folder, batched by length (little padding).
    `trust_remote_code`: run the folder's own model code (a model that needed
    `model.trust_remote_code=true` to train needs it to load)."""
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from automl.model.load import ModelError, vocabulary_problem

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, trust_remote_code=trust_remote_code
        ).eval()
    except ValueError as err:  # no model_type in config.json, an unknown tokenizer class, ...
        if "trust_remote_code" not in str(err):
            raise ModelError(f"{folder}: cannot load its model ({first_line(err)})") from None
        raise ModelError(
            f"{folder}: its model runs code of its own (auto_map in config.json); trust it to "
            "load it (automl-evaluate --trust-remote-code)"
        ) from None
    except (OSError, SafetensorError) as err:  # no weights (a half-copied folder), a cut file
        raise ModelError(f"{folder}: cannot load its model ({first_line(err)})") from None
    problem = vocabulary_problem(tokenizer)  # a classifier folder saved without its tokenizer
    if problem:
        raise ModelError(f"{folder}: {problem}")
    ids = tokenizer(list(texts), truncation=True)["input_ids"]  # model_max_length = training's
    predicted = None
    if torch.cuda.is_available():
        try:
            predicted = _predict(model.to("cuda"), tokenizer, ids, batch_size)
        except (RuntimeError, AssertionError) as err:  # out of memory, busy, another's job
            first = first_line(err)
            gpu_words = ("cuda", "cudnn", "cublas", "hip error")  # the GPU's libraries
            if not isinstance(err, torch.cuda.OutOfMemoryError) and not any(
                word in first.lower() for word in gpu_words
            ):
                raise  # the model's own error, not the GPU's: as it is
            log.warning("%s: scored on the CPU: the GPU cannot be used (%s)", folder, first)
    if predicted is None:
        predicted = _predict(model.to("cpu"), tokenizer, ids, batch_size)
    id2label = model.config.id2label
    return [str(id2label[int(i)]) for i in predicted]


def _predict(model: Any, tokenizer: Any, ids: list[list[int]], batch_size: int) -> np.ndarray:
    """Class ids, batched by length, on the model's device; padded as training padded (on the
    right, ids and mask only), whatever a model's own tokenizer code would do."""
    import torch

    from automl.data.batching import collate
    from automl.data.tokenized import TokenizedSplit
    from automl.model.load import MODEL_INPUTS

    device = next(model.parameters()).device
    split = TokenizedSplit(ids, np.zeros(len(ids), dtype=np.int64))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    order = np.argsort([len(x) for x in ids], kind="stable")
    predicted = np.empty(len(ids), dtype=np.int64)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = collate(split, idx, pad)
            inputs = {k: batch[k].to(device) for k in MODEL_INPUTS}
            logits = model(**inputs).logits
            predicted[idx] = logits.argmax(dim=-1).cpu().numpy()
    return predicted


def score(truth: Sequence[str], predicted: Sequence[str], label_names: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, balanced accuracy, per-class precision/recall/F1/support and the
    confusion matrix (rows: true class, columns: predicted), the last two over `label_names`."""
    import warnings

    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
    )

    from automl.train.evaluate import macro_f1  # here: it imports torch

    with warnings.catch_warnings():  # classes absent from the test split: expected, not news
        warnings.simplefilter("ignore")
        # by position, not classification_report's dict: its "accuracy" and "macro avg" keys
        # would overwrite (or crash on) classes of those names
        precision, recall, f1, support = precision_recall_fscore_support(
            truth, predicted, labels=label_names, average=None, zero_division=0
        )
        balanced = float(balanced_accuracy_score(truth, predicted))
    return {
        "num_examples": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        # validation's definition: over the classes in the truth or the predictions (a class
        # the test split lacks and no text was given would otherwise add an F1 of 0)
        "macro_f1": macro_f1(np.asarray(truth), np.asarray(predicted)),
        "balanced_accuracy": balanced,
        "labels": list(label_names),
        "per_class": [
            {
                "label": name,
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i, name in enumerate(label_names)
        ],
        "confusion_matrix": confusion_matrix(truth, predicted, labels=label_names).tolist(),
    }


def evaluate_export(
    folder: Path,
    texts: Sequence[str],
    labels: Sequence[int],
    label_names: list[str],
    seen_in_training: Sequence[bool] | None = None,
    trust_remote_code: bool = False,
) -> dict[str, Any]:
    """Score the exported folder on the test texts (integer labels indexing `label_names`).

    `seen_in_training` marks test texts that also occur in the training split (corpora repeat
    utterances: the embedded one has ~58 % of its test texts in training). Those score what the
    model memorised, so the texts it never saw are also scored apart, under `unseen`."""
    predicted = predict_folder(folder, texts, trust_remote_code=trust_remote_code)
    truth = [label_names[i] for i in labels]
    evaluation = score(truth, predicted, label_names)
    evaluation["model"] = folder.name
    if seen_in_training is not None:
        evaluation["unseen"] = score_unseen(truth, predicted, label_names, seen_in_training)
    log.info(
        "test (held out, %d texts): accuracy %.4f, macro-F1 %.4f, balanced accuracy %.4f",
        evaluation["num_examples"], evaluation["accuracy"], evaluation["macro_f1"],
        evaluation["balanced_accuracy"],
    )  # fmt: skip
    return evaluation


def score_unseen(
    truth: Sequence[str], predicted: Sequence[str], label_names: list[str], seen: Sequence[bool]
) -> dict[str, Any]:
    """The scores of the texts training did not hold (`seen`: which it did), as `unseen`."""
    keep = [i for i, was_seen in enumerate(seen) if not was_seen]
    if not keep:  # every text also in training (sklearn refuses to score no texts)
        return {"num_examples": 0}
    unseen = score([truth[i] for i in keep], [predicted[i] for i in keep], label_names)
    return {k: unseen[k] for k in ("num_examples", "accuracy", "macro_f1", "balanced_accuracy")}


def headline(evaluation: dict[str, Any]) -> dict[str, float]:
    """The numbers for summary.json and MLflow."""
    return {
        "test_accuracy": evaluation["accuracy"],
        "test_f1": evaluation["macro_f1"],
        "test_balanced_accuracy": evaluation["balanced_accuracy"],
        "test_examples": evaluation["num_examples"],
        **(
            {
                "test_accuracy_unseen": evaluation["unseen"]["accuracy"],
                "test_examples_unseen": evaluation["unseen"]["num_examples"],
            }
            if evaluation.get("unseen", {}).get("num_examples")
            else {}
        ),
    }


def write_evaluation(evaluation: dict[str, Any], out_dir: Path) -> Path:
    path = out_dir / EVALUATION_FILE
    write_text_atomic(path, json.dumps(evaluation, indent=2))
    return path


def load_evaluation(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / EVALUATION_FILE
    if not path.is_file():
        return None
    try:
        loaded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    # all the report reads: an older or hand-edited file lacking one was a KeyError there
    wanted = ("confusion_matrix", "labels", "per_class", "accuracy", "macro_f1",
              "balanced_accuracy", "num_examples")  # fmt: skip
    return loaded if isinstance(loaded, dict) and all(k in loaded for k in wanted) else None


MAX_CONFUSION_INCHES = 30.0
MAX_NAMED_CLASSES = 80


def plot_confusion(evaluation: dict[str, Any], path: Path) -> Path:
    """The confusion matrix as a PNG: counts, rows normalised for the colour (per-class recall).
    Drawn on a Figure of its own, not through pyplot: `matplotlib.use("Agg")` switched the
    calling process's backend (a notebook's inline plots showed nothing after a sweep)."""
    from automl.report.plots import literal_text

    with literal_text():  # class names drawn as written: `$$` is no math
        return _draw_confusion(evaluation, path)


def _draw_confusion(evaluation: dict[str, Any], path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    matrix = np.asarray(evaluation["confusion_matrix"], dtype=float)
    names = evaluation["labels"]
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    # capped: grown with the classes, 300 took a 14,000-pixel square and 8 GB at the end of a
    # sweep; past MAX_NAMED_CLASSES the names would overlap, so the axes are numbered
    size = min(max(4.0, 0.42 * len(names) + 2), MAX_CONFUSION_INCHES)
    fig = Figure(figsize=(size + 1, size))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    named = len(names) <= MAX_NAMED_CLASSES
    if named:
        ax.set_xticks(range(len(names)), names, rotation=90, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
    order = "" if named else " (class number in test_evaluation.json's order)"
    ax.set_xlabel("predicted" + order)
    ax.set_ylabel("true" + order)
    ax.set_title(f"Test confusion matrix (accuracy {evaluation['accuracy']:.3f})")
    if len(names) <= 30:
        for (i, j), count in np.ndenumerate(matrix):
            if count:
                color = "white" if share[i, j] > 0.6 else "black"
                ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=7, color=color)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def table_lines(evaluation: dict[str, Any], name: str = "test") -> list[str]:
    """A plain-text per-class table for the terminal; `name` heads the totals line."""
    lines = [f"{'class':<24} {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}"]
    for row in evaluation["per_class"]:
        lines.append(
            f"{row['label'][:24]:<24} {row['precision']:>9.3f} {row['recall']:>7.3f} "
            f"{row['f1']:>6.3f} {row['support']:>8d}"
        )
    lines.append(
        f"{name}: accuracy {evaluation['accuracy']:.4f} · macro-F1 {evaluation['macro_f1']:.4f} · "
        f"balanced accuracy {evaluation['balanced_accuracy']:.4f} · "
        f"{evaluation['num_examples']} texts"
    )
    only = _predicted_only(evaluation)
    if only:  # their F1 of 0 each pulls macro-F1 below what accuracy suggests: said
        present = sum(row["support"] > 0 for row in evaluation["per_class"])
        lines.append(
            f"macro-F1 over {present + len(only)} classes: {present} in the data, "
            f"{len(only)} only predicted, an F1 of 0 each ({', '.join(only[:5])}"
            f"{', ...' if len(only) > 5 else ''})"
        )
    unseen = evaluation.get("unseen", {})
    if unseen.get("num_examples"):
        lines.append(
            f"{name} texts not in training ({unseen['num_examples']}): accuracy "
            f"{unseen['accuracy']:.4f} · macro-F1 {unseen['macro_f1']:.4f}"
        )
    return lines


def _predicted_only(evaluation: dict[str, Any]) -> list[str]:
    """The classes predicted for some text but in none of the data's labels."""
    matrix = evaluation.get("confusion_matrix") or []
    rows = evaluation["per_class"]
    if len(matrix) != len(rows):
        return []
    return [
        row["label"]
        for i, row in enumerate(rows)
        if row["support"] == 0 and sum(line[i] for line in matrix) > 0
    ]


def record_in_export(folder: Path, evaluation: dict[str, Any], conf: Any) -> None:
    """The test score travels with the model: `test_evaluation.json` in the folder, the
    headline and per-class table in provenance.json and the model card (README.md)."""
    from automl.export.card import model_card

    write_evaluation(evaluation, folder)
    provenance_path = folder / "provenance.json"
    provenance = json.loads(provenance_path.read_text()) if provenance_path.is_file() else {}
    provenance["test_evaluation"] = {k: v for k, v in evaluation.items() if k != "confusion_matrix"}
    write_text_atomic(provenance_path, json.dumps(provenance, indent=2, default=str))
    write_text_atomic(folder / "README.md", model_card(conf, provenance, evaluation["labels"]))


def seen_in_training(
    train_ids: Sequence[Sequence[int]], test_ids: Sequence[Sequence[int]]
) -> list[bool]:
    """Which test texts training also holds, by token ids (an uncased tokenizer makes `Hi` and
    `hi` one text): scored apart, as `unseen`."""
    trained = {tuple(ids) for ids in train_ids}
    return [tuple(ids) in trained for ids in test_ids]


def with_base_trained(
    seen: Sequence[bool], test_texts: Sequence[str], base: BaseTexts, base_model: str
) -> tuple[list[bool], dict[str, Any]]:
    """`seen` with the test texts the base model trained on marked too (`base`: their keys,
    `base_trained_texts` of `base_model`), where it is an earlier export of this project
    (fine-tuned again on new data: the new split's test texts may be its training texts);
    what the evaluation records about it."""
    by_base = seen_by_base(test_texts, base)
    noted = base_note(seen, by_base, base)
    if noted.get("base_model_trained_on"):
        log.warning(
            "%d test texts are ones the base model (%s, an earlier export) trained on: scored "
            "as seen, not under unseen", noted["base_model_trained_on"], base_model,
        )  # fmt: skip
    return [a or b for a, b in zip(seen, by_base, strict=True)], noted


def evaluate_sweep_export(
    export_dir: Path | None,
    out_dir: Path,
    data: Any,
    conf: Any,
    base: BaseTexts = NO_BASE,
) -> dict[str, Any] | None:
    """After the best trial is chosen and exported: score the export on `data.test` (a
    `PreparedData`), record it in the folder and write `test_evaluation.json` and the confusion
    matrix PNG beside the sweep's summary. None when there is no export or no test split.
    `base`: the keys of the texts the base model trained on (`base_trained_texts`)."""
    for stale in (EVALUATION_FILE, CONFUSION_FILE):  # an earlier sweep's under the same name
        (out_dir / stale).unlink(missing_ok=True)
    if export_dir is None or data.test is None or len(data.test) == 0:
        return None
    labels = [int(x) for x in data.test.labels]
    seen = seen_in_training(data.train.input_ids, data.test.input_ids)
    seen, noted = with_base_trained(seen, data.test_texts, base, conf.model.name_or_path)
    evaluation = evaluate_export(
        export_dir, data.test_texts, labels, data.label_names, seen,
        trust_remote_code=conf.model.trust_remote_code,  # the user's own opt-in, for training
    )  # fmt: skip
    evaluation.update(noted)
    record_in_export(export_dir, evaluation, conf)
    write_evaluation(evaluation, out_dir)
    plot_confusion(evaluation, out_dir / CONFUSION_FILE)
    return evaluation
