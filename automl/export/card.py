"""The exported model's card (README.md): what it is, how it was chosen, how to load it."""

from __future__ import annotations

from typing import Any

import yaml

from automl.config.schema import Config
from automl.export.portable import provenance_lines
from automl.search.summary import describe_scores


def model_card(conf: Config, provenance: dict[str, Any], label_names: list[str]) -> str:
    """A Hugging Face model card: what the model does, how good it is, and how it was found."""
    metric = provenance.get("metric", conf.sweep.metric)
    value = provenance.get("best_value")
    front = {
        "library_name": "transformers",
        "pipeline_tag": "text-classification",
        "base_model": provenance.get("base_model"),
        "tags": ["finetune-automl", "text-classification"],
    }
    params = provenance.get("hyperparameters", {})
    lines = [
        "---",
        yaml.safe_dump(front, sort_keys=False).strip(),
        "---",
        "",
        f"# {provenance.get('sweep', 'model')}: text classification",
        "",
        f"Fine-tuned from `{provenance.get('base_model')}` on **{provenance.get('data', '?')}** "
        f"({len(label_names)} classes) by finetune-automl.",
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
        f"({provenance.get('num_trials', '?')} trials, sampler {provenance.get('sampler', '?')}, "
        f"pruner {provenance.get('pruner', '?')})",
        f"- trainable parameters during fine-tuning: {provenance.get('trainable_params')}",
        "",
        *test_table_lines(provenance.get("test_evaluation")),
        "## Best hyperparameters",
        "",
        *(f"- `{k}`: {v}" for k, v in params.items()),
        "",
        "## Labels",
        "",
        ", ".join(f"`{name}`" for name in label_names),
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        'clf = pipeline("text-classification", model="path/to/this/folder")',
        'clf("How do I reset my password?")',
        "```",
        "",
        *provenance_lines(provenance),  # base model, data fingerprint, how to reproduce
        "Provenance (resolved config, versions, git commit): `provenance.json`.",
        "",
    ]
    return "\n".join(lines)


def test_result_lines(evaluation: dict[str, Any] | None) -> list[str]:
    """The held-out test score (export/evaluation.py), when the sweep had a test split."""
    if not evaluation:
        return []
    lines = [
        f"- held-out test ({evaluation['num_examples']} examples that no training or selection "
        f"step saw): accuracy **{evaluation['accuracy']:.4f}**, macro-F1 "
        f"{evaluation['macro_f1']:.4f}, balanced accuracy {evaluation['balanced_accuracy']:.4f}"
    ]
    unseen = evaluation.get("unseen", {})
    if unseen.get("num_examples"):
        lines.append(
            f"- of which {unseen['num_examples']} texts do not occur in the training split "
            f"(the data repeats some texts): accuracy {unseen['accuracy']:.4f}, "
            f"macro-F1 {unseen['macro_f1']:.4f}"
        )
    return lines


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
