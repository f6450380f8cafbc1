"""Only what training changes: trainable tensors in and out of checkpoints, and the merged
model for export.
"""

from __future__ import annotations

import torch
from torch import nn

from automl.model.load import ModelError


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the trainable parameters: small for LoRA, and all a checkpoint needs."""
    return {
        n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad
    }


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load a `trainable_state`: every trainable tensor must be there, and nothing foreign
    (the frozen rest comes from the base model, so only those keys may be absent)."""
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ModelError(f"checkpoint does not fit the model: {result.unexpected_keys[:3]} ...")
    missing = [n for n in trainable if n not in state]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(
            f"checkpoint does not fit the model: it lacks the trainable tensor {missing[0]!r}{more}"
        )


def merged_for_export(model: nn.Module) -> nn.Module:
    """A plain transformers model: LoRA folded into the base weights, the peft wrapper gone."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(True)
    return model
