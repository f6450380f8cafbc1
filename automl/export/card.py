"""The exported model's card (README.md): what it is, how it was chosen, how to load it."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml

from automl.config.schema import Config, ModelConfig
from automl.console import counted
from automl.export.portable import MANUAL, hub_base_model, is_hub_id, lineage, provenance_lines
from automl.search.summary import describe_scores


def model_card(conf: Config, provenance: dict[str, Any], label_names: list[str]) -> str:
    """A Hugging Face model card: what the model does, how good it is, and how it was found."""
    metric = provenance.get("metric", conf.sweep.metric)
    value = provenance.get("best_value")
    details = provenance.get("base_model_details") or {}
    hub_base = hub_base_model(details) if details else provenance.get("base_model")
    front = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        **({"base_model": hub_base} if hub_base else {}),  # a Hub id, never a local folder's name
        "tags": ["finetune-automl", "text-classification"],
    }
    front.update(base_model_license(conf.model))  # a fine-tuned model is under its base's
    front.update(model_index(provenance))
    params = provenance.get("hyperparameters", {})
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# {provenance.get('sweep', 'model')}: text classification",
        "",
        f"Fine-tuned from `{provenance.get('base_model')}`{lineage(details)} on "
        f"**{provenance.get('data', '?')}** ({len(label_names)} classes) by finetune-automl.",
        "",
        "## Result",
        "",
        f"- validation {metric}: **{value:.4f}** (best epoch {provenance.get('checkpoint_epoch')})"
        if isinstance(value, float)
        else f"- validation {metric}: {value}",
        *(
            [f"- at that epoch, validation {describe_scores(scores)}"]
            if (scores := provenance.get("best_scores"))
            else []
        ),
        *test_result_lines(provenance.get("test_evaluation")),
        f"- trial `{provenance.get('trial_id')}` of sweep `{provenance.get('sweep')}` "
        f"({_trials(provenance.get('num_trials'))}, "
        f"sampler {provenance.get('sampler', '?')}, pruner {provenance.get('pruner', '?')})",
        f"- trainable parameters during fine-tuning: {provenance.get('trainable_params')}",
        "",
        *test_table_lines(provenance.get("test_evaluation")),
        "## Hyperparameters" if chosen_by_hand(provenance) else "## Best hyperparameters",
        "",
        *(f"- `{k}`: {v}" for k, v in params.items()),
        "",
        "## Labels",
        "",
        ", ".join(f"`{name}`" for name in label_names),
        "",
        *limitation_lines(conf.model.max_length, label_names, provenance.get("test_evaluation")),
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        "# truncation=True: texts cut at the length it trained on (without it longer texts are",
        "# scored on more tokens than it trained on, and those past the model's limit fail)",
        'clf = pipeline("text-classification", model="path/to/this/folder", truncation=True)',
        'clf("How do I reset my password?")',
        "```",
        "",
        *provenance_lines(provenance),  # base model, data fingerprint, how to reproduce
        "Provenance (resolved config, versions, git commit): `provenance.json`.",
        "",
    ]
    return "\n".join(lines)


def model_index(provenance: dict[str, Any]) -> dict[str, Any]:
    """The held-out test scores as the Hub's `model-index` metadata (its results widget and
    leaderboards read them); {} without a test split."""
    evaluation = provenance.get("test_evaluation") or {}
    accuracy, macro_f1 = evaluation.get("accuracy"), evaluation.get("macro_f1")
    if not isinstance(accuracy, int | float) or not isinstance(macro_f1, int | float):
        return {}
    data = str(provenance.get("data") or "data")
    metrics = [
        {"type": "accuracy", "value": round(float(accuracy), 4), "name": "Test accuracy"},
        {"type": "f1", "value": round(float(macro_f1), 4), "name": "Test macro-F1",
         "args": {"average": "macro"}},
    ]  # fmt: skip
    result = {
        "task": {"type": "text-classification", "name": "Text Classification"},
        "dataset": {"name": data, "type": data, "split": "test"},
        "metrics": metrics,
    }
    return {"model-index": [{"name": str(provenance.get("sweep") or "model"), "results": [result]}]}


FEW_TEST_TEXTS = 5  # a class scored on fewer held-out texts: its figures say little


def limitation_lines(
    max_length: int, label_names: list[str], evaluation: dict[str, Any] | None
) -> list[str]:
    """What a user of the model should know before relying on it, from what the sweep saw:
    the length it reads, the classes it knows, and the classes its test split judged on too
    few texts or never got right."""
    lines = [
        "## Limitations",
        "",
        f"- It reads at most {max_length} tokens of a text (the length it trained on).",
        f"- It knows only the {len(label_names)} classes above: a text of any other kind still "
        "gets one of them.",
    ]
    rows = [r for r in (evaluation or {}).get("per_class") or [] if isinstance(r, dict)]
    few = [r["label"] for r in rows if 0 < r.get("support", 0) < FEW_TEST_TEXTS]
    missed = [r["label"] for r in rows if r.get("support", 0) > 0 and r.get("recall") == 0]
    absent = [r["label"] for r in rows if r.get("support") == 0]
    if few:
        lines.append(
            f"- Scored on fewer than {FEW_TEST_TEXTS} held-out texts each, so their test "
            f"figures say little: {', '.join(f'`{x}`' for x in few)}."
        )
    if missed:
        lines.append(f"- Never right on the held-out test: {', '.join(f'`{x}`' for x in missed)}.")
    if absent:
        lines.append(f"- Not in the test split at all: {', '.join(f'`{x}`' for x in absent)}.")
    return [*lines, ""]


def chosen_by_hand(provenance: dict[str, Any]) -> bool:
    """A trial exported with `automl-export --trial`: its settings, not the sweep's best."""
    rule = provenance.get("export_rule")
    return isinstance(rule, dict) and rule.get("rule") == MANUAL


def _trials(count: Any) -> str:
    return counted(count, "trial") if isinstance(count, int) else "? trials"


def base_model_license(model: ModelConfig) -> dict[str, str]:
    """The license the base model's own card declares, as card metadata (`license`, and for
    `other` its `license_name`/`license_link`; several licenses, which the Hub's `license`
    cannot hold, as `other` named after them), read from its folder or the local Hugging Face
    cache; {} where there is no card at hand (nothing is downloaded)."""
    if model.source == "tiny":
        return {}
    from huggingface_hub import ModelCard, try_to_load_from_cache

    from automl.model.load import model_location

    try:
        where = model_location(model)
        card = Path(where) / "README.md"
        if not card.is_file():
            cached = try_to_load_from_cache(where, "README.md")
            if not isinstance(cached, str):  # not cached, or cached as absent
                return {}
            card = Path(cached)
        data = ModelCard.load(card).data
    except Exception as err:  # a card is a courtesy: never fail an export over it
        logging.getLogger(__name__).debug("base model card not read: %s", err)
        return {}
    license_ = data.license
    own_name = getattr(data, "license_name", None)
    if isinstance(license_, list):  # several: "other", named after them ("mit-apache-2.0")
        names = [str(own_name) if item == "other" and own_name else str(item)
                 for item in license_ if item]  # fmt: skip
        if len(names) > 1:
            return {"license": "other", "license_name": "-".join(map(_slug, names))}
        license_ = names[0] if names else None
    if not license_:
        return {}
    fields = {"license": str(license_)}
    if fields["license"] == "other":  # the terms are in these two
        if own_name:
            fields["license_name"] = str(own_name)
        link = getattr(data, "license_link", None)
        if link and not str(link).startswith(("http://", "https://")):
            # a file of the base model's repo (`LICENSE`): the export does not carry it
            on_hub = is_hub_id(where) and not Path(where).is_dir()
            link = f"https://huggingface.co/{where}/blob/main/{link}" if on_hub else None
        if link:
            fields["license_link"] = str(link)
    return fields


def _slug(name: str) -> str:
    """A license name as the Hub's `license_name` takes it: `CC BY-NC 4.0` -> `cc-by-nc-4.0`."""
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


def test_result_lines(evaluation: dict[str, Any] | None) -> list[str]:
    """The held-out test score (export/evaluation.py), when the sweep had a test split."""
    if not evaluation:
        return []
    lines = [
        f"- held-out test ({evaluation['num_examples']} rows held out before training, read by "
        f"no training or selection step of this sweep): accuracy "
        f"**{evaluation['accuracy']:.4f}**, macro-F1 {evaluation['macro_f1']:.4f}, balanced "
        f"accuracy {evaluation['balanced_accuracy']:.4f}"
    ]
    unseen = evaluation.get("unseen")
    if isinstance(unseen, dict):
        lines.append(f"- {unseen_line(evaluation['num_examples'], unseen)}")
    lines += [f"- {line}" for line in base_model_lines(evaluation)]
    return lines


def base_model_lines(evaluation: dict[str, Any]) -> list[str]:
    """Where the base model is an earlier export (fine-tuned again on new data), what it trained
    on may be in this test split: how many texts (counted as seen), or that it is unknown."""
    lines = []
    count = evaluation.get("base_model_trained_on")
    if isinstance(count, int) and count > 0:
        lines.append(
            f"{count} of the test texts the base model (an earlier export) trained on: they "
            "count as seen, not under the texts the model did not train on"
        )
    if evaluation.get("base_model_training_texts") == "unknown":
        lines.append(
            "the base model is an earlier export that does not record all its training texts: "
            "some test texts may be ones it trained on, so the scores above may be high"
        )
    return lines


def unseen_line(num_examples: int, unseen: dict[str, Any]) -> str:
    """The test texts that do not also occur in the training split (the data repeats texts):
    the score a new text can expect, said beside the whole split's (the card lists it, the
    report gives it a paragraph)."""
    if not all(isinstance(unseen.get(k), int | float) for k in ("accuracy", "macro_f1")):
        if unseen.get("num_examples"):  # an edited file: no score to give
            return f"{unseen['num_examples']} test texts do not occur in training (no score)"
        return (
            f"every one of the {num_examples} test texts also occurs in the training split "
            "(the data repeats texts): no score on texts the model did not train on"
        )
    return (
        f"of which {unseen['num_examples']} texts do not occur in the training split (the "
        f"data repeats texts; the others it trained on): accuracy {unseen['accuracy']:.4f}, "
        f"macro-F1 {unseen['macro_f1']:.4f}"
    )


def test_table_lines(evaluation: dict[str, Any] | None) -> list[str]:
    """Per-class precision / recall / F1 / support on the test split, as a Markdown table."""
    if not evaluation or not evaluation.get("per_class"):
        return []
    lines = [
        "## Held-out test, per class",
        "",
        "| class | precision | recall | F1 | support |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| `{r['label']}` | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} "
        f"| {r['support']} |"
        for r in evaluation["per_class"]
    ]
    lines += ["", "Confusion matrix (rows: true class): `test_evaluation.json`.", ""]
    return lines
