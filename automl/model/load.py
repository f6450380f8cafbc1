"""Where a model comes from (a packaged folder, the hub or a folder, a tiny config), its
tokenizer, and checks that need only its config.
"""

from __future__ import annotations

import importlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from automl.config.schema import Config, ModelConfig
from automl.console import first_line
from automl.hub import looks_like_path, missing_offline, weights_missing_offline

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """Unusable model setting; the message is one line naming the model and the problem."""


@dataclass
class ModelInfo:
    source: str  # the folder or hub id the weights came from ("tiny-bert" for random ones)
    num_blocks: int
    trainable_params: int
    total_params: int


def display_name(cfg: ModelConfig) -> str:
    """How the model is shown in plans, messages and MLflow params (no machine paths)."""
    if cfg.source == "tiny":
        return f"tiny-{cfg.tiny_arch}"
    return cfg.name_or_path if cfg.source == "pretrained" else cfg.package


def model_location(cfg: ModelConfig) -> str:
    """The folder or hub id for `from_pretrained` (the tokenizer's, for tiny models)."""
    if cfg.source == "pretrained":  # `~/models/x` (bash leaves it alone in key=~/x)
        folder = Path(cfg.name_or_path).expanduser()
        return (
            str(folder)
            if cfg.name_or_path.startswith("~") and folder.is_dir()
            else cfg.name_or_path
        )
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


def load_model_config(cfg: ModelConfig) -> Any:
    """The transformers config only (no weights): cheap validation before any compute."""
    from transformers import AutoConfig

    if cfg.source == "tiny":
        return _tiny_config(cfg, vocab_size=TINY_VOCAB_SIZE, num_labels=2, pad_token_id=0)
    where = model_location(cfg)
    if cfg.source == "pretrained" and looks_like_path(where):
        folder = Path(where).expanduser()
        if not folder.is_dir():
            raise ModelError(f"model.name_or_path: {where}: no such folder")
        if not (folder / "config.json").is_file():
            raise ModelError(
                f"model.name_or_path: {where}: no config.json (not a transformers model folder)"
            )
        problem = _weights_problem(folder)
        if problem:
            raise ModelError(f"model.name_or_path: {where}: {problem}")
    if cfg.source == "pretrained" and not looks_like_path(where):
        missing = missing_offline(where) or weights_missing_offline(
            where, WEIGHT_FILES, _weights_problem
        )
        if missing:
            raise ModelError(f"model.name_or_path: {where!r}: {missing}")
    try:
        return AutoConfig.from_pretrained(where, trust_remote_code=cfg.trust_remote_code)
    except Exception as err:  # offline hub id, typo, remote code refused: one line, the cause
        first = first_line(err) + _remote_code_hint(cfg, err)
        raise ModelError(f"model.name_or_path: cannot load {where!r}: {first}") from None


def _remote_code_hint(cfg: ModelConfig, err: Exception) -> str:
    """What to set where transformers refused to run a model's own code (its config's, or its
    tokenizer's beside a standard config)."""
    refused = "trust_remote_code" in str(err) or "custom code" in first_line(err)
    return (
        " (to run its code: model.trust_remote_code=true)"
        if refused and not (cfg.trust_remote_code)
        else ""
    )


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")  # fmt: skip
LFS_POINTER = b"version https://git-lfs"  # how a Git LFS pointer file begins


def _weights_problem(folder: Path) -> str | None:
    """Why a local folder's weights cannot load, from file names, a shard index and each
    file's first bytes (a safetensors file's header): otherwise every trial would fail on them
    after the data is tokenized and Ray started."""
    present = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not present:
        return f"no weights ({' or '.join(WEIGHT_FILES[::2])} not found)"
    # transformers loads safetensors where there are any: a pytorch_model.bin beside them (a
    # Git LFS pointer after `git lfs pull --include "*.safetensors"`) is never read
    safetensors = [p for p in present if p.name.startswith("model.safetensors")]
    present = safetensors or present
    files = []
    for path in present:
        if not path.name.endswith(".index.json"):
            files.append(path)
            continue
        try:  # a sharded checkpoint: the index names its shards
            shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError):
            return f"{path.name} is not a shard index"
        missing = [shard for shard in shards if not (folder / shard).is_file()]
        if missing:
            return f"{missing[0]} is missing (a shard {path.name} names)"
        files += [folder / shard for shard in shards]
    for path in files:
        problem = _weights_file_problem(path)
        if problem:
            return f"{path.name} {problem}"
    return None


MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit on its JSON header


def _weights_file_problem(path: Path) -> str | None:
    """Why one weights file cannot load, from its first bytes: a Git LFS pointer, or a
    safetensors file cut short (a copy or download stopped, a full disk) or none, by its
    header alone (its 8-byte length, the JSON, and where its last tensor ends)."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        head = handle.read(len(LFS_POINTER))
        if head == LFS_POINTER:
            return "is a Git LFS pointer, not the weights (run git lfs pull)"
        if path.suffix != ".safetensors":
            return None
        length = int.from_bytes(head[:8], "little") if len(head) >= 8 else -1
        if not 0 < length <= min(MAX_HEADER_BYTES, size - 8):
            return f"is not a safetensors file, or is cut short ({size:,} bytes)"
        handle.seek(8)
        try:
            header = json.loads(handle.read(length))
            end = max(
                (int(t["data_offsets"][1]) for k, t in header.items() if k != "__metadata__"),
                default=0,
            )
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            return "has an unreadable header (not a safetensors file, or damaged)"
    if 8 + length + end > size:
        return (
            f"is cut short: {size:,} of {8 + length + end:,} bytes (a copy or download that "
            "stopped, or a full disk): copy it again"
        )
    return None


def num_blocks_of(model_config: Any) -> int:
    """Transformer block count from a config (transformers maps n_layer/n_layers to this name).
    Encoder-decoder models (BART, T5) are refused: they hold two block stacks of their own
    depths, and freezing the bottom blocks of one would freeze the whole other."""
    if getattr(model_config, "is_encoder_decoder", False):
        raise ModelError(
            f"model: {type(model_config).__name__} is an encoder-decoder model (two block "
            "stacks): not supported; choose an encoder (BERT, RoBERTa, DeBERTa) or a decoder"
        )
    count = getattr(model_config, "num_hidden_layers", None)
    if not isinstance(count, int) and getattr(model_config, "text_config", None) is not None:
        raise ModelError(  # Gemma 3, Qwen3.5: the text model's settings sit one level down
            f"model: {type(model_config).__name__} is a composite (multimodal) config: not "
            "supported; choose a text-only model"
        )
    if not isinstance(count, int):
        raise ModelError(f"model: cannot tell the block count of a {type(model_config).__name__}")
    groups = getattr(model_config, "num_hidden_groups", None)
    if isinstance(groups, int) and 0 < groups < count:
        return groups  # ALBERT: its layers share the weights of this many blocks
    sizes = getattr(model_config, "block_sizes", None)
    if isinstance(sizes, list | tuple) and sizes and sum(sizes) == count:
        return len(sizes)  # Funnel: its layers come in this many blocks, pooled between
    return count


MODEL_INPUTS = ("input_ids", "attention_mask")  # what training passes a model (data/batching.py)


def load_tokenizer(cfg: ModelConfig) -> Any:
    """The tokenizer, with a pad token (GPT-style tokenizers ship without one). transformers 5
    builds one even from a folder with no vocabulary file (BERT's falls back to its special
    tokens alone), and training on all-[UNK] inputs fails silently: that is refused. Small real
    vocabularies (characters, DNA bases) pass: they hold more than special tokens.

    It feeds a model as training does, and the export keeps that (saved with it): ids and the
    mask only (GPT-2 adds an embedding of any `token_type_ids` it is given, which training
    never passes: a borrowed BERT tokenizer's moved the exported model's logits), padded on
    the right (a hub tokenizer padding on the left shifts learned positions)."""
    from transformers import AutoTokenizer

    where = model_location(cfg) if cfg.source != "tiny" else model_location(_tokenizer_source(cfg))
    # a model's own tokenizer code may need its own padding and inputs (ChatGLM asserts left
    # padding and adds position ids): left as it is
    feeds = {} if cfg.trust_remote_code else {
        "padding_side": "right", "model_input_names": list(MODEL_INPUTS)
    }  # fmt: skip
    try:  # a folder saved with the model alone, a missing tokenizer library: one line
        tokenizer = AutoTokenizer.from_pretrained(
            where, trust_remote_code=cfg.trust_remote_code, **feeds
        )
    except Exception as err:
        raise ModelError(
            f"model.name_or_path: {where}: its tokenizer cannot be loaded "
            f"({type(err).__name__}: {first_line(err, 200)}){_remote_code_hint(cfg, err)}"
        ) from err
    problem = vocabulary_problem(tokenizer)
    if problem:
        raise ModelError(f"model.name_or_path: {where}: {problem}")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token_id is None:  # else every batch, and the export, fails on it
        raise ModelError(
            f"model.name_or_path: {where}: its tokenizer has no pad, eos or unk token to pad "
            "batches with"
        )
    if cfg.source == "tiny" and len(tokenizer) > TINY_VOCAB_SIZE:  # ids past its embeddings
        raise ModelError(
            f"model.package: {cfg.package}: its tokenizer has {len(tokenizer)} tokens, more than "
            f"a tiny model's {TINY_VOCAB_SIZE} embeddings (BERT's vocabulary)"
        )
    return tokenizer


def vocabulary_problem(tokenizer: Any) -> str | None:
    """Why a tokenizer would make every word unknown: it knows only its special tokens."""
    if set(tokenizer.get_vocab()) <= set(tokenizer.all_special_tokens):
        return (
            f"its tokenizer knows only its {len(tokenizer)} special tokens (no vocabulary file "
            "in the folder?): every word would be unknown"
        )
    return None


# A tiny model's vocabulary: BERT's, as the packaged MiniLM tokenizer it borrows has
TINY_VOCAB_SIZE = 30522


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


def check_model(conf: Config, model_config: Any = None) -> int:
    """Validate the model settings from its config alone (no weights; `model_config` where the
    caller has loaded it already); return its block count."""
    config = load_model_config(conf.model) if model_config is None else model_config
    blocks = num_blocks_of(config)
    check_model_config(conf.model, config)
    if conf.peft.frozen_layers > blocks:
        raise ModelError(
            f"peft.frozen_layers: {conf.peft.frozen_layers} is more than "
            f"the model's {blocks} blocks"
        )
    return blocks


def check_model_config(cfg: ModelConfig, model_config: Any) -> None:
    """What a model's transformers config alone refuses (the sweep's plan runs it on every
    model choice too): its architecture, and `model.max_length` past its positions."""
    check_architecture(cfg, model_config)
    check_max_length(cfg, model_config)
    check_block_list(cfg, model_config)


def meta_model(cfg: ModelConfig, model_config: Any, checking: str) -> Any | None:
    """The classifier built from its transformers config on the meta device (no weights read,
    no memory), for checks before any compute; None where it cannot be built so (remote code
    that computes in its constructor): what it was for (`checking`) is left to the trials."""
    import torch
    from transformers import AutoModelForSequenceClassification

    try:
        with torch.device("meta"):
            return AutoModelForSequenceClassification.from_config(
                model_config, trust_remote_code=cfg.trust_remote_code
            )
    except Exception as err:
        log.debug("%s of %s not checked: %s", checking, display_name(cfg), err)
        return None


def check_block_list(cfg: ModelConfig, model_config: Any) -> None:
    """The block list freezing and LoRA work on, found in the model built from its config on
    the meta device (no weights, no memory), and as long as the config's block count, which
    `peft.frozen_layers` is checked against. Jamba (attention and Mamba layers in one list)
    passed every check and failed in every trial; Funnel counts layers, but its list holds
    groups of them. A model that cannot be built so (remote code computing in its
    constructor) is left to the trials."""
    from automl.model.build import find_blocks

    model = meta_model(cfg, model_config, "block list")
    if model is None:
        return
    path, blocks = find_blocks(model)  # none found: one line naming the class
    count = num_blocks_of(model_config)
    if len(blocks) != count:
        kind = getattr(model_config, "model_type", "") or type(model_config).__name__
        raise ModelError(
            f"model: {display_name(cfg)} ({kind}) counts {count} blocks in its config but its "
            f"block list ({path}) holds {len(blocks)}: peft.frozen_layers would freeze other "
            "depths than checked; not supported"
        )


# model types whose blocks are split across parallel lists (model/build.py: _refuse_split_blocks)
SPLIT_BLOCK_TYPES = frozenset({"xlm", "flaubert"})


def check_architecture(cfg: ModelConfig, model_config: Any) -> None:
    """Models this project cannot fine-tune, named from their config alone. A model type
    transformers has no sequence-classification class for (CodeGen, Mamba, XGLM, a remote-code
    model whose `auto_map` lacks one) passed every check, then failed in `from_pretrained`
    after the data was tokenized, in every trial; XLM/FlauBERT failed in every trial too."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    kind = getattr(model_config, "model_type", "") or type(model_config).__name__
    if kind in SPLIT_BLOCK_TYPES:
        raise ModelError(
            f"model: {display_name(cfg)} ({kind}) keeps each block's parts in parallel lists: "
            "not supported (no single block list to freeze or adapt); choose a model with one "
            "(BERT, RoBERTa, DeBERTa, GPT-style)"
        )
    if getattr(model_config, "summary_type", None) == "last":  # XLNet
        raise ModelError(
            f"model: {display_name(cfg)} ({kind}) classifies from its last position, which "
            "training's right padding makes a pad token in every shorter text: not supported; "
            "choose a model that reads its first token (BERT, RoBERTa, DeBERTa) or its last "
            "real one (GPT-style)"
        )
    auto_map = getattr(model_config, "auto_map", None) or {}
    if type(model_config) in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING or (
        cfg.trust_remote_code and "AutoModelForSequenceClassification" in auto_map
    ):
        return
    raise ModelError(
        f"model: {display_name(cfg)} ({kind}) has no sequence-classification class "
        "(AutoModelForSequenceClassification) to fine-tune; choose a model that has one"
    )


# Models whose learned positions start after the padding id (RoBERTa's 514 positions take 512
# tokens): the position of token i is pad_token_id + 1 + i.
_POSITIONS_AFTER_PADDING = frozenset({
    "roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "longformer",
    "roberta-prelayernorm", "data2vec-text", "ibert", "mpnet", "luke", "xmod",
    "esm", "lilt", "markuplm", "layoutlmv3",
})  # fmt: skip


def position_limit(model_config: Any) -> int | None:
    """The most tokens a model's learned position embeddings take; None where positions are
    rotary or relative only (no table to run off the end of)."""
    kind = getattr(model_config, "position_embedding_type", None)  # BERT-style configs say
    if kind in ("rotary", "rope", "nope"):  # ESM-2, Granite: no table (BERT's relative kinds
        return None  # and ALiBi configs still load its learned table: transformers 5 reads it)
    if kind is None and (  # ESM's config has a rope_theta even where it learns a table
        getattr(model_config, "rope_parameters", None) is not None
        or hasattr(model_config, "rope_theta")
        or getattr(model_config, "rotary_dim", None)  # GPT-J
    ):
        return None
    if getattr(model_config, "position_biased_input", True) is False:  # DeBERTa-v3
        return None
    limit = getattr(model_config, "max_position_embeddings", None)
    if not isinstance(limit, int) or limit <= 0:  # XLNet says -1: no table
        return None
    if getattr(model_config, "model_type", None) in _POSITIONS_AFTER_PADDING:
        limit -= 1 + int(getattr(model_config, "pad_token_id", None) or 0)
    return limit


def check_max_length(cfg: ModelConfig, model_config: Any) -> None:
    """`model.max_length` past the model's position table fails in the first long batch of
    every trial (a tensor size error): said here in one line, before any compute."""
    limit = position_limit(model_config)
    if limit is not None and cfg.max_length > limit:
        raise ModelError(
            f"model.max_length: {cfg.max_length} is more than {display_name(cfg)} takes "
            f"({limit} tokens): set model.max_length={limit} or less"
        )
