"""The function Ray Tune runs for each trial, in a worker process (possibly on another node).

It receives the sampled hyperparameters, the sweep's resolved config as a plain dict, and the data
tokenized once in the driver (through Ray's object store). It reports once per epoch with a
checkpoint (automl/checkpoint.py) that holds the best epoch's weights and what resuming needs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from automl.config.resolve import from_dict
from automl.config.schema import Config
from automl.data.tokenized import PreparedData
from automl.train.device import pick_device
from automl.train.loop import TrialResult, run_trial


class TrialDiverged(RuntimeError):
    """A non-finite loss: the trial is marked failed (and retried up to sweep.max_failures)."""


def overrides_from_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Ray's trial config (Optuna parameter names) -> {dotted_key: value}.

    Conditional branches are named `key[cond=value]` (see search_space.py); they set `key`.
    """
    return {name.split("[", 1)[0]: value for name, value in config.items()}


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of the nested config dict with dotted keys ('train.learning_rate') set."""
    merged = json.loads(json.dumps(base))
    for dotted, value in overrides.items():
        node = merged
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return merged


def trial_config(base: dict[str, Any], overrides: dict[str, Any]) -> Config:
    return from_dict(apply_overrides(base, overrides))


def _limit_gpu_memory(share: float) -> None:
    """Ray's fractional GPUs are scheduling labels only: cap this process to its share."""
    import torch

    if torch.cuda.is_available() and 0 < share < 1:
        torch.cuda.set_per_process_memory_fraction(share, 0)


def next_micro_batch(batch_size: int, accum_steps: int) -> tuple[int, int] | None:
    """After running out of GPU memory: half the micro-batch, twice the accumulation, so the
    optimizer still sees the same batch; None once the micro-batch is 1 (nothing left to try)."""
    if batch_size <= 1:
        return None
    half = batch_size // 2
    # an odd micro-batch cannot halve exactly: round the accumulation up, never the memory
    return half, math.ceil(batch_size * accum_steps / half)


def run_with_oom_retry(conf: Config, attempt: Callable[[Config], TrialResult]) -> TrialResult:
    """Run `attempt(conf)`; when CUDA runs out of memory, again with smaller micro-batches."""
    while True:
        torch.cuda.empty_cache()  # what a failed attempt held (a no-op without CUDA)
        try:
            return attempt(conf)
        except torch.cuda.OutOfMemoryError:
            smaller = next_micro_batch(conf.train.batch_size, conf.train.grad_accum_steps)
            if smaller is None:
                raise
            logging.getLogger("automl").warning(
                "trial out of GPU memory at micro-batch %d: retrying with %d x %d accumulation",
                conf.train.batch_size, *smaller,
            )  # fmt: skip
            conf.train.batch_size, conf.train.grad_accum_steps = smaller


def run_sweep_trial(config: dict[str, Any], data: PreparedData, base: dict[str, Any]) -> None:
    """Ray Tune function trainable (bound with `tune.with_parameters`)."""
    import ray
    from ray import tune

    from automl.console import quiet_libraries

    quiet_libraries()
    logging.getLogger("automl").setLevel(logging.WARNING)  # the driver prints progress
    overrides = overrides_from_trial(config)
    conf = trial_config(base, overrides)
    context = ray.get_runtime_context()
    resources = context.get_assigned_resources()
    if not conf.train.num_threads:
        conf.train.num_threads = max(1, int(resources.get("CPU", 1)))
    _limit_gpu_memory(float(resources.get("GPU", 0)))
    gpu_ids = ",".join(str(g) for g in ray.get_gpu_ids())
    metric, mode = conf.sweep.metric, conf.sweep.mode
    extra = {
        "gpu_ids": gpu_ids or "none",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "node_id": context.get_node_id(),
        "device": pick_device(conf.train.device).type,
    }

    def report(metrics: dict[str, float], write: Callable[[Path], None], improved: bool) -> None:
        # A checkpoint every epoch (Ray keeps the latest): a retried or resumed trial goes on
        # from its last epoch instead of starting over.
        with tempfile.TemporaryDirectory() as tmp:
            write(Path(tmp))
            tune.report({**metrics, **extra}, checkpoint=tune.Checkpoint.from_directory(tmp))

    previous = tune.get_checkpoint()

    def attempt(conf: Config) -> TrialResult:
        with previous.as_directory() if previous else nullcontext() as resume_dir:
            return run_trial(
                conf, data, report, metric=metric, mode=mode,
                resume_from=Path(resume_dir) if resume_dir else None,
            )  # fmt: skip

    result = run_with_oom_retry(conf, attempt)
    if result.status == "diverged":
        raise TrialDiverged(result.message)
