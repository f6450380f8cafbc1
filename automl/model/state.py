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


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load a `trainable_state`: every trainable tensor must be there, and nothing foreign
    (the frozen rest comes from the base model, so only those keys may be absent).

    Four exceptions, returned: a LoRA checkpoint from before 2026-12-06 lacks the modules a
    model has beside its classifier (DeBERTa's pooler), which LoRA trains since then; an
    OPT checkpoint with frozen blocks from before 2026-12-06 (evening) lacks the final norm and
    output projection, which `frozen_layers` froze until then; and an XLM-RoBERTa or CamemBERT
    checkpoint with frozen blocks from before 2026-12-06 (night) lacks the classifier, frozen
    likewise, and one of a base saved without its pooler lacks that pooler. They keep their
    starting values, the frozen ones that checkpoint trained with."""
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ModelError(f"checkpoint does not fit the model: {result.unexpected_keys[:3]} ...")
    missing = [n for n in trainable if n not in state]
    after = _after_the_blocks(model) if missing and _model_type(model) == "opt" else ()
    # only where blocks are frozen (the embeddings then are): the only case it was frozen
    frozen = any(not p.requires_grad for p in model.parameters())
    head_first = set(_head_before_backbone(model)) if missing and frozen else set()
    started_random = getattr(model, "automl_random_layers", ())  # model/build.py
    older = [
        n
        for n in missing
        if _beside_classifier(n)
        or n.startswith(after)
        or n in head_first
        or any(f".{layer}." in f".{n}" for layer in started_random)
    ]
    missing = [n for n in missing if n not in older]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ModelError(
            f"checkpoint does not fit the model: it lacks the trainable tensor {missing[0]!r}{more}"
        )
    return older


def _beside_classifier(name: str) -> bool:
    """peft's trained copy of a module other than `classifier`/`score` (model/build.py's
    `head_modules`)."""
    owner, found, _ = name.partition(".modules_to_save.")
    return bool(found) and owner.rsplit(".", 1)[-1] not in ("classifier", "score")


def _model_type(model: nn.Module) -> str:
    return str(getattr(getattr(model, "config", None), "model_type", "") or "")


def _after_the_blocks(model: nn.Module) -> tuple[str, ...]:
    """OPT's layers after its blocks, registered before them (model/build.py)."""
    from automl.model.build import after_the_blocks, find_blocks

    return after_the_blocks(find_blocks(model)[0])


def _head_before_backbone(model: nn.Module) -> list[str]:
    """XLM-RoBERTa's classifier, registered before its backbone (model/build.py)."""
    from automl.model.build import head_before_backbone

    return head_before_backbone(model)


def merged_for_export(model: nn.Module) -> nn.Module:
    """A plain transformers model: LoRA folded into the base weights, the peft wrapper gone."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(True)
    return model
