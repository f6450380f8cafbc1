"""Value rules the schema's types cannot express (ranges, choices, required-when), one line
naming the key when a rule is broken.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from pathlib import Path

from automl.config.schema import (
    AUTO_BATCH_SIZES,
    Config,
    ConfigError,
    DataConfig,
    ModelConfig,
    PeftConfig,
    PrunerConfig,
    ResourcesConfig,
    SamplerConfig,
    SweepConfig,
    TrainConfig,
    metric_mode,
)


def _check(ok: bool, key: str, problem: str) -> None:
    if not ok:
        raise ConfigError(f"config: {key}: {problem}")


# What a sweep may optimise: every one is computed, logged and reported each epoch anyway.
OBJECTIVES = ("val_accuracy", "val_f1", "val_balanced_accuracy", "val_loss")

CHOICES = {
    "model.source": ("package", "pretrained", "tiny"),
    "model.tiny_arch": ("bert", "gpt2"),
    "data.source": ("chatterbot_topics", "csv", "jsonl", "hf"),
    "data.quality": ("warn", "fail", "off"),
    "train.device": ("auto", "cpu", "cuda"),
    "train.batching": ("auto", "stratified", "buckets", "pools"),
    "train.bucket_edges": ("auto", "pow2", "fine"),
    "train.class_weights": ("none", "sqrt", "balanced"),
    "train.sampling": ("natural", "sqrt", "balanced"),
    "sweep.mode": ("max", "min", "auto"),  # auto is settled from the metric in to_config
    "sweep.export_rule": ("best", "smallest_within"),
    "sweep.second_objective": ("none", "trainable_params"),
    "sampler.name": ("tpe", "random", "cmaes", "gp", "qmc"),
    "pruner.name": ("overfit", "asha", "overfit_asha", "none"),
    "pruner.signal": ("metric", "val_loss", "both"),
}


def validate(conf: Config, recorded: bool = False, swept_groups: Collection[str] = ()) -> None:
    """Reject values the schema's types cannot catch, naming the key: one rule set a section.
    A setting its source does not read is refused unless the config was recorded (read back
    as it ran) or a multirun sweeps that group (its other jobs read it)."""
    _check_choices(conf)
    for key, problem in unread_settings(conf).items():  # checked before the rest of its section
        lenient = recorded or key.split(".")[0] in swept_groups
        _check(lenient, key, problem)
    _check_model(conf.model)
    _check_data(conf.data)
    if not recorded:  # a sweep recorded before this rule still reads back
        _check_sources_differ(conf.data)
    _check_train(conf.train)
    _check_peft(conf.peft)
    _check_resources(conf.resources, recorded)
    _check(  # 0 started Ray with no CPU: no trial could run, found after the data was tokenized
        recorded
        or conf.ray.address not in (None, "", "local")  # a running cluster's own CPUs
        or conf.ray.num_cpus is None
        or conf.ray.num_cpus >= 1,
        "ray.num_cpus",
        f"must be >= 1 (null: this machine's CPUs), got {conf.ray.num_cpus}",
    )
    if not recorded:  # found only once the data was tokenized, a dry run let it pass
        address_problem = ray_address_problem(conf.ray.address)
        _check(address_problem is None, "ray.address", str(address_problem))
    _check_sweep(conf.sweep, recorded)
    if conf.tracking.enabled and not recorded:  # registered after the whole sweep has run
        name = conf.tracking.registered_model or conf.sweep.name
        key = "tracking.registered_model" if conf.tracking.registered_model else "sweep.name"
        _check(
            bool(name.strip())
            and not set(name) & set("/:")
            and name != "."
            and not name.startswith(".."),
            key,
            f"{name!r} cannot name an MLflow registered model (no '/' or ':', not '.' or "
            "'..'-prefixed); set tracking.registered_model",
        )
        alias = conf.tracking.alias
        _check(
            bool(re.fullmatch(r"[\w-]{1,200}", alias))  # 255 in MLflow; a tag names it too
            and alias.lower() != "latest"
            and not re.fullmatch(r"[vV]\d+", alias),
            "tracking.alias",
            f"{alias!r} cannot name an MLflow alias (up to 200 letters, digits, '_' and '-'; "
            "not 'latest' or v<number>, which MLflow reserves)",
        )
    _check_pruner(conf.pruner)
    if not recorded:  # passed before 2026-12-06: a recorded config reads back as it ran
        _check_finite(conf)
        _check(  # (Optuna took a negative count as 0)
            conf.sampler.n_startup_trials >= 0,
            "sampler.n_startup_trials",
            f"must be >= 0 (random trials before the sampler models the space), got "
            f"{conf.sampler.n_startup_trials}",
        )
    for key, seed in (("data.seed", conf.data.seed), ("train.seed", conf.train.seed),
                      ("sampler.seed", conf.sampler.seed)):  # fmt: skip
        _check(
            0 <= seed < 2**32, key, f"must be between 0 and 2**32 - 1 (numpy's seeds), got {seed}"
        )


def ray_address_problem(address: str | None) -> str | None:
    """What is wrong with `ray.address` as written (no network asked): HOST:PORT, `auto`, or
    empty/`local` for a private cluster."""
    if address in (None, "", "local", "auto"):
        return None
    if address.startswith("ray://"):  # untested here, and it needs the ray[client] extra
        return (
            f"{address}: Ray Client (ray://) is not supported, as the export and checkpoint "
            "clean-up read the trials' folders from the driver; run the sweep on a cluster "
            "node with HEAD_IP:6379, or hand it over with `ray job submit` (README, Clusters)"
        )
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return f"{address!r} is not HOST:PORT or auto"
    if not 0 < int(port) < 65536:
        return f"{address}: port {port} is not between 1 and 65535"
    return None


def _check_finite(conf: Config) -> None:
    """`inf` passes `> 0`, and every trial then diverged or was pruned after its compute."""
    t = conf.train
    for key, value in (
        ("train.learning_rate", t.learning_rate),
        ("train.weight_decay", t.weight_decay),
        ("peft.lora_alpha", conf.peft.lora_alpha),
        ("pruner.min_delta", conf.pruner.min_delta),
        ("pruner.asha_reduction_factor", conf.pruner.asha_reduction_factor),  # stopped all but one
        ("sweep.time_budget_s", conf.sweep.time_budget_s),
        # the smallest GPU share whatever a trial needs; a trial no node can place
        ("resources.gpu_memory_gb", conf.resources.gpu_memory_gb),
        ("resources.cpus_per_trial", conf.resources.cpus_per_trial),
    ):
        _check(value is None or math.isfinite(value), key, f"must be finite, got {value}")


def _check_choices(conf: Config) -> None:
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        value = getattr(getattr(conf, section), name)
        # YAML 1.1 reads off/on/no/yes as booleans; the str field then holds 'False'/'True'
        hint = " (YAML read a bare off/on/no/yes as a boolean: quote it, 'off')"
        _check(
            value in allowed,
            key,
            f"{value!r} is not one of {', '.join(allowed)}"
            + (hint if value in ("False", "True") else ""),
        )


def check_model_values(m: ModelConfig) -> None:
    """The model section's rules alone, for a search space's model choice (a conf/model file):
    as `model=NAME` on the command line is checked, not by every trial that draws it."""
    for key, allowed in CHOICES.items():
        section, name = key.split(".")
        if section == "model":
            value = getattr(m, name)
            _check(value in allowed, key, f"{value!r} is not one of {', '.join(allowed)}")
    for key, problem in _unread_model_settings(m).items():
        _check(False, key, problem)
    _check_model(m)


def _unread_model_settings(m: ModelConfig) -> dict[str, str]:
    out = {}
    if m.source != "pretrained" and m.name_or_path:
        out["model.name_or_path"] = (
            f"is not read when model.source={m.source}; add model=hf to fine-tune {m.name_or_path}"
        )
    if m.source != "tiny":
        for name in _TINY_KEYS:
            if getattr(m, name) != getattr(ModelConfig, name):  # set to something of its own
                out[f"model.{name}"] = (
                    f"is not read when model.source={m.source}; add model=tiny_bert (or "
                    "model=tiny_gpt2) for a small model built from a config"
                )
    return out


_TINY_KEYS = ("tiny_arch", "tiny_layers", "tiny_hidden", "tiny_heads", "tiny_intermediate")


def unread_settings(conf: Config) -> dict[str, str]:
    """Settings the chosen source does not read, by key, each with the line refusing it: your
    own data or model named without its group (`data.path=my.csv` without `data=csv`,
    `model.name_or_path=...` without `model=hf`) would train on the embedded corpus or model."""
    out = _unread_model_settings(conf.model)
    d = conf.data
    for name in _FILE_KEYS if d.source not in ("csv", "jsonl") else ():
        value = getattr(d, name)
        if value:
            out[f"data.{name}"] = f"is not read when data.source={d.source}; {_fix(d, name, value)}"
    for name in _HF_KEYS if d.source != "hf" else ():
        if getattr(d, name) != getattr(DataConfig, name):  # set to something of its own
            out[f"data.{name}"] = f"is not read when data.source={d.source}; add data=hf"
    if d.source != "chatterbot_topics" and d.language != DataConfig.language:
        out["data.language"] = (
            f"is not read when data.source={d.source}; it picks the embedded corpus's language"
        )
    return out


# The overfit rule's settings and ASHA's (search/stopping.py), by the pruners that read them
_OVERFIT_KEYS = ("grace_period", "patience", "min_delta", "signal", "max_gap")
_ASHA_KEYS = ("asha_grace_period", "asha_reduction_factor")


def unread_search_settings(conf: Config) -> list[str]:
    """Warnings for pruner and sampler settings the chosen ones never read: `pruner=asha
    pruner.grace_period=3` (ASHA's is `asha_grace_period`) or `sampler=random
    sampler.n_startup_trials=20` changed nothing, without a word. Warned, not refused: an
    experiment's settings for its own pruner stay when the command line picks another
    (`experiment=overfit pruner=none`), and a multirun's jobs share them."""
    out = []
    pr, sm = conf.pruner, conf.sampler
    unread = (() if "overfit" in pr.name else _OVERFIT_KEYS) + (
        () if "asha" in pr.name else _ASHA_KEYS
    )
    for name in unread:
        value = getattr(pr, name)
        if value != getattr(PrunerConfig, name):
            asha = name == "grace_period" and pr.name == "asha"
            hint = " (ASHA's is pruner.asha_grace_period)" if asha else ""
            out.append(f"pruner.{name}={value} is not read when pruner.name={pr.name}{hint}")
    if sm.name in ("random", "qmc") and sm.n_startup_trials != SamplerConfig.n_startup_trials:
        out.append(
            f"sampler.n_startup_trials={sm.n_startup_trials} is not read when "
            f"sampler.name={sm.name}: every trial is drawn that way"
        )
    return out


def unread_run_settings(conf: Config, *, lora_possible: bool, sweep: bool = True) -> list[str]:
    """Warnings for settings this run never reads, set to values of their own: a split's share
    where a file or a named split gives that split; LoRA's settings where no trial gets
    adapters (`lora_possible`: what the plan found, or rank > 0 for one training); a sweep's
    export tolerance under the `best` rule, and its warm start's top k without a warm start.
    Warned, not refused, as `unread_search_settings`: an experiment's values stay when the
    command line picks another path."""
    d, s, p = conf.data, conf.sweep, conf.peft
    files = d.source in ("csv", "jsonl")
    given = {  # the setting -> what gives its split instead (the embedded corpus: nothing)
        "val_fraction": d.val_path if files else d.hf_val_split if d.source == "hf" else None,
        "test_fraction": d.test_path if files else d.hf_test_split if d.source == "hf" else None,
    }
    out = [
        f"data.{name}={getattr(d, name)} is not read: the split comes from {source!r}"
        for name, source in given.items()
        if source and getattr(d, name) != getattr(DataConfig, name)
    ]
    if not lora_possible:
        out += [
            f"peft.{name}={getattr(p, name)} is not read: no trial gets LoRA adapters "
            "(peft.lora_rank 0, or every block frozen)"
            for name in ("lora_alpha", "lora_dropout", "target_modules")
            if getattr(p, name) != getattr(PeftConfig, name)
        ]
    if not sweep:  # automl-train reads no sweep.* setting but the metric
        return out
    if s.export_rule == "best" and s.export_tolerance != SweepConfig.export_tolerance:
        out.append(
            f"sweep.export_tolerance={s.export_tolerance} is not read when "
            "sweep.export_rule=best (sweep.export_rule=smallest_within reads it)"
        )
    if not s.warm_start and s.warm_start_top_k != SweepConfig.warm_start_top_k:
        out.append(
            f"sweep.warm_start_top_k={s.warm_start_top_k} is not read without sweep.warm_start"
        )
    return out


def _check_model(m: ModelConfig) -> None:
    if m.source == "pretrained":
        _check(
            bool(m.name_or_path), "model.name_or_path", "is required when model.source=pretrained"
        )
    _check(m.max_length >= 8, "model.max_length", f"must be >= 8, got {m.max_length}")
    if m.source == "tiny":  # transformers refused these only when building, in every trial
        for key, value in (
            ("model.tiny_layers", m.tiny_layers),
            ("model.tiny_hidden", m.tiny_hidden),
            ("model.tiny_heads", m.tiny_heads),
            ("model.tiny_intermediate", m.tiny_intermediate),
        ):
            _check(value >= 1, key, f"must be >= 1, got {value}")
        _check(
            m.tiny_hidden % m.tiny_heads == 0,
            "model.tiny_hidden",
            f"must be a multiple of model.tiny_heads ({m.tiny_hidden} % {m.tiny_heads} != 0)",
        )


def _check_data(d: DataConfig) -> None:
    if d.source in ("csv", "jsonl"):
        _check(bool(d.path), "data.path", f"is required when data.source={d.source}")
    if d.source == "hf":
        _check(bool(d.hf_name), "data.hf_name", "is required when data.source=hf")
    if d.source in ("csv", "jsonl", "hf"):  # the column the model reads must not be its answer
        for key, column in (("data.text_column", d.text_column),
                            ("data.label_column", d.label_column)):  # fmt: skip
            _check(bool(column.strip()), key, "must name a column, got an empty name")
        _check(
            d.text_column.strip() != d.label_column.strip(),
            "data.label_column",
            f"names the same column as data.text_column ({d.label_column!r}): the model would "
            "read its own label",
        )
    _check(0 < d.val_fraction < 1, "data.val_fraction", f"must be in (0, 1), got {d.val_fraction}")
    _check(
        0 <= d.test_fraction < 1, "data.test_fraction", f"must be in [0, 1), got {d.test_fraction}"
    )
    _check(
        d.val_fraction + d.test_fraction < 1,
        "data.test_fraction",
        f"val_fraction + test_fraction must be < 1, got {d.val_fraction} + {d.test_fraction}",
    )
    _check(
        d.min_class_examples >= 1,
        "data.min_class_examples",
        f"must be >= 1, got {d.min_class_examples}",
    )
    if d.max_examples is not None:
        _check(
            d.max_examples >= 4,
            "data.max_examples",
            f"must be >= 4 (null: no cap), got {d.max_examples}",
        )


def _check_sources_differ(d: DataConfig) -> None:
    """Validation or test read from the training rows (or test from validation) would select
    on, or report, rows the model trained on or was chosen by: one line, not a score that
    only looks held out."""
    files = d.source in ("csv", "jsonl")
    if not files and d.source != "hf":
        return
    keys = _FILE_KEYS if files else _HF_KEYS[2:]  # training, validation, test
    roles = dict(zip(keys, ("training", "validation", "test"), strict=True))
    given = {k: str(Path(v).resolve()) if files else v for k in keys if (v := getattr(d, k))}
    why = {"validation": "trials would be chosen on rows they trained on",
           "test": "the test score would come from rows"}  # fmt: skip
    for later, value in list(given.items())[1:]:
        earlier = next(k for k, v in given.items() if v == value)
        seen = "the model trained on" if roles[earlier] == "training" else "that chose the model"
        key = f"data.{later}"  # the table of rules (tests) covers these by the cases above
        _check(
            earlier == later,
            key,
            f"reads the same {'file' if files else 'split'} as data.{earlier} "
            f"({getattr(d, later)}): "
            + (why["validation"] if roles[later] == "validation" else f"{why['test']} {seen}"),
        )


# The settings only one kind of data source reads.
_FILE_KEYS = ("path", "val_path", "test_path")  # csv, jsonl
_HF_KEYS = ("hf_name", "hf_config", "hf_train_split", "hf_val_split", "hf_test_split")  # hf
FILE_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".json": "jsonl",
                 ".ndjson": "jsonl"}  # fmt: skip


def _fix(d: DataConfig, name: str, value: str) -> str:
    """What reads `data.<name>=<value>` instead: the file's group, or Hugging Face's setting."""
    fmt = FILE_FORMATS.get(Path(value).suffix.lower())
    if d.source == "hf" and name != "path":  # a dataset's own splits
        return f"data=hf reads its {name[:-5]} split from data.hf_{name[:-5]}_split"
    if fmt:
        return f"add data={fmt}"
    if name == "path" and d.source == "hf":
        return "a folder saved with save_to_disk goes in data.hf_name"
    if name == "path" and Path(value).is_dir():
        return f"a folder saved with save_to_disk: use data=hf data.hf_name={value}"
    return "add data=csv or data=jsonl"


def _check_train(t: TrainConfig) -> None:
    _check(t.learning_rate > 0, "train.learning_rate", f"must be > 0, got {t.learning_rate}")
    _check(t.epochs >= 1, "train.epochs", f"must be >= 1, got {t.epochs}")
    if t.batch_size is not None:
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
    # the smallest step the data can choose when batch_size is null (AUTO_BATCH_SIZES)
    step = (t.batch_size or min(AUTO_BATCH_SIZES)) * t.grad_accum_steps
    groups = t.length_groups_per_step
    _check(
        groups >= 1 and step % groups == 0,
        "train.length_groups_per_step",
        f"must be >= 1 and divide the {step} examples of an optimizer step, got {groups}",
    )
    if t.num_threads is not None:
        _check(t.num_threads >= 1, "train.num_threads", f"must be >= 1, got {t.num_threads}")


def _check_peft(p: PeftConfig) -> None:
    _check(
        p.lora_rank >= 0,
        "peft.lora_rank",
        f"must be >= 0 (0 = full fine-tuning), got {p.lora_rank}",
    )
    _check(p.frozen_layers >= 0, "peft.frozen_layers", f"must be >= 0, got {p.frozen_layers}")
    _check(0 <= p.lora_dropout < 1, "peft.lora_dropout", f"must be in [0, 1), got {p.lora_dropout}")
    if p.lora_alpha is not None:
        _check(p.lora_alpha > 0, "peft.lora_alpha", f"must be > 0, got {p.lora_alpha}")


def _check_resources(r: ResourcesConfig, recorded: bool = False) -> None:
    _check(r.cpus_per_trial > 0, "resources.cpus_per_trial", f"must be > 0, got {r.cpus_per_trial}")
    if r.gpu_memory_gb is not None:
        _check(
            r.gpu_memory_gb > 0,
            "resources.gpu_memory_gb",
            f"must be > 0 (null: read from the GPU), got {r.gpu_memory_gb}",
        )
    gpus = r.gpus_per_trial
    if gpus != "auto":
        try:  # not `true` (float(True) is a whole GPU): YAML reads a bare yes/on so
            gpus_f = -1.0 if gpus is True and not recorded else float(gpus)
        except (TypeError, ValueError):
            gpus_f = -1.0
        _check(
            0 <= gpus_f <= 1,
            "resources.gpus_per_trial",
            f"must be 'auto' or a fraction in [0, 1] (a trial trains on one GPU: no data "
            f"parallelism), got {gpus!r}",
        )


def _check_sweep(s: SweepConfig, recorded: bool) -> None:
    _check(
        bool(s.name) and "/" not in s.name, "sweep.name", f"must be a folder's name, got {s.name!r}"
    )
    if not recorded:  # a sweep recorded before these rules still exports and reproduces
        _check(
            s.name not in (".", "..") and not set(s.name) & set("\\'\""),
            "sweep.name",
            f"must be a folder's name without quotes or backslashes (MLflow's search filters "
            f"quote it), got {s.name!r}",
        )
    _check(s.num_samples >= 1, "sweep.num_samples", f"must be >= 1, got {s.num_samples}")
    _check(s.max_concurrent >= 1, "sweep.max_concurrent", f"must be >= 1, got {s.max_concurrent}")
    _check(s.max_failures >= 0, "sweep.max_failures", f"must be >= 0, got {s.max_failures}")
    k, tol = s.warm_start_top_k, s.export_tolerance
    _check(k >= 1, "sweep.warm_start_top_k", f"must be >= 1, got {k}")
    _check(tol >= 0, "sweep.export_tolerance", f"must be >= 0, got {tol}")
    if s.time_budget_s is not None:
        _check(s.time_budget_s > 0, "sweep.time_budget_s", f"must be > 0, got {s.time_budget_s}")
    _check(
        s.metric in OBJECTIVES,
        "sweep.metric",
        f"{s.metric!r} is not one of {', '.join(OBJECTIVES)}",
    )
    right = metric_mode(s.metric)
    _check(
        recorded or s.mode == right,  # a recorded config (an export, a trial's) is read as is
        "sweep.mode",
        f"{s.mode} would pick the {'highest' if s.mode == 'max' else 'lowest'} {s.metric}; "
        f"use {right}, or leave sweep.mode out (auto)",
    )


def _check_pruner(pr: PrunerConfig) -> None:
    _check(pr.grace_period >= 0, "pruner.grace_period", f"must be >= 0, got {pr.grace_period}")
    _check(pr.patience >= 1, "pruner.patience", f"must be >= 1, got {pr.patience}")
    _check(pr.asha_reduction_factor > 1, "pruner.asha_reduction_factor", "must be > 1")
    if "asha" in pr.name:  # read only with ASHA (a recorded config without it reads back)
        _check(
            pr.asha_grace_period >= 1,
            "pruner.asha_grace_period",
            f"must be >= 1 (epochs before ASHA may stop a trial), got {pr.asha_grace_period}",
        )
    _check(pr.min_delta >= 0, "pruner.min_delta", f"must be >= 0, got {pr.min_delta}")  # NaN too
    _check(
        pr.max_gap is None or pr.max_gap > 0,
        "pruner.max_gap",
        f"must be > 0 (or null: no gap rule), got {pr.max_gap}",
    )
