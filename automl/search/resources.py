"""How much GPU memory a trial needs, and which share of a GPU `gpus_per_trial=auto` asks for.

Ray's fractional GPUs are scheduling labels: Ray packs `1 / share` trials onto a GPU and trusts
them to fit. So before the sweep starts we estimate a trial's peak memory from the model's config
alone (no weights are loaded) and pick the smallest share that holds it with headroom. Each trial
then caps its own CUDA memory to that share (trainable.py), and one that still runs out retries
with a smaller micro-batch.

The estimate, in bytes, for `P` parameters of which `T` train:

    weights      4 P          fp32 master weights (the loop autocasts; it does not cast weights)
    gradients    4 T
    AdamW        8 T          two fp32 moments per trainable parameter
    activations  (L - k) x per-block activations, for the L - k blocks above the frozen depth k
                 (below it nothing requires grad, so autograd saves nothing)
    overhead     CUDA context and allocator slack, a constant

Per block, after Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer
Models", section 4.1) generalised to an intermediate size `i` and an element size `e` bytes
(2 under bf16/fp16 autocast, 4 in fp32), batch `b`, sequence `s`, hidden `h`, `a` heads:

    b s (e (8 h + 2 i) + 2 h)  +  b a s^2 (2 e + 1)

The first term holds the inputs of the QKV, output, and MLP projections, the MLP's two
`i`-wide tensors, two layer norms and the 1-byte dropout masks; the second, the attention
scores, their softmax and its dropout mask. With i = 4 h and e = 2 it is the paper's
`s b h (34 + 5 a s / h)`. Fused attention kernels save less than this, so it errs high.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from automl.config.schema import AUTO_BATCH_SIZES, Config

log = logging.getLogger(__name__)

GIB = 1024**3
GPU_SHARES = (0.125, 0.25, 0.5, 1.0)  # the shares `auto` chooses from, smallest first
HEADROOM = 1.25  # the estimate times this must fit the share: fragmentation, temporary buffers
CUDA_OVERHEAD_BYTES = GIB // 2  # CUDA context + cuBLAS workspaces, per process
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# peft's default LoRA targets per architecture (peft.utils.constants)
DEFAULT_LORA_TARGETS = {
    "bert": ("query", "value"),
    "roberta": ("query", "value"),
    "gpt2": ("c_attn",),
}


class NoMemoryFormula(ValueError):
    """A model type or LoRA target the estimate has no formula for (`auto` then gives each
    trial a whole GPU: plan.py)."""


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a transformer that memory depends on, read from its Hugging Face config."""

    arch: str  # bert | roberta | gpt2: decides the embedding, pooler and head layout
    vocab: int
    hidden: int
    layers: int
    heads: int
    intermediate: int
    positions: int
    type_vocab: int = 0

    @classmethod
    def from_hf_config(cls, config: Any) -> ModelShape:
        kind = getattr(config, "model_type", "")
        if kind in ("bert", "roberta"):
            return cls(
                kind, config.vocab_size, config.hidden_size, config.num_hidden_layers,
                config.num_attention_heads, config.intermediate_size,
                config.max_position_embeddings, config.type_vocab_size,
            )  # fmt: skip
        if kind == "gpt2":
            return cls(
                kind, config.vocab_size, config.n_embd, config.n_layer, config.n_head,
                config.n_inner or 4 * config.n_embd, config.n_positions,
            )  # fmt: skip
        raise NoMemoryFormula(f"no memory formula for model type {kind!r} (bert, roberta, gpt2)")

    # -- parameters, exactly as transformers builds them ----------------------------------------
    def embedding_params(self) -> int:
        """Token, position (and token-type) embeddings; BERT-style models add a layer norm."""
        norm = 2 * self.hidden if self.arch != "gpt2" else 0
        return (self.vocab + self.positions + self.type_vocab) * self.hidden + norm

    def block_params(self) -> int:
        """One block: Q, K, V and output projections (GPT-2's fused c_attn has the same count),
        the two MLP projections, two layer norms."""
        h, i = self.hidden, self.intermediate
        return 4 * (h * h + h) + (h * i + i) + (i * h + h) + 2 * 2 * h

    def top_params(self) -> int:
        """After the blocks: BERT's pooler, GPT-2's final norm, nothing in RoBERTa."""
        h = self.hidden
        return {"bert": h * h + h, "gpt2": 2 * h}.get(self.arch, 0)

    def head_params(self, num_labels: int) -> int:
        h, n = self.hidden, num_labels
        if self.arch == "gpt2":
            return h * n  # `score`, no bias
        if self.arch == "roberta":
            return (h * h + h) + (h * n + n)  # dense + out_proj
        return h * n + n

    def lora_params_per_block(self, rank: int, targets: Sequence[str] | None) -> int:
        """LoRA adds A (r x in) and B (out x r) to every targeted linear layer of a block."""
        h, i = self.hidden, self.intermediate
        shapes = {
            "query": [(h, h)], "key": [(h, h)], "value": [(h, h)],
            "c_attn": [(h, 3 * h)], "c_fc": [(h, i)], "c_proj": [(h, h), (i, h)],
        }  # fmt: skip
        total = 0
        for target in targets or DEFAULT_LORA_TARGETS[self.arch]:
            name = target.rsplit(".", 1)[-1]  # `attention.self.query`: peft matches the suffix
            if name not in shapes:
                raise NoMemoryFormula(
                    f"no memory formula for the LoRA target {target!r} ({', '.join(shapes)})"
                )
            total += sum(rank * (n_in + n_out) for n_in, n_out in shapes[name])
        return total


def parameter_counts(
    shape: ModelShape,
    *,
    num_labels: int,
    lora_rank: int,
    frozen_layers: int,
    target_modules: Sequence[str] | None = None,
) -> tuple[int, int]:
    """(trainable, total) parameters, following modeling.build_model's freezing and LoRA rules."""
    layers, depth = shape.layers, frozen_layers
    head = shape.head_params(num_labels)
    base = shape.embedding_params() + layers * shape.block_params() + shape.top_params() + head
    if lora_rank > 0 and depth < layers:
        lora = (layers - depth) * shape.lora_params_per_block(lora_rank, target_modules)
        return lora + head, base + lora + head  # peft trains a copy of the head (modules_to_save)
    if lora_rank > 0:
        return head, base  # every block frozen: only the head trains
    embeddings = shape.embedding_params() if depth == 0 else 0
    return embeddings + (layers - depth) * shape.block_params() + shape.top_params() + head, base


def block_activation_bytes(shape: ModelShape, batch_size: int, seq_len: int, dtype: str) -> int:
    """Activations one block keeps for its backward pass (the formula in the module docstring)."""
    e, b, s = DTYPE_BYTES[dtype], batch_size, seq_len
    h, i, a = shape.hidden, shape.intermediate, shape.heads
    return b * s * (e * (8 * h + 2 * i) + 2 * h) + b * a * s * s * (2 * e + 1)


@dataclass(frozen=True)
class MemoryEstimate:
    trainable_params: int
    total_params: int
    weights: int  # bytes
    gradients: int
    optimizer: int
    activations: int
    overhead: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.overhead

    @property
    def gib(self) -> float:
        return self.total / GIB


def estimate_memory(
    shape: ModelShape,
    *,
    num_labels: int,
    lora_rank: int,
    frozen_layers: int,
    batch_size: int,
    seq_len: int,
    dtype: str = "bfloat16",
    target_modules: Sequence[str] | None = None,
    overhead: int = CUDA_OVERHEAD_BYTES,
) -> MemoryEstimate:
    """Peak GPU memory of one training step, by term (see the module docstring)."""
    trainable, total = parameter_counts(
        shape, num_labels=num_labels, lora_rank=lora_rank, frozen_layers=frozen_layers,
        target_modules=target_modules,
    )  # fmt: skip
    active_blocks = shape.layers - frozen_layers
    return MemoryEstimate(
        trainable_params=trainable,
        total_params=total,
        weights=4 * total,
        gradients=4 * trainable,
        optimizer=8 * trainable,
        activations=active_blocks * block_activation_bytes(shape, batch_size, seq_len, dtype),
        overhead=overhead,
    )


def pick_gpu_share(
    need_bytes: int, gpu_memory_gb: float, cluster_gpus: float, headroom: float = HEADROOM
) -> float:
    """The smallest share in GPU_SHARES whose memory holds `need_bytes` x headroom; 0 without
    GPUs. When not even a whole GPU fits, 1 (the trial's OOM retry shrinks its micro-batch)."""
    if cluster_gpus <= 0:
        return 0.0
    for share in GPU_SHARES:
        if need_bytes * headroom <= share * gpu_memory_gb * GIB:
            return share
    log.warning(
        "a trial needs ~%.1f GiB, more than one %.0f GiB GPU: using whole GPUs; trials that run "
        "out of memory retry with smaller micro-batches",
        need_bytes / GIB, gpu_memory_gb,
    )  # fmt: skip
    return 1.0


def memory_fraction(
    share: float, total_bytes: int, context_bytes: int = CUDA_OVERHEAD_BYTES
) -> float | None:
    """The caching allocator's cap, as a fraction of the whole GPU, for a process given `share`
    of it: the share less the CUDA context, which the process also holds on that GPU but the
    allocator does not count. None when there is nothing to cap (no GPU, or a whole one)."""
    if not 0 < share < 1:
        return None
    budget = share * total_bytes - context_bytes
    if budget <= 0:
        raise ValueError(
            f"resources.gpus_per_trial: a {share} share of a {total_bytes / GIB:.1f} GiB GPU "
            f"cannot hold the CUDA context (~{context_bytes / GIB:.1f} GiB); ask for more"
        )
    return budget / total_bytes


def sweep_estimate(conf: Config, space: Any, num_labels: int = 2) -> MemoryEstimate:
    """The largest trial the search space allows, conservatively: no frozen blocks when the depth
    is searched, full fine-tuning (rank 0) where the searched rank can be 0, the largest batch.
    Needs only the model's config, not its weights."""
    from automl.model.load import load_model_config

    shape = ModelShape.from_hf_config(load_model_config(conf.model))
    keys = set(space.keys) if space is not None else set()
    ranks = (  # the config's own rank is not drawn where the space searches it
        {int(space.min_value("peft.lora_rank")), int(space.max_value("peft.lora_rank"))}
        if "peft.lora_rank" in keys
        else {conf.peft.lora_rank}
    )
    frozen = 0 if "peft.frozen_layers" in keys else conf.peft.frozen_layers
    batch = conf.train.batch_size or max(AUTO_BATCH_SIZES)  # null: at most the largest auto size
    if "train.batch_size" in keys:
        batch = max(batch, int(space.max_value("train.batch_size")))
    # a searched precision may draw fp32, which holds about twice the activations
    searched_precision = "train.mixed_precision" in keys
    dtype = "bfloat16" if conf.train.mixed_precision and not searched_precision else "float32"
    estimates = [
        estimate_memory(
            shape,
            num_labels=num_labels,
            lora_rank=rank,
            frozen_layers=frozen,
            batch_size=batch,
            seq_len=conf.model.max_length,
            dtype=dtype,
            target_modules=conf.peft.target_modules,
        )
        for rank in sorted(ranks)
    ]
    return max(estimates, key=lambda m: m.total)
