"""The classification head when the checkpoint already is a classifier with named labels.

transformers reuses a checkpoint's head row by row whenever its size matches the data's classes,
whatever the names: fine-tuning a `neg/neu/pos` sentiment model on `food/sport/tech` would start
`food` from `neg`'s weights, and the same classes in another order would start each from another
class's. A size that differs discards the whole head, so continuing an exported model on new data
with one more class forgot what it knew of the others. Here the head follows the names instead:
each class the checkpoint knows starts from its own row, every other class from a fresh one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

_DEFAULT_NAME = re.compile(r"LABEL_\d+")  # transformers' names for labels nobody named


def named_labels(config: Any) -> list[str] | None:
    """The checkpoint's label names in index order, or None where it names none (a base model,
    or a classifier saved without names: its rows cannot be matched to classes)."""
    id2label = getattr(config, "id2label", None) or {}
    names = [str(id2label[i]) for i in sorted(id2label, key=int)]
    if not names or all(_DEFAULT_NAME.fullmatch(n) for n in names):
        return None
    return names


def output_layer(model: nn.Module, num_labels: int) -> tuple[str, nn.Linear] | None:
    """The head's last linear layer (one output per class): `classifier`, RoBERTa's
    `classifier.out_proj`, GPT-2's `score`. None where there is not exactly one."""
    base = getattr(model, "base_model_prefix", "")
    found = [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear)
        and module.out_features == num_labels
        and not (base and name.split(".")[0] == base)
    ]
    return found[0] if len(found) == 1 else None


@torch.no_grad()
def remap_head(
    model: Any, theirs: list[str], ours: list[str], missing: Collection[str] = ()
) -> bool:
    """Resize the head of `model` (a transformers classifier loaded with its own `theirs`
    labels) to `ours`: a known class keeps its row, a new one gets a fresh row. `missing`:
    the weights the checkpoint lacked (transformers' loading info): a head among them was
    initialised at random, so nothing of it is kept. False (nothing changed) where the
    head's output layer cannot be told apart."""
    found = output_layer(model, len(theirs))
    if found is None:
        return False
    name, old = found
    if any(key.startswith(f"{name}.") for key in missing):  # names, but no head weights
        theirs = []
    new = nn.Linear(old.in_features, len(ours), bias=old.bias is not None)
    new.to(dtype=old.weight.dtype, device=old.weight.device)
    std = float(getattr(model.config, "initializer_range", 0.02))
    new.weight.normal_(0.0, std)  # as transformers initialises a fresh head
    if new.bias is not None:
        new.bias.zero_()
    kept = [label for label in ours if label in theirs]
    for i, label in enumerate(ours):
        if label in theirs:
            j = theirs.index(label)
            new.weight[i] = old.weight[j]
            if new.bias is not None and old.bias is not None:
                new.bias[i] = old.bias[j]
    parent_name, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, attr, new)
    config = model.config
    config.num_labels = len(ours)
    config.id2label = dict(enumerate(ours))
    config.label2id = {label: i for i, label in enumerate(ours)}
    if hasattr(model, "num_labels"):
        model.num_labels = len(ours)  # the loss reads the model's own copy
    log.info(
        "classification head: %d of %d classes start from the checkpoint's rows%s",
        len(kept), len(ours),
        f" (new: {', '.join(label for label in ours if label not in theirs)})"
        if len(kept) < len(ours) else "",
    )  # fmt: skip
    return True
