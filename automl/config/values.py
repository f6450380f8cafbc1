"""Value rules the schema's types cannot express (ranges, choices, required-when), one line
naming the key when a rule is broken.
"""

from __future__ import annotations

from automl.config.schema import Config, ConfigError


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
