"""The export of a LoRA trial: adapters merged into the base weights, the same predictions.

The smoke sweep's trials are full fine-tunes, so this is the test that a LoRA trial's export is
really the model the trial trained (not the base model with its adapters dropped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from automl.export.model_dir import export_checkpoint
from automl.model.build import build_model
from automl.model.state import trainable_state
from automl.train.checkpoint import BEST_FILE, PROGRESS_FILE

LABELS = ["a", "b", "c"]


def test_lora_export_predicts_what_the_trial_trained(
    tmp_path: Path, tiny_config: Any, tokenizer: Any
) -> None:
    from transformers import AutoModelForSequenceClassification, set_seed

    conf = tiny_config(peft__lora_rank=4, peft__frozen_layers=1)
    set_seed(conf.train.seed)  # the export rebuilds the frozen random weights from this seed
    model, info = build_model(conf.model, conf.peft, LABELS, int(tokenizer.pad_token_id))
    assert info.trainable_params < info.total_params
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora, "the trial model has LoRA adapters"
    with torch.no_grad():  # as if trained: adapters that change the output (B starts at zero)
        for p in model.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.5)
    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    state = {k: v.contiguous() for k, v in trainable_state(model).items()}
    save_file(state, str(checkpoint / BEST_FILE))
    (checkpoint / PROGRESS_FILE).write_text(json.dumps({"epoch": 1, "best_epoch": 1}))

    out = export_checkpoint(
        conf, checkpoint, tmp_path / "best", label_names=LABELS, provenance={"trial_id": "t"}
    )
    exported = AutoModelForSequenceClassification.from_pretrained(out)
    assert not any("lora" in n for n, _ in exported.named_parameters())
    batch = tokenizer(
        ["the pizza was fine", "rain and wind today"], return_tensors="pt", padding=True
    )
    model.eval()
    exported.eval()
    with torch.no_grad():
        trained = model(**batch).logits
        merged = exported(**batch).logits
        model.disable_adapter_layers()  # the same model without its adapters ...
        without = model(**batch).logits
    torch.testing.assert_close(merged, trained, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(without, trained, atol=1e-3)  # ... predicts otherwise
