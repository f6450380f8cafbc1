"""Build the classifier: base model, frozen-layer depth, LoRA adapters (peft), parameter counts.

Frozen depth k freezes the embeddings and the bottom k transformer blocks. LoRA adapters go only
on the blocks above them; LoRA rank 0 means full fine-tuning of those blocks. The classification
head is always trainable.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from automl.config import ModelConfig, PeftConfig

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """Unusable model setting; the message is one line naming the model and the problem."""


@dataclass
class ModelInfo:
    source: str  # the folder or hub id the weights came from ("tiny-bert" for random ones)
    num_blocks: int
    trainable_params: int
    total_params: int


# ---------------------------------------------------------------------------------------------
# Where the model comes from


def model_location(cfg: ModelConfig) -> str:
    """The folder or hub id for `from_pretrained` (the tokenizer's, for tiny models)."""
    if cfg.source == "pretrained":
        return cfg.name_or_path
    try:
        package = importlib.import_module(cfg.package)
    except ImportError:
        raise ModelError(
            f"model.package: cannot import {cfg.package!r} (is it installed?)"
        ) from None
    getter = getattr(package, "get_model_path", None)
    folder = Path(getter()) if callable(getter) else Path(package.__file__ or "").parent / "model"
    if not (folder / "config.json").is_file():
        raise ModelError(f"model.package: {cfg.package!r} ships no model folder at {folder}")
    return str(folder)


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists() or name.count("/") > 1


def load_model_config(cfg: ModelConfig) -> Any:
    """The transformers config only (no weights): cheap validation before any compute."""
    from transformers import AutoConfig

    if cfg.source == "tiny":
        return _tiny_config(cfg, vocab_size=30522, num_labels=2, pad_token_id=0)
    where = model_location(cfg)
    if cfg.source == "pretrained" and _looks_like_path(where):
        folder = Path(where).expanduser()
        if not folder.is_dir():
            raise ModelError(f"model.name_or_path: {where}: no such folder")
        if not (folder / "config.json").is_file():
            raise ModelError(
                f"model.name_or_path: {where}: no config.json (not a transformers model folder)"
            )
    try:
        return AutoConfig.from_pretrained(where, trust_remote_code=cfg.trust_remote_code)
    except Exception as err:  # offline hub id, typo, remote code refused: one line, the cause
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(f"model.name_or_path: cannot load {where!r}: {first}") from None


def num_blocks_of(model_config: Any) -> int:
    """Transformer block count from a config (transformers maps n_layer/n_layers to this name)."""
    count = getattr(model_config, "num_hidden_layers", None)
    if not isinstance(count, int):
        raise ModelError(f"model: cannot tell the block count of a {type(model_config).__name__}")
    return count


def load_tokenizer(cfg: ModelConfig) -> Any:
    """The tokenizer, with a pad token (GPT-style tokenizers ship without one)."""
    from transformers import AutoTokenizer

    where = model_location(cfg) if cfg.source != "tiny" else model_location(_tokenizer_source(cfg))
    tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=cfg.trust_remote_code)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return tokenizer


def _tokenizer_source(cfg: ModelConfig) -> ModelConfig:
    """Tiny models borrow the packaged MiniLM tokenizer, so they need no download."""
    return ModelConfig(source="package", package=cfg.package)


def _tiny_config(cfg: ModelConfig, vocab_size: int, num_labels: int, pad_token_id: int) -> Any:
    from transformers import BertConfig, GPT2Config

    if cfg.tiny_arch == "gpt2":
        return GPT2Config(  # type: ignore[call-arg]
            vocab_size=vocab_size,
            n_positions=max(cfg.max_length, 64),
            n_embd=cfg.tiny_hidden,
            n_layer=cfg.tiny_layers,
            n_head=cfg.tiny_heads,
            n_inner=cfg.tiny_intermediate,
            num_labels=num_labels,
            pad_token_id=pad_token_id,
            bos_token_id=None,  # GPT-2's ids (50256) are outside the borrowed BERT vocabulary
            eos_token_id=None,
        )
    return BertConfig(  # type: ignore[call-arg]
        vocab_size=vocab_size,
        hidden_size=cfg.tiny_hidden,
        num_hidden_layers=cfg.tiny_layers,
        num_attention_heads=cfg.tiny_heads,
        intermediate_size=cfg.tiny_intermediate,
        max_position_embeddings=max(cfg.max_length, 64),
        num_labels=num_labels,
        pad_token_id=pad_token_id,
    )


# ---------------------------------------------------------------------------------------------
# Building


def build_model(
    cfg: ModelConfig, peft_cfg: PeftConfig, label_names: list[str], pad_token_id: int
) -> tuple[nn.Module, ModelInfo]:
    """Base model with a fresh classification head, then freezing and LoRA as configured."""
    from transformers import AutoModelForSequenceClassification
    from transformers import logging as hf_logging

    id2label = dict(enumerate(label_names))
    label2id = {name: i for i, name in id2label.items()}
    if cfg.source == "tiny":
        config = _tiny_config(cfg, 30522, len(label_names), pad_token_id)
        config.id2label, config.label2id = id2label, label2id
        model = AutoModelForSequenceClassification.from_config(config)
        source = f"tiny-{cfg.tiny_arch}"
    else:
        source = model_location(cfg)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the "newly initialized classifier" report is expected
        hf_logging.disable_progress_bar()
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                source,
                num_labels=len(label_names),
                id2label=id2label,
                label2id=label2id,
                trust_remote_code=cfg.trust_remote_code,
                ignore_mismatched_sizes=True,
            )
        finally:
            hf_logging.set_verbosity(verbosity)
    model.config.pad_token_id = pad_token_id
    blocks_name, blocks = find_blocks(model)
    depth = peft_cfg.frozen_layers
    if depth > len(blocks):
        raise ModelError(
            f"peft.frozen_layers: {depth} is more than the model's {len(blocks)} transformer blocks"
        )
    if peft_cfg.lora_rank > 0 and depth < len(blocks):
        model = apply_lora(model, peft_cfg, depth, len(blocks))
    elif peft_cfg.lora_rank > 0:  # every block frozen: nothing to adapt, only the head trains
        for p in model.base_model.parameters():
            p.requires_grad_(False)
    else:
        freeze_bottom(model, depth)
    trainable, total = count_parameters(model)
    log.debug("blocks at %s: %d; trainable %d / %d", blocks_name, len(blocks), trainable, total)
    return model, ModelInfo(source, len(blocks), trainable, total)


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
    return best


def freeze_bottom(model: nn.Module, depth: int) -> None:
    """Freeze the embeddings and the bottom `depth` blocks.

    'Embeddings' are the base-model parameters registered before the block list: the token,
    position and type embeddings and their norm, whatever the architecture calls them. Layers
    after the blocks (pooler, final norm) stay trainable with the blocks above the frozen ones.
    """
    blocks_name, blocks = find_blocks(model)
    if depth == 0:
        return
    frozen_blocks = {id(p) for block in list(blocks)[:depth] for p in block.parameters()}
    block_params = {id(p) for p in blocks.parameters()}
    seen_blocks = False
    for name, param in model.named_parameters():
        if id(param) in block_params:
            seen_blocks = True
            if id(param) in frozen_blocks:
                param.requires_grad_(False)
        elif not seen_blocks and not name.startswith(blocks_name):
            param.requires_grad_(False)  # embeddings: everything feeding the first block


def apply_lora(model: nn.Module, peft_cfg: PeftConfig, depth: int, num_blocks: int) -> nn.Module:
    """LoRA adapters on the unfrozen blocks only; peft freezes the rest but the head."""
    from peft import LoraConfig, TaskType, get_peft_model

    rank = peft_cfg.lora_rank
    alpha = peft_cfg.lora_alpha if peft_cfg.lora_alpha is not None else 2 * rank
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=peft_cfg.lora_rank,
        lora_alpha=alpha,  # type: ignore[arg-type]  # peft accepts floats (scaling = alpha / r)
        lora_dropout=peft_cfg.lora_dropout,
        target_modules=list(peft_cfg.target_modules) if peft_cfg.target_modules else None,
        layers_to_transform=list(range(depth, num_blocks)) if depth else None,
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as err:
        raise ModelError(f"peft.target_modules: {str(err).splitlines()[0]}") from None


def count_parameters(model: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


# ---------------------------------------------------------------------------------------------
# Checkpoints: only what training changes


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of the trainable parameters: small for LoRA, and all a checkpoint needs."""
    return {
        n: p.detach().to("cpu", copy=True) for n, p in model.named_parameters() if p.requires_grad
    }


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ModelError(f"checkpoint does not fit the model: {result.unexpected_keys[:3]} ...")


def merged_for_export(model: nn.Module) -> nn.Module:
    """A plain transformers model: LoRA folded into the base weights, the peft wrapper gone."""
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    for p in model.parameters():
        p.requires_grad_(True)
    return model
