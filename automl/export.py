"""Export a trial's best checkpoint as a plain `transformers` model folder, atomically.

The folder loads as it is with `AutoModelForSequenceClassification.from_pretrained` and
`pipeline("text-classification")`: LoRA merged into the base weights (safetensors only), the
tokenizer, label names, a model card and a provenance file.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from automl.checkpoint import load_best
from automl.config import Config, as_dict
from automl.modeling import build_model, load_tokenizer, merged_for_export
from automl.tracking import git_commit, package_versions, redact

log = logging.getLogger(__name__)


def export_checkpoint(
    conf: Config,
    checkpoint_dir: Path,
    out_dir: Path,
    *,
    label_names: list[str],
    provenance: dict[str, Any],
) -> Path:
    """Rebuild the trial's model, load its checkpoint, merge LoRA, and write `out_dir` atomically.

    Written to a temporary sibling and renamed into place, so a crash never leaves a half-written
    folder and exporting twice gives the same result.
    """
    from transformers import set_seed

    set_seed(
        conf.train.seed
    )  # frozen weights of a randomly initialised (tiny) model match the trial's
    tokenizer = load_tokenizer(conf.model)
    tokenizer.model_max_length = conf.model.max_length  # pipelines truncate as training did
    model, info = build_model(conf.model, conf.peft, label_names, int(tokenizer.pad_token_id))
    progress = load_best(model, checkpoint_dir)
    merged = merged_for_export(model)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)  # type: ignore[operator]
    tokenizer.save_pretrained(tmp)
    for stray in tmp.glob("*.bin"):  # safetensors only: never ship pickled weights
        stray.unlink()
    full_provenance = {
        **provenance,
        "checkpoint_epoch": progress.best_epoch,
        "trainable_params": info.trainable_params,
        "total_params": info.total_params,
        "base_model": info.source,
        "config": as_dict(conf),
    }
    # redact: a tracking URI in the config may carry a password, and this file gets shared
    (tmp / "provenance.json").write_text(redact(json.dumps(full_provenance, indent=2, default=str)))
    (tmp / "README.md").write_text(model_card(conf, full_provenance, label_names))
    _swap_into_place(tmp, out_dir)
    log.info("exported %s", out_dir)
    return out_dir


def _swap_into_place(tmp: Path, out_dir: Path) -> None:
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    if out_dir.exists():
        out_dir.rename(old)
    tmp.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


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


def sweep_provenance(
    conf: Config, trial_id: str, value: float | None, params: dict[str, Any], n: int, data: str
) -> dict[str, Any]:
    """Where an exported model came from (model card + provenance.json)."""
    return {
        "sweep": conf.sweep.name,
        "trial_id": trial_id,
        "metric": conf.sweep.metric,
        "best_value": value,
        "hyperparameters": params,
        "num_trials": n,
        "sampler": conf.sampler.name,
        "pruner": conf.pruner.name,
        "search_space": conf.search_space,
        "data": data,
        "git_commit": git_commit(),
        "versions": package_versions(),
    }
