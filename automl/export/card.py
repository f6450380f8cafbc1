"""The exported model's card (README.md): what it is, how it was chosen, how to load it."""

from __future__ import annotations

from typing import Any

import yaml

from automl.config.schema import Config


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
        f"- trial `{provenance.get('trial_id')}` of sweep `{provenance.get('sweep')}` "
        f"({provenance.get('num_trials', '?')} trials, sampler {provenance.get('sampler', '?')}, "
        f"pruner {provenance.get('pruner', '?')})",
        f"- trainable parameters during fine-tuning: {provenance.get('trainable_params')}",
        "",
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
        "Provenance (resolved config, versions, git commit): `provenance.json`.",
        "",
    ]
    return "\n".join(lines)
