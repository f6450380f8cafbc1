"""The sweep's plan: every input checked and every decision made before any compute.

Model, search space, tracking URI, storage and resources are validated here, so a bad value is
one line naming the culprit and nothing is written; `sweep.dry_run=true` prints the plan.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from automl.config.paths import not_creatable, not_replaceable
from automl.config.resolve import as_dict
from automl.config.schema import SEARCH_SPACE_DIR, Config, ConfigError, ModelConfig
from automl.config.search_space import SearchSpace, load_search_space
from automl.config.space_params import MODEL_KEY
from automl.config.values import (
    check_model_values,
    unread_run_settings,
    unread_search_settings,
)
from automl.console import counted
from automl.data.load import check_hub_dataset
from automl.model.build import check_lora_targets
from automl.model.choices import model_config
from automl.model.load import (
    check_model,
    check_model_config,
    display_name,
    load_model_config,
    num_blocks_of,
)
from automl.provenance import redact
from automl.search.connect import check_reachable, connection_error
from automl.search.identity import (
    MODEL_CHOICE_PREFIX,
    base_files,
    check_same_start,
    started_with,
)
from automl.search.objectives import check_objectives
from automl.search.resources import (
    GIB,
    NoMemoryFormula,
    memory_fraction,
    pick_gpu_share,
    sweep_estimate,
)
from automl.search.samplers import branch_warning, check_sampler
from automl.search.state import (
    STATE_FILE,
    SweepState,
    experiment_name,
    holds_output,
    not_a_sweep_folder,
    not_ray_experiments,
    own_storage,
    restorable,
    round_clash,
    settings_kept,
    state_text,
)
from automl.search.warm_start import WarmStart, load_warm_start
from automl.tracking.uri import (
    check_registry,
    check_store,
    file_store_path,
    sqlite_file,
    tracking_uri,
)
from automl.train.device import pick_device

log = logging.getLogger("automl.sweep")


@dataclass
class SweepPlan:
    """Everything decided and validated before any compute."""

    conf: Config
    space: SearchSpace
    num_blocks: int
    out_dir: Path
    storage: Path
    tracking_uri: str | None
    gpus_per_trial: float
    max_epochs: int
    warm_start: WarmStart | None = None  # an earlier sweep's best configurations, run first
    # When the search space chooses the model: each choice's model config section, by choice.
    models: dict[str, ModelConfig] = field(default_factory=dict)
    # what decides what its trials learn (search/identity.py): a resume must keep it ...
    started_with: dict[str, Any] = field(default_factory=dict)
    # ... as the run it resumes recorded it ({} for a fresh sweep, or nothing to resume)
    resumes: dict[str, Any] = field(default_factory=dict)
    # A fresh sweep under the name of an earlier one: what of that one it replaces, said before
    # anything is deleted ("" where there is none, or this run resumes it).
    replaces: str = ""
    # sweep.resume=true with an earlier run to go on with (its MLflow parent run reopens); false
    # for a fresh sweep and for a resume with nothing to resume, which starts afresh
    continues: bool = False
    # Resuming an interrupted round: the settings Ray restores it with that this command
    # changes (they apply from the next round), or ""
    keeps: str = ""
    # the MLflow parent run the sweep state in out_dir recorded (search/state.py)
    recorded_run: str | None = None
    # whether the warm start's points run now: a sweep's first round only, before any trial
    warm_runs: bool = True
    # the state file the plan was made from, as it was read (None: none): stale once it differs
    state_seen: str | None = None
    # the project's commit as the sweep started (its MLflow tags, the export's provenance):
    # asked once by run_sweep, past a dry run (git status may take seconds)
    commit: str = ""

    @property
    def trial_device(self) -> str:
        """Where trials train: on a GPU only with a share of one, and unless told the CPU."""
        return "cuda" if self.gpus_per_trial and self.conf.train.device != "cpu" else "cpu"

    def describe(self) -> str:
        s = self.conf.sweep
        lines = [
            f"sweep {s.name}: {counted(s.num_samples, 'trial')}, at most {s.max_concurrent} at once"
            + (f", time budget {s.time_budget_s:.0f} s" if s.time_budget_s else ""),
            f"  objective: {s.mode} {s.metric} (each trial scored by its best epoch)"
            + (f", then min {s.second_objective}" if s.searches_cost else ""),
            f"  model: {self._models()}; data: {self.conf.data.source}",
            f"  sampler: {self.conf.sampler.name} (seed {self.conf.sampler.seed}); "
            f"pruner: {self.conf.pruner.name}",
            f"  resources per trial: {self.conf.resources.cpus_per_trial} CPU, "
            f"{self.gpus_per_trial} GPU",
            f"  search space {self.space.path}:",
            *(f"    {p.key}: {describe_param(p, self.space.models)}" for p in self.space.params),
            f"  results: {self.out_dir} (Ray: {self.storage}); MLflow: "
            + (redact(self.tracking_uri) if self.tracking_uri else "off")
            + _new_store(self.tracking_uri),
            *(
                [f"  {self.warm_start.describe()}" + ("" if self.warm_runs else NOT_AGAIN)]
                if self.warm_start
                else []
            ),
            *([f"  replaces: {self.replaces}"] if self.replaces else []),
            *([f"  keeps: {self.keeps}"] if self.keeps else []),
            *(  # a mistyped sweep.name or output folder re-ran everything without a word
                [f"  resume: nothing to resume in {self.out_dir}: starts afresh"]
                if s.resume and not self.continues
                else []
            ),
        ]
        return "\n".join(lines)

    def _models(self) -> str:
        if not self.models:
            return f"{display_name(self.conf.model)} ({counted(self.num_blocks, 'block')})"
        return "searched over " + ", ".join(self.models)


NOT_AGAIN = " (resumed: only those no trial has run yet still run)"


def warm_start_of(conf: Config, space: SearchSpace, runs: bool) -> WarmStart | None:
    """The warm start's points (`sweep.warm_start`, the space's `first_trials`). On a resume
    past their start (Ray's restored searcher, or Optuna's study for an extension, holds those
    not run yet) they only label the trials that run them: an earlier sweep deleted or moved
    since is no reason to refuse the resume."""
    if runs:
        return load_warm_start(conf, space)
    try:
        return load_warm_start(conf, space)
    except ConfigError as err:
        log.warning("%s; the warm-start points not run yet still run, labelled `sampler`", str(err))
        return None


def threads_warning(conf: Config) -> str | None:
    """`train.num_threads` above `resources.cpus_per_trial`: Ray packs trials by the CPUs they
    ask for, so trials side by side share fewer cores than their threads (slower, not wrong)."""
    threads, cpus = conf.train.num_threads, conf.resources.cpus_per_trial
    if threads and threads > cpus:
        return (
            f"train.num_threads={threads} is above resources.cpus_per_trial={cpus}: trials "
            f"placed side by side run more threads than cores; leave it unset (a trial's CPUs)"
        )
    return None


def searched_anyway(space: SearchSpace, given: Mapping[str, str]) -> list[str]:
    """Warnings for values the command line set on keys the search space samples: the trials
    take the space's values, which whoever typed `train.epochs=2` would not expect."""
    sampled = [
        f"{p.key}={given[p.key]} on the command line is ignored: search space {space.path.name} "
        f"samples it ({describe_param(p, space.models)}); use a space without {p.key} to fix it"
        for p in space.params
        if p.key in given
    ]
    return sampled + _model_settings_unread(space, given)


def _model_settings_unread(space: SearchSpace, given: Mapping[str, str]) -> list[str]:
    """A space that chooses the model: a choice of conf/model/ takes its file's settings, and
    a Hub id or folder only `max_length` and `trust_remote_code` of the command line's."""
    from automl.model.choices import CARRIED_KEYS, config_names

    if not space.models:
        return []
    names = set(config_names())
    named = [m for m in space.models if m in names]
    kept = tuple(f"model.{key}" for key in CARRIED_KEYS)
    lines = []
    for key, value in given.items():
        if not key.startswith("model."):
            continue
        unread = named if key in kept else list(space.models)
        if unread:
            lines.append(
                f"{key}={value} on the command line is ignored by model choices {unread} of "
                f"search space {space.path.name}: "
                + ("each takes its conf/model file's settings" if key in kept else
                   "a choice takes its conf/model file's settings, a Hub id or folder only "
                   "model.max_length and model.trust_remote_code")
            )  # fmt: skip
    return lines


def describe_param(p: Any, models: tuple[str, ...] = ()) -> str:
    if p.type == "categorical":
        text = f"one of {list(p.choices)}"
    else:
        text = f"{p.type} [{p.low}, {p.high}]" + (" log" if p.log else "")
    branches = [
        f"{b.cond_key}={b.cond_value}: " + describe_param(p.overridden(b)) for b in p.branches
    ]
    own = {str(b.cond_value) for b in p.branches if b.cond_key == MODEL_KEY}
    if models and own >= set(models) and len(own) == len(p.branches):
        return "; ".join(branches)  # every model has its own: the base range is never used
    return text + (f" ({'; '.join(branches)})" if branches else "")


def load_space(conf: Config) -> tuple[SearchSpace, int, Callable[[str], Any]]:
    """The search space checked against the model (and each model choice): with the model's
    block count and a loader of a choice's transformers config (each loaded once). Reads
    model configs, not weights: a multirun checks every job's space with it before the first
    job runs."""
    base = as_dict(conf)
    configs = {"": load_model_config(conf.model)}  # by search-space choice ("": the config's)
    num_blocks = check_model(conf, configs[""])

    def config_of(choice: str) -> Any:
        if choice not in configs:
            model = model_config(choice, base["model"])
            try:  # a conf/model file's own values, as `model=NAME` would be checked
                check_model_values(model)
            except ConfigError as err:
                raise ValueError(str(err).removeprefix("config: ")) from None
            configs[choice] = load_model_config(model)
            check_model_config(model, configs[choice])
        return configs[choice]

    space = load_search_space(
        conf.search_space, config=base, num_blocks=num_blocks, search_dir=SEARCH_SPACE_DIR,
        blocks_of=lambda choice: num_blocks_of(config_of(choice)),
    )  # fmt: skip
    return space, num_blocks, config_of


def _new_store(uri: str | None) -> str:
    """ " (a new store: no such file yet)" for a SQLite file not there: a mistyped path (or
    another working folder) gave a fresh store, the registry's models out of sight, unsaid."""
    path = sqlite_file(uri) if uri else None
    return f" (a new store: no file at {path.absolute()} yet)" if path and not path.exists() else ""


def plan_sweep(conf: Config) -> SweepPlan:
    """Validate the model, search space, tracking URI and resources; decide where output goes."""
    base = as_dict(conf)
    space, num_blocks, config_of = load_space(conf)
    models = {choice: model_config(choice, base["model"]) for choice in space.models}
    lora_possible = False
    for choice, model in models.items() or [("", conf.model)]:
        if _may_use_lora(space, conf, choice, num_blocks_of(config_of(choice))):
            lora_possible = True
            check_lora_targets(model, conf.peft, config_of(choice), _may_freeze(space, conf))
    check_sampler(conf.sampler)
    for note in (
        branch_warning(conf.sampler, space),
        gap_warning(conf, space.keys),
        threads_warning(conf),
        one_point_warning(conf, space),
        *unread_search_settings(conf),
        *unread_run_settings(conf, lora_possible=lora_possible),
    ):
        if note:
            log.warning(note)
    uri = tracking_uri(conf.tracking.uri) if conf.tracking.enabled else None
    if uri:
        check_store(uri)
        check_registry(uri)
        from automl.tracking.runs import check_experiment

        check_experiment(uri, conf.tracking.experiment or conf.sweep.name)
    out_dir = Path(conf.paths.output_dir).resolve() / conf.sweep.name
    check_objectives(conf, out_dir)
    storage = _storage_path(conf.paths.storage) if conf.paths.storage else out_dir / "ray"
    for key, folder in (("paths.output_dir", out_dir), ("paths.storage", storage)):
        problem = not_creatable(folder, folder=True)
        if problem:
            raise ConfigError(f"config: {key}: {problem}")
    problem = not_replaceable(out_dir / "best")  # the export replaces it: only an export may be
    if problem:
        raise ConfigError(f"config: paths.output_dir: {problem}")
    for model in models.values() or [conf.model]:
        _refuse_own_export_as_base(model, out_dir)
    state_seen = state_text(out_dir)  # read first: a change after it makes the plan stale
    before = _previous_state(out_dir)
    s = conf.sweep
    problem = not_a_sweep_folder(out_dir)
    if problem:
        raise ConfigError(f"config: paths.output_dir: {problem}")
    check_storage_free(conf, storage, out_dir, before)
    gpus = conf.resources.gpus_per_trial
    gpus_per_trial = 0.0 if gpus == "auto" else float(gpus)
    if gpus == "auto":  # the share of a GPU the largest trial needs; 0 if the cluster has none
        gpus_per_trial = _auto_gpu_share(conf, space, models)
    check_trial_device(conf.train.device, gpus_per_trial)
    check_share_holds_context(conf, gpus_per_trial)
    if conf.train.device == "cuda" and not cluster_address(conf):
        pick_device("cuda")  # a local cluster's GPUs are this machine's: none is one line here
    max_epochs = (
        int(space.max_value("train.epochs")) if "train.epochs" in space.keys else conf.train.epochs
    )
    identity = started_with(
        base, {p.key: p.as_dict() for p in space.params},
        {"sweep.metric": s.metric, "sweep.mode": s.mode},
        {name: asdict(m) for name, m in models.items()},
    )  # fmt: skip
    identity |= base_files(
        {f"{MODEL_CHOICE_PREFIX}{n}": asdict(m) for n, m in models.items()}
        or {"model": base["model"]}
    )
    # "new": killed before it began, so it starts afresh
    continues = s.resume and before.phase != "new"
    if continues and before.phase == "exporting" and s.num_samples > len(before.records):
        log.warning(  # only a finished sweep extends (SweepState.extends): the rise was dropped
            "sweep %s was stopped during its export: this run finishes that; run the command "
            "again to add trials up to sweep.num_samples=%d", s.name, s.num_samples,
        )  # fmt: skip
    resumes = before.started_with if continues else {}
    check_same_start(s.name, resumes, identity)
    # an interrupted round Ray saved goes on with its own settings (else it starts afresh)
    restored = continues and restorable(storage / experiment_name(s.name, before.round))
    # the points are enqueued before the first round's first trial; on a resume past that,
    # Ray's restored searcher (or Optuna's study, for an extension) holds those not run yet
    warm_runs = not continues or (before.round == 0 and not before.records and not restored)
    warm = warm_start_of(conf, space, warm_runs)
    started_in = Path(before.storage) if before.storage else storage
    interrupted = continues and before.phase == "running" and not restored
    if interrupted and restorable(started_in / experiment_name(s.name, before.round)):
        raise ConfigError(  # else the round started afresh under the new storage, its trials lost
            f"config: paths.storage: the interrupted round {before.round} of sweep {s.name} is "
            f"in {started_in}; resume it with the storage it started in (paths.storage="
            f"{started_in}), then change it for a later round, or move that folder away to "
            "start the round afresh"
        )
    plan = SweepPlan(
        conf, space, num_blocks, out_dir, storage, uri, gpus_per_trial, max_epochs, warm, models,
        identity, resumes, "" if s.resume else _replaced(before, out_dir), continues,
        settings_kept(before, conf) if restored else "", before.mlflow_run_id, warm_runs,
        state_seen,
    )  # fmt: skip
    import ray

    if not cluster_address(conf) and not ray.is_initialized():  # (a running one: init_ray)
        check_fits_here(plan, conf)
    return plan


def _auto_gpu_share(conf: Config, space: SearchSpace, models: dict[str, ModelConfig]) -> float:
    """The smallest share of a GPU the largest trial fits in; a whole GPU for a model the
    estimate has no formula for (DeBERTa, Llama, ...: refused before, even on a cluster
    without GPUs, where `auto` means 0)."""
    try:
        need = max(  # the config's own model only where the space does not choose one
            (sweep_estimate(replace(conf, model=m), space) for m in models.values()),
            key=lambda e: e.total,
        ) if models else sweep_estimate(conf, space)  # fmt: skip
    except NoMemoryFormula as err:
        log.warning(
            "gpus_per_trial=auto: %s -> a whole GPU a trial where the cluster has GPUs; set a "
            "number such as 0.5 to share one", err,
        )  # fmt: skip
        return 1.0
    memory_gb = gpu_memory_gb(conf)
    share = pick_gpu_share(need.total, memory_gb, cluster_gpus=1)
    log.info(
        "gpus_per_trial=auto: a trial needs ~%.2f GiB -> %s of a %.0f GiB GPU",
        need.gib, share, memory_gb,
    )  # fmt: skip
    return share


def one_point_warning(conf: Config, space: SearchSpace) -> str | None:
    """A space whose every parameter has one value (a range narrowed on the command line, a
    copied file with one choice each) ran `num_samples` trials of the same configuration with
    the same seed: the same model, trained that many times over."""

    def single(p: Any) -> bool:
        return len(p.choices or ()) == 1 if p.type == "categorical" else p.low == p.high

    if conf.sweep.num_samples <= 1 or not all(
        single(v) for p in space.params for v in p.variants()
    ):
        return None
    return (
        f"search_space: every parameter of {space.path.name} has one value: the sweep's "
        f"{conf.sweep.num_samples} trials would train the same configuration with the same "
        "seed; widen a range, or sweep.num_samples=1"
    )


def gap_warning(conf: Config, searched: Collection[str]) -> str | None:
    """`pruner.max_gap` subtracts the epoch's training loss, taken on the class mix
    `train.sampling` draws and weighted by `train.class_weights`, from the validation loss on
    the data's own mix: on the default sqrt mix the gap is offset whatever the overfitting
    (a model that learnt no more than the class prior shows a gap below zero)."""
    if conf.pruner.max_gap is None:
        return None
    t = conf.train
    mixed = [
        f"{key} searched" if key in searched else f"{key}={value}"
        for key, value, plain in (
            ("train.sampling", t.sampling, "natural"),
            ("train.class_weights", t.class_weights, "none"),
        )
        if value != plain or key in searched
    ]
    if not mixed:
        return None
    return (
        f"pruner.max_gap: with {' and '.join(mixed)} the training loss is taken on another class "
        "mix than the validation loss, so their gap is offset whatever the overfitting; "
        "train.sampling=natural and train.class_weights=none make it measure overfitting"
    )


def _refuse_own_export_as_base(model: Any, out_dir: Path) -> None:
    """Fine-tuning `outputs/default/best` again under the same sweep name: its export replaced
    the base model it was built on, so a re-export or a reproduction rebuilt it on the new
    weights (a silently wrong model, and a provenance hash naming them)."""
    if model.source != "pretrained" or not model.name_or_path:
        return
    base = Path(model.name_or_path).expanduser().resolve()
    if base == out_dir or out_dir in base.parents:
        raise ConfigError(
            f"config: model.name_or_path: {model.name_or_path} is inside this sweep's own "
            f"folder {out_dir}, which it replaces: copy the model elsewhere, or set sweep.name"
        )


def _replaced(before: SweepState, out_dir: Path) -> str:
    """What a fresh sweep replaces of an earlier run under its name: its results at once, its
    export when this one exports (MLflow keeps the runs and registered versions)."""
    export = out_dir / "best"
    when_exported = f"its export {export} when this sweep exports" if export.is_dir() else ""
    if before.phase == "new":  # killed at once (it had removed the rest already), or no state
        if not when_exported:
            return ""
        if not (out_dir / STATE_FILE).is_file():
            return f"the export already at {export} when this sweep exports"
        return f"the earlier sweep of this name (killed before its first trial): {when_exported}"
    trials = counted(len(before.records), "trial")
    how = {
        "finished": f"{trials}, finished",
        "exporting": f"{trials}, stopped while exporting",
    }.get(before.phase, "interrupted" + (f", {trials} of earlier rounds" if before.records else ""))
    return (
        f"the earlier sweep of this name ({how}): its Optuna study and Ray results now"
        + (f", {when_exported}" if when_exported else "")
        + "; sweep.resume=true would continue it instead"
    )


def dry_run_checks(plan: SweepPlan) -> list[str]:
    """What a sweep checks only once it starts, checked without starting it: the data are read
    and tokenized as a run does (file, columns, labels, splits, the data-quality report and
    `data.quality=fail`; a Hub dataset is not downloaded) and a local cluster's resources are
    this machine's. A remote cluster is not contacted. Returns the plan's extra lines."""
    from automl.data.prepare import prepare_data_for_models

    conf = plan.conf
    if conf.data.source == "hf" and not Path(conf.data.hf_name).is_dir():
        check_hub_dataset(conf.data)  # as the run would say it
        lines = [f"  data: Hub dataset {conf.data.hf_name!r}: not downloaded in a dry run"]
    else:
        # a bad file, column or label set, or a quality problem under `fail`: one line, as in a run
        data, _ = prepare_data_for_models(conf, plan.models)
        test = len(data.test) if data.test is not None else 0
        line = (
            f"  data read: {len(data.train)} train / {len(data.val)} val / {test} test, "
            f"{len(data.label_names)} classes"
        )
        if data.quality:  # absent with data.quality=off
            q = data.quality
            line += f"; data quality: {len(q['problems'])} problems, {len(q['warnings'])} warnings"
        lines = [line]
    if cluster_address(conf):
        return [*lines, f"  cluster {conf.ray.address}: not contacted in a dry run"]
    return [*lines, f"  cluster: {check_fits_here(plan, conf)}: a trial fits"]


def check_fits_here(plan: SweepPlan, conf: Config) -> str:
    """A local cluster is this machine: a trial asking for more than it has is refused before
    the data is read and Ray starts (as init_ray would, after both). Its resources, in words."""
    cpus, gpus = local_resources(conf.ray.num_cpus)
    settle_auto_gpus(plan, conf, gpus)  # as init_ray does
    check_fits([{"CPU": cpus, "GPU": float(gpus)}], conf.resources.cpus_per_trial,
               plan.gpus_per_trial, where="this machine")  # fmt: skip
    return f"this machine ({cpus:g} CPUs, {gpus} GPUs)"


def local_resources(num_cpus: int | None) -> tuple[float, int]:
    """This machine's CPUs and GPUs as a local Ray instance counts them: a container's CPU
    limit, not the host's cores; the GPUs NVML sees, within CUDA_VISIBLE_DEVICES, which a
    CPU-only torch build would report as none. Ray's own helpers (private: no public API
    says what `ray.init` would find without starting it)."""
    from ray._private import accelerators
    from ray._private.utils import get_num_cpus

    cpus = float(num_cpus) if num_cpus is not None else float(get_num_cpus())
    manager = accelerators.get_accelerator_manager_for_resource("GPU")
    if manager is None:
        return cpus, 0
    gpus = manager.get_current_node_num_accelerators()
    visible = manager.get_current_process_visible_accelerator_ids()
    return cpus, gpus if visible is None else min(gpus, len(visible))


DEFAULT_GPU_MEMORY_GB = 16.0  # a cluster's GPUs, unless resources.gpu_memory_gb says


def check_share_holds_context(conf: Config, gpus_per_trial: float) -> None:
    """A share too small for the CUDA context (0.02 of a 16 GiB GPU) failed every trial as it
    capped its memory, after the data was tokenized. Judged where the GPU's memory is known:
    `resources.gpu_memory_gb`, or this machine's GPU for a local cluster."""
    if not 0 < gpus_per_trial < 1:
        return
    try:
        memory = known_gpu_memory_gb(conf)
    except ConfigError:  # MIG slices: a slice's memory is not known, nothing to judge by
        return
    if memory is None:
        return
    try:
        memory_fraction(gpus_per_trial, int(memory * GIB))
    except ValueError as err:
        raise ConfigError(f"config: {err}") from None


def gpu_memory_gb(conf: Config) -> float:
    """The GPU memory `gpus_per_trial=auto` divides: `resources.gpu_memory_gb`, else for a
    local instance the smallest GPU this machine shows (a share sized for 16 GiB would not
    fit a smaller card, and would pack too few trials on an 80 GiB one), else 16 GiB."""
    found = known_gpu_memory_gb(conf)
    return DEFAULT_GPU_MEMORY_GB if found is None else found


def known_gpu_memory_gb(conf: Config) -> float | None:
    """`resources.gpu_memory_gb`, else for a local instance this machine's smallest GPU; None
    where neither says (a cluster's GPUs are not this machine's)."""
    if conf.resources.gpu_memory_gb is not None:
        return conf.resources.gpu_memory_gb
    return None if cluster_address(conf) else local_gpu_memory_gb()


def local_gpu_memory_gb() -> float | None:
    """The smallest memory (GiB) of the GPUs this process may use, read through NVML (Ray's
    copy of pynvml): the driver must not start CUDA, whose context would hold GPU memory for
    the whole sweep. None without an NVIDIA driver or a visible GPU; a card split into MIG
    slices is refused (NVML reports the whole card, a trial gets one slice).
    `CUDA_VISIBLE_DEVICES` numbers are CUDA's order, NVML's only under
    `CUDA_DEVICE_ORDER=PCI_BUS_ID`; else every GPU counts."""
    try:
        import ray._private.thirdparty.pynvml as pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    try:
        return _smallest_visible_gpu(pynvml)
    except pynvml.NVMLError as err:
        log.debug("GPU memory not read through NVML: %s", err)
        return None
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def _smallest_visible_gpu(pynvml: Any) -> float | None:
    count = pynvml.nvmlDeviceGetCount()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = None if visible is None else [g.strip() for g in visible.split(",") if g.strip()]
    if names is not None and not names:
        return None
    by_index = os.environ.get("CUDA_DEVICE_ORDER") == "PCI_BUS_ID"
    if names is None or (not by_index and all(n.isdigit() for n in names)):
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
    else:
        handles = [
            pynvml.nvmlDeviceGetHandleByIndex(int(n)) if n.isdigit()
            else pynvml.nvmlDeviceGetHandleByUUID(n)
            for n in names
        ]  # fmt: skip
    for handle in handles:
        mig = False
        with contextlib.suppress(pynvml.NVMLError):  # not supported: no MIG on this card
            mig = bool(pynvml.nvmlDeviceGetMigMode(handle)[0])
        if mig:  # NVML's total is the card's, CUDA sees one slice: a share of the card overfills it
            raise ConfigError(
                "config: resources.gpus_per_trial: auto cannot size a share of a GPU split into "
                "MIG slices; set resources.gpu_memory_gb to one slice's memory (GiB)"
            )
    totals = [pynvml.nvmlDeviceGetMemoryInfo(h).total for h in handles]
    return min(totals) / GIB if totals else None


def check_storage_free(
    conf: Config, storage: Path, out_dir: Path, before: SweepState | None = None
) -> None:
    """That the sweep's Ray experiment folders in `storage` are its own to delete or resume
    (`before`: the state in `out_dir`, read if not given). Asked when the sweep is planned and
    again once it holds `storage_lock`: a sweep of the name from another output folder may
    have started on a shared storage meanwhile."""
    s = conf.sweep
    before = _previous_state(out_dir) if before is None else before
    extending = s.resume and before.extends(s.num_samples)
    storage_key = "paths.storage" if conf.paths.storage else "paths.output_dir"
    # an unmarked experiment folder: the sweep's own inside its output folder, or where its
    # state is older than the marks (or a fresh start over one, killed, keeps its empty id);
    # another tool's in a storage of the user's
    unmarked_ours = own_storage(storage, out_dir) or (
        (out_dir / STATE_FILE).is_file() and not before.sweep_id
    )
    for key, problem in (
        (
            storage_key,
            not_ray_experiments(
                storage, s.name, before.round, before.sweep_id, unmarked_ours=unmarked_ours
            ),
        ),
        (storage_key, holds_output(storage, s.name, before.round + 1, out_dir)),
        ("sweep.name", round_clash(storage, s.name, before.round + 1 if extending else None)),
    ):
        if problem:
            raise ConfigError(f"config: {key}: {problem}")


def _previous_state(out_dir: Path) -> SweepState:
    """The state an earlier sweep of this name left (its rounds decide which Ray folders are
    its own); a damaged file is one line, not a traceback."""
    try:
        return SweepState.load(out_dir)
    except (ValueError, TypeError) as err:  # not JSON; not a state's keys
        raise ConfigError(
            f"config: paths.output_dir: {out_dir / STATE_FILE} is not a sweep's state ({err})"
        ) from None


def _may_use_lora(space: SearchSpace, conf: Config, choice: str, blocks: int) -> bool:
    """Whether a trial of this model (a search-space choice, or "" for the config's) can get
    LoRA adapters: a rank above 0 and a block left unfrozen (build_model skips LoRA else)."""
    given = {MODEL_KEY: choice} if choice else {}
    keys = space.keys
    rank = space.max_value("peft.lora_rank", given) if "peft.lora_rank" in keys else None
    if (conf.peft.lora_rank if rank is None else rank) <= 0:
        return False
    return "peft.frozen_layers" in keys or conf.peft.frozen_layers < blocks


def _may_freeze(space: SearchSpace, conf: Config) -> bool:
    """Whether a trial can freeze bottom blocks (peft.frozen_layers > 0)."""
    if "peft.frozen_layers" in space.keys:
        return space.max_value("peft.frozen_layers") > 0
    return conf.peft.frozen_layers > 0


def _storage_path(storage: str) -> Path:
    """A local folder or a file:// URI. Object stores (s3://, gs://) would pass the cluster check,
    but the checkpoint cleanup and automl-export read local folders, so they are refused here."""
    if storage.startswith("file:"):  # `file:///x`, `file://localhost/x`, `file:/x`, `%20`
        host, folder = urlparse(storage).netloc, file_store_path(storage)
        if host not in ("", "localhost"):  # `file://nfs-host/x` was read as the relative
            raise ConfigError(  # folder `nfs-host/x`
                f"config: paths.storage: {storage!r} names the host {host!r}: a file: URI "
                f"names a folder of this machine (file://{folder}); mount the share and use "
                "its folder"
            )
        if not folder.startswith("/"):
            raise ConfigError(f"config: paths.storage: {storage!r} names no folder")
        return Path(folder).resolve()
    if "://" in storage:
        raise ConfigError(
            f"config: paths.storage: {storage!r}: object-store URIs are not supported yet "
            "(checkpoints are read back from a folder); use a shared mount with "
            "paths.storage_shared=true"
        )
    return Path(storage).resolve()


def cluster_address(conf: Config) -> str | None:
    """The running cluster to join; None for a private local instance (empty, or Ray's own
    word for one, `local`)."""
    return None if conf.ray.address in (None, "", "local") else conf.ray.address


def init_ray(conf: Config, plan: SweepPlan | None = None) -> bool:
    """Connect to the configured cluster or start a local one; True only if we started it
    (a cluster we merely connected to keeps running after the sweep). Then check the cluster
    can run the sweep: shared storage on several nodes, GPUs for `gpus_per_trial=auto`."""
    import ray

    connected_here = not ray.is_initialized()
    address = cluster_address(conf)
    if connected_here:
        if address is not None:
            check_reachable(address)
        try:
            ray.init(
                # "local" always starts a new instance; None would join any cluster found running
                address=address or "local",
                num_cpus=conf.ray.num_cpus if address is None else None,
                include_dashboard=False if address is None else None,
                logging_level=logging.WARNING,
                log_to_driver=True,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError) as err:
            if address is None:
                raise
            raise connection_error(address, err) from None
    try:
        alive = [node for node in ray.nodes() if node.get("Alive")]
        check_storage(conf.paths.storage, conf.paths.storage_shared, len(alive))
        if plan is not None:
            settle_auto_gpus(plan, conf, ray.cluster_resources().get("GPU", 0))
            check_fits([n.get("Resources", {}) for n in alive], conf.resources.cpus_per_trial,
                       plan.gpus_per_trial)  # fmt: skip
    except BaseException:
        if connected_here:
            ray.shutdown()
        raise
    return connected_here and address is None


def check_fits(nodes: list[dict[str, float]], cpus: float, gpus: float, where: str = "") -> None:
    """A trial that no node can hold would wait forever in Ray's queue: refuse it up front.
    `where`: "this machine" for a local cluster (no node is joining it)."""
    for key, want, name in (("CPU", cpus, "cpus_per_trial"), ("GPU", gpus, "gpus_per_trial")):
        most = max((node.get(key, 0.0) for node in nodes), default=0.0)
        if want > most:
            has = (
                f"{where} has {most:g}"
                if where
                else f"no node of the cluster has more than {most:g} (still joining? an "
                "autoscaling cluster must keep one worker up: min_workers >= 1)"
            )
            raise ConfigError(
                f"config: resources.{name}: a trial asks for {want:g} {key} but {has}"
            )
    if gpus and not any(n.get("CPU", 0.0) >= cpus and n.get("GPU", 0.0) >= gpus for n in nodes):
        # Ray places a trial's CPUs and GPUs on one node
        most = max((n.get("CPU", 0.0) for n in nodes if n.get("GPU", 0.0) >= gpus), default=0.0)
        raise ConfigError(
            f"config: resources.cpus_per_trial: a trial asks for {cpus:g} CPU and {gpus:g} GPU "
            f"on one node, but the nodes with that GPU share have at most {most:g} CPU"
        )


def settle_auto_gpus(plan: SweepPlan, conf: Config, cluster_gpus: float) -> None:
    """`gpus_per_trial=auto` on a cluster without GPUs: trials train on CPUs (and
    `train.device=cuda` is refused, as for any trial without a GPU share)."""
    if conf.resources.gpus_per_trial == "auto" and not cluster_gpus:
        if plan.gpus_per_trial:  # said once: the plan settles it, then init_ray again
            plan.gpus_per_trial = 0.0
            if cluster_address(conf) is None:
                log.info("gpus_per_trial=auto: the cluster has no GPU -> 0 (trials train on CPUs)")
            else:  # a joined cluster's GPU workers may still be starting (or scaled to zero)
                log.warning(
                    "gpus_per_trial=auto: the cluster has no GPU now -> 0: the whole sweep trains "
                    "on CPUs; if GPU workers are still joining, stop it, wait until they are up "
                    "(an autoscaling cluster: min_workers >= 1), then run it again"
                )
        check_trial_device(conf.train.device, 0.0, "auto, and the cluster has no GPU")


def check_trial_device(device: str, gpus_per_trial: float, why: str = "") -> None:
    """A trial sees only the GPUs Ray gives it: `train.device=cuda` without a GPU share would
    fail in every trial, after Ray started, so it is refused here."""
    if device == "cuda" and gpus_per_trial == 0:
        raise ConfigError(
            "config: train.device: cuda, but trials get no GPU (resources.gpus_per_trial is "
            f"{why or '0'}); set resources.gpus_per_trial, or train.device=auto"
        )


def check_storage(storage: str | None, shared: bool, nodes: int) -> None:
    """On several nodes, Ray's results must go where every node can reach them. A `file://`
    URI is a local path spelled differently, no more shared than the path itself: only
    `paths.storage_shared=true` says the folder is the same on every node."""
    local = storage is None or storage.startswith("file://") or "://" not in storage
    if nodes <= 1 or shared or not local:
        return
    where = f"{storage!r} is a local path" if storage else "is unset (a local folder)"
    raise ConfigError(
        f"config: paths.storage: {where} but the cluster has {nodes} nodes; use a folder "
        "every node mounts at the same path, with paths.storage_shared=true"
    )
