"""Build the classifier: base model, frozen-layer depth, LoRA adapters (peft), parameter counts.

Frozen depth k freezes the embeddings and the bottom k transformer blocks. LoRA adapters go only
on the blocks above them; LoRA rank 0 means full fine-tuning of those blocks. The classification
head is always trainable.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from automl.config.schema import ModelConfig, PeftConfig
from automl.console import first_line
from automl.model.head import named_labels, remap_head
from automl.model.load import (
    TINY_VOCAB_SIZE,
    ModelError,
    ModelInfo,
    _tiny_config,
    display_name,
    meta_model,
    model_location,
)

log = logging.getLogger(__name__)


def build_model(
    cfg: ModelConfig, peft_cfg: PeftConfig, label_names: list[str], pad_token_id: int
) -> tuple[nn.Module, ModelInfo]:
    """Base model with a classification head for `label_names` (a checkpoint's own rows for
    the classes it names, model/head.py), then freezing and LoRA as configured."""
    from transformers import AutoModelForSequenceClassification

    id2label = dict(enumerate(label_names))
    label2id = {name: i for i, name in id2label.items()}
    absent: list[str] = []  # the base model's weights its checkpoint did not hold
    if cfg.source == "tiny":
        config = _tiny_config(cfg, TINY_VOCAB_SIZE, len(label_names), pad_token_id)
        config.id2label, config.label2id = id2label, label2id
        model = AutoModelForSequenceClassification.from_config(config)
        source = f"tiny-{cfg.tiny_arch}"
    else:
        source = model_location(cfg)
        model, absent = _load_classifier(cfg, source, id2label, label2id)
    # the loss is single-label cross-entropy whatever the checkpoint was trained for (a
    # multi-label or regression checkpoint's problem_type would make the model's own loss BCE
    # or MSE)
    model.config.problem_type = "single_label_classification"
    model.config.pad_token_id = pad_token_id
    blocks_name, blocks = find_blocks(model)
    depth = peft_cfg.frozen_layers
    if depth > len(blocks):
        raise ModelError(
            f"peft.frozen_layers: {depth} is more than the model's {len(blocks)} transformer blocks"
        )
    random_layers = started_random(model, absent, blocks_name)  # saved without its pooler
    if peft_cfg.lora_rank > 0 and depth < len(blocks):
        model = apply_lora(model, peft_cfg, depth, len(blocks), random_layers)
    elif peft_cfg.lora_rank > 0:  # every block frozen: nothing to adapt, only the head trains
        for name, p in model.base_model.named_parameters():
            p.requires_grad_(name.split(".")[0] in random_layers)
    else:
        freeze_bottom(model, depth)
    # what an older checkpoint (before these layers trained) may lack: model/state.py
    model.automl_random_layers = tuple(random_layers)
    trainable, total = count_parameters(model)
    log.debug("blocks at %s: %d; trainable %d / %d", blocks_name, len(blocks), trainable, total)
    return model, ModelInfo(source, len(blocks), trainable, total)


def _load_classifier(
    cfg: ModelConfig, source: str, id2label: dict[int, str], label2id: dict[str, int]
) -> tuple[nn.Module, list[str]]:
    """The pretrained model with a head for the data's classes: the checkpoint's own rows for
    the classes it names (model/head.py), fresh rows for the rest; and the model's weights
    the checkpoint did not hold."""
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from transformers import logging as hf_logging

    label_names = list(id2label.values())
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" report is expected
    hf_logging.disable_progress_bar()
    try:
        checkpoint = AutoConfig.from_pretrained(source, trust_remote_code=cfg.trust_remote_code)
        theirs = named_labels(checkpoint)
        if theirs is not None and theirs != label_names:  # a classifier for other classes
            model, loading = AutoModelForSequenceClassification.from_pretrained(
                source, dtype=torch.float32, trust_remote_code=cfg.trust_remote_code,
                ignore_mismatched_sizes=True, output_loading_info=True,
            )  # fmt: skip
            absent = _absent_keys(loading)
            _check_backbone_loaded(model, absent, source)
            if remap_head(model, theirs, label_names, absent):
                return model, absent
            del model  # before loading again: never two copies of a large model at once
            log.warning(
                "%s names its classes, but its head's output layer was not found: "
                "transformers' own head loading applies", source,
            )  # fmt: skip
        model, loading = AutoModelForSequenceClassification.from_pretrained(
            source,
            # float32 weights whatever the checkpoint's dtype (transformers 5 loads a model
            # whose config says bfloat16 or float16 in that dtype): the optimizer updates
            # full-precision weights; mixed precision is autocast's job (train/loop.py)
            dtype=torch.float32,
            num_labels=len(label_names),
            id2label=id2label,
            label2id=label2id,
            trust_remote_code=cfg.trust_remote_code,
            ignore_mismatched_sizes=True,
            output_loading_info=True,
        )
        absent = _absent_keys(loading)
        _check_backbone_loaded(model, absent, source)
        return model, absent
    finally:  # as the process had them: a later Hub download in it shows its progress
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _absent_keys(loading: Mapping[str, Any]) -> list[str]:
    """The model's weights the checkpoint did not fill: missing, or of another shape."""
    mismatched = loading.get("mismatched_keys", ())  # (key, shapes...) tuples
    return [*loading.get("missing_keys", ()),
            *(k[0] if isinstance(k, tuple) else k for k in mismatched)]  # fmt: skip


def _check_backbone_loaded(model: nn.Module, absent: list[str], source: str) -> None:
    """transformers' loading report is a warning this module silences (the new head is
    expected): a checkpoint whose backbone keys carry another prefix (a custom loop's
    `save_file(wrapper.state_dict())`) trained from random weights at chance accuracy,
    unsaid. Most of the backbone absent is refused; a few weights are named in a warning."""
    prefix = getattr(model, "base_model_prefix", "")
    if not prefix:
        return
    backbone = sorted(  # transformers reports a set: the first named is the same every run
        k for k in absent if k.startswith(f"{prefix}.") and k.split(".")[1] != "pooler"
    )
    if not backbone:
        return
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    total = sum(n for name, n in sizes.items() if name.startswith(f"{prefix}."))
    lost = sum(sizes.get(k, 0) for k in backbone)
    if total and lost * 2 > total:
        raise ModelError(
            f"model.name_or_path: {source}: {len(backbone)} of the backbone's weights are not "
            f"in its checkpoint (first: {backbone[0]}); it would train from random weights "
            "(keys saved under another prefix?)"
        )
    log.warning(
        "%s: %d backbone weights not in the checkpoint start random (first: %s)",
        source, len(backbone), backbone[0],
    )  # fmt: skip


def find_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The transformer block list, found generically: the ModuleList of identical modules that
    holds the most parameters (encoder.layer in BERT/RoBERTa, transformer.layer in DistilBERT,
    transformer.h in GPT-2, model.layers in Llama-style models)."""
    best: tuple[str, nn.ModuleList] | None = None
    best_size = -1
    for name, module in model.named_modules():
        if not isinstance(module, nn.ModuleList) or len(module) == 0:
            continue
        if len({type(m) for m in module}) != 1:
            continue
        size = sum(p.numel() for p in module.parameters())
        if size > best_size:
            best, best_size = (name, module), size
    if best is None:
        raise ModelError(f"model: no transformer block list found in {type(model).__name__}")
    _refuse_split_blocks(model, *best)
    return best


def _refuse_split_blocks(model: nn.Module, name: str, blocks: nn.ModuleList) -> None:
    """XLM and FlauBERT keep a block's parts in parallel lists (`attentions`, `ffns`, two
    norms): taking the largest as the blocks froze every attention layer under
    `frozen_layers=2` and named the wrong layers to LoRA. Refused rather than done wrong."""
    parent_name, _, _ = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    twins = [
        child_name
        for child_name, child in parent.named_children()
        if child is not blocks
        and isinstance(child, nn.ModuleList)
        and len(child) == len(blocks)
        and any(True for _ in child.parameters())
    ]
    if len(twins) >= 2:  # XLM has three; one same-length list beside may be per-layer extras
        raise ModelError(
            f"model: {type(model).__name__} keeps each block's parts in parallel lists "
            f"({name} beside {', '.join(twins)}): not supported (no single block list to "
            "freeze or adapt); choose a model with one (BERT, RoBERTa, DeBERTa, GPT-style)"
        )


def freeze_bottom(model: nn.Module, depth: int) -> None:
    """Freeze the embeddings and the bottom `depth` blocks.

    'Embeddings' are the base-model parameters registered before the block list: the token,
    position and type embeddings and their norm, whatever the architecture calls them, and the
    tables every block reads though registered after them (`_shared_by_blocks`). Layers after
    the blocks (pooler, final norm) stay trainable with the blocks above the frozen ones, and
    the head always: XLM-RoBERTa and CamemBERT register their classifier before the backbone,
    so it was frozen as an embedding (and with every block frozen nothing trained).
    """
    blocks_name, blocks = find_blocks(model)
    if depth == 0:
        return
    backbone = backbone_prefix(model, blocks_name)
    for param in _shared_by_blocks(model, blocks_name):
        param.requires_grad_(False)
    frozen_blocks = {id(p) for block in list(blocks)[:depth] for p in block.parameters()}
    block_params = {id(p) for p in blocks.parameters()}
    after = after_the_blocks(blocks_name)
    seen_blocks = False
    for name, param in model.named_parameters():
        if id(param) in block_params:
            seen_blocks = True
            if id(param) in frozen_blocks:
                param.requires_grad_(False)
        elif (
            not seen_blocks
            and name.startswith(backbone)
            and not name.startswith((blocks_name, *after))
        ):
            param.requires_grad_(False)  # embeddings: everything feeding the first block


def backbone_prefix(model: nn.Module, blocks_name: str) -> str:
    """`roberta.` where the blocks are the base model's (`base_model_prefix`): only its own
    parameters may be embeddings. "" (every parameter) where the blocks lie elsewhere."""
    prefix = getattr(model, "base_model_prefix", "")
    return f"{prefix}." if prefix and blocks_name.startswith(f"{prefix}.") else ""


def head_before_backbone(model: nn.Module) -> list[str]:
    """The head's parameters where the model registers them before its backbone
    (XLM-RoBERTa's classifier): `freeze_bottom` froze them until 2026-12-06 (night)."""
    blocks_name, _ = find_blocks(model)
    backbone = backbone_prefix(model, blocks_name)
    names = [name for name, _ in model.named_parameters()]
    first = next((i for i, name in enumerate(names) if backbone and name.startswith(backbone)), 0)
    return names[:first]


# Layers that run after the blocks though registered before them (OPT's decoder registers its
# final norm and output projection above its block list): never 'embeddings'
NAMED_AFTER_THE_BLOCKS = ("final_layer_norm", "project_out")


def after_the_blocks(blocks_name: str) -> tuple[str, ...]:
    """Name prefixes of those layers beside the block list (a block's own `final_layer_norm`,
    OPT's last norm inside each block, is not one)."""
    parent = blocks_name.rpartition(".")[0]
    return tuple(f"{parent}.{n}." if parent else f"{n}." for n in NAMED_AFTER_THE_BLOCKS)


def _shared_by_blocks(model: nn.Module, blocks_name: str) -> list[nn.Parameter]:
    """Parameters beside the block list that the bottom blocks read, so that frozen blocks
    would still drift if they trained: relative-position tables (DeBERTa's `rel_embeddings`,
    MPNet's `relative_attention_bias`), DeBERTa-v2's norm of that table and its convolution
    on the first block's output. A final norm beside the blocks (GPT-2's `ln_f`) is not one."""
    parent_name = blocks_name.rpartition(".")[0]
    parent = model.get_submodule(parent_name) if parent_name else model
    shared: list[nn.Parameter] = []
    for module in parent.children():
        if isinstance(module, nn.Embedding):
            shared.extend(module.parameters())
    if "layer_norm" in getattr(parent, "norm_rel_ebd", ()):  # DeBERTa-v2: normed table
        shared.extend(parent.get_submodule("LayerNorm").parameters())
    if isinstance(getattr(parent, "conv", None), nn.Module):  # DeBERTa-v2: on block 0's output
        shared.extend(parent.get_submodule("conv").parameters())
    return shared


def apply_lora(
    model: nn.Module,
    peft_cfg: PeftConfig,
    depth: int,
    num_blocks: int,
    random_layers: Sequence[str] = (),
) -> nn.Module:
    """LoRA adapters on the unfrozen blocks only; peft freezes the rest but the head, and the
    backbone's `random_layers` (started_random), which frozen would stay at their random
    start."""
    from peft import LoraConfig, TaskType, get_peft_model

    rank = peft_cfg.lora_rank
    alpha = peft_cfg.lora_alpha if peft_cfg.lora_alpha is not None else 2 * rank
    targets = list(peft_cfg.target_modules or []) or lora_targets(model)
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=peft_cfg.lora_rank,
        lora_alpha=alpha,  # type: ignore[arg-type]  # peft accepts floats (scaling = alpha / r)
        lora_dropout=peft_cfg.lora_dropout,
        target_modules=targets,
        layers_to_transform=list(range(depth, num_blocks)) if depth else None,
        # beside peft's classifier/score
        modules_to_save=[*head_modules(model), *random_layers] or None,
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as err:
        raise ModelError(f"peft.target_modules: {first_line(err)}") from None


def started_random(model: nn.Module, absent: Sequence[str], blocks_name: str) -> list[str]:
    """The backbone's layers beside its blocks whose weights the checkpoint did not hold, all
    of them (BERT's pooler in a checkpoint saved without it): they start random, and LoRA
    would freeze them there, the classifier reading a random projection. Their names, as
    peft's `modules_to_save` takes them, where peft would match nothing else by them."""
    prefix = getattr(model, "base_model_prefix", "")
    backbone = getattr(model, prefix, None) if prefix else None
    if backbone is None or not absent:
        return []
    missing = set(absent)
    keys = [key for key, _ in model.named_modules()]
    found = []
    for name, child in backbone.named_children():
        params = [f"{prefix}.{name}.{n}" for n, _ in child.named_parameters()]
        if (
            params
            and all(p in missing for p in params)
            and not blocks_name.startswith(f"{prefix}.{name}")
            and [key for key in keys if key.endswith(name)] == [f"{prefix}.{name}"]
        ):
            found.append(name)
    if found:
        log.warning("%s start random (not in the checkpoint): they train", ", ".join(found))
    return found


def head_modules(model: nn.Module) -> list[str]:
    """The classification model's own modules beside its backbone and `classifier`/`score`
    (DeBERTa's pooler, ModernBERT's head, XLNet's summary and output layer): LoRA trains them
    as it trains the classifier. peft's task type keeps only `classifier` and `score`
    trainable, so DeBERTa-v3's pooler and XLNet's output layer stayed at their random start.
    A name peft would also match deeper in the model (it matches name suffixes) is left out."""
    prefix = getattr(model, "base_model_prefix", "")
    keys = [key for key, _ in model.named_modules()]
    return [
        name
        for name, child in model.named_children()
        if name not in (prefix, "classifier", "score")
        and any(True for _ in child.parameters())
        and [key for key in keys if key.endswith(name)] == [name]
    ]


# Attention projections by the names architectures give them: query and value apart (BERT's
# query/value, DistilBERT's q_lin/v_lin, MPNet's q/v, Llama's q_proj/v_proj), or fused
# (ModernBERT's Wqkv, GPT-2's c_attn, GPT-NeoX's query_key_value). Longformer's [CLS], which
# its classifier reads, attends through query_global/value_global: adapted too.
_QUERY_VALUE = re.compile(r"(q|v|query|value)(_?(proj|lin|linear|global))?", re.IGNORECASE)
_FUSED_QKV = re.compile(r"w?qkv(_?proj)?|c_attn|query_key_value|in_proj", re.IGNORECASE)


def lora_targets(model: nn.Module) -> list[str] | None:
    """The modules LoRA adapts when `peft.target_modules` is unset: peft's own choice where it
    has one for the architecture (query and value in BERT), else the block's query and value
    projections found by name, as peft chooses them (DistilBERT, MPNet, ModernBERT have no
    entry in peft's table, and peft refuses them). None of those names: one line listing the
    block's linear layers, to choose from."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if _peft_has_default(model_type):
        return None
    names = _linear_names(find_blocks(model)[1][0])
    chosen = [n for n in names if _QUERY_VALUE.fullmatch(n)] or [
        n for n in names if _FUSED_QKV.fullmatch(n)
    ]
    if not chosen:
        raise ModelError(
            f"peft.target_modules: no query/value layers found in a {model_type} block; name "
            f"the layers LoRA adapts (its linear layers: {', '.join(names) or 'none'})"
        )
    log.debug("LoRA on %s (peft has no default for %s)", ", ".join(chosen), model_type)
    return chosen


def check_lora_targets(
    cfg: ModelConfig, peft_cfg: PeftConfig, config: Any, may_freeze: bool = False
) -> None:
    """Before any compute: the layers LoRA would adapt exist in the model (built from its
    transformers `config` on the meta device: no weights read, no memory). Else every LoRA
    trial fails. A model that cannot be built that way (remote code that computes in its
    constructor) is left to the trials, where apply_lora names the same problems."""
    if not peft_cfg.target_modules and _peft_has_default(config.model_type):
        return  # peft's own choice, no model to build
    model = meta_model(cfg, config, "LoRA targets")
    if model is None:
        return
    if not peft_cfg.target_modules:
        lora_targets(model)
        return
    # peft's rule: a target names a module by its full name or a dotted suffix of it
    adaptable = [name for name, m in model.named_modules() if _is_adaptable(m)]
    missing = [
        t
        for t in peft_cfg.target_modules
        if not any(n == t or n.endswith(f".{t}") for n in adaptable)
    ]
    if missing:
        raise ModelError(
            f"peft.target_modules: {', '.join(missing)}: no such linear layer in "
            f"{display_name(cfg)} (its blocks' linear layers: "
            f"{', '.join(_linear_names(find_blocks(model)[1]))})"
        )
    if may_freeze:  # peft's layers_to_transform then adapts layers inside the blocks only
        blocks = find_blocks(model)[0] + "."
        outside = [
            t
            for t in peft_cfg.target_modules
            if not any(n.startswith(blocks) and (n == t or n.endswith(f".{t}")) for n in adaptable)
        ]
        if outside:
            raise ModelError(
                f"peft.target_modules: {', '.join(outside)}: outside the transformer blocks; "
                "with frozen layers (peft.frozen_layers > 0) LoRA adapts layers inside the "
                "unfrozen blocks only, so it would adapt nothing there"
            )


def _peft_has_default(model_type: str | None) -> bool:
    """Whether peft's own table names the layers LoRA adapts in this architecture."""
    from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    return model_type in PEFT_DEFAULTS


def _linear_names(module: nn.Module) -> list[str]:
    """The distinct last names of the linear layers inside `module` (`query`, `q_lin`)."""
    return sorted({n.rsplit(".", 1)[-1] for n, m in module.named_modules() if _is_linear(m)})


def _is_adaptable(module: nn.Module) -> bool:
    """A layer LoRA can adapt: linear (and GPT-2's Conv1D), embedding, convolution."""
    return _is_linear(module) or isinstance(module, nn.Embedding | nn.Conv1d | nn.Conv2d)


def _is_linear(module: nn.Module) -> bool:
    # nn.Linear, and GPT-2's Conv1D (a linear layer with its weight transposed)
    return isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"


def count_parameters(model: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total
