"""The function Ray Tune runs for each trial, in a worker process (possibly on another node).

It receives the sampled hyperparameters, the sweep's resolved config as a plain dict, and the data
tokenized once in the driver (through Ray's object store). It reports once per epoch and writes a
checkpoint only when the epoch is the trial's best so far, so each trial keeps one checkpoint.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from automl.config import Config, from_dict
from automl.data import PreparedData
from automl.modeling import load_trainable_state, trainable_state
from automl.training import is_better, run_trial

STATE_FILE = "trainable.safetensors"
META_FILE = "checkpoint.json"


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


def save_checkpoint(model: nn.Module, folder: Path, meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    state = {k: v.contiguous() for k, v in trainable_state(model).items()}
    save_file(state, str(folder / STATE_FILE))
    (folder / META_FILE).write_text(json.dumps(meta, indent=2))


def load_checkpoint(model: nn.Module, folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    load_trainable_state(model, load_file(str(folder / STATE_FILE)))
    return json.loads((folder / META_FILE).read_text())


def _limit_gpu_memory(share: float) -> None:
    """Ray's fractional GPUs are scheduling labels only: cap this process to its share."""
    import torch

    if torch.cuda.is_available() and 0 < share < 1:
        torch.cuda.set_per_process_memory_fraction(share, 0)


def run_sweep_trial(config: dict[str, Any], data: PreparedData, base: dict[str, Any]) -> None:
    """Ray Tune function trainable (bound with `tune.with_parameters`)."""
    import ray
    from ray import tune

    from automl.cli import quiet_libraries

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
    best: list[float | None] = [None]
    extra = {
        "gpu_ids": gpu_ids or "none",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "node_id": context.get_node_id(),
    }

    def report(metrics: dict[str, float], model: nn.Module, improved: bool) -> None:
        if is_better(metrics[metric], best[0], mode):
            best[0] = metrics[metric]
        payload = {**metrics, f"best_{metric}": best[0], **extra}
        if not improved:
            tune.report(payload)
            return
        with tempfile.TemporaryDirectory() as tmp:
            save_checkpoint(model, Path(tmp), {"epoch": metrics["epoch"], metric: metrics[metric]})
            tune.report(payload, checkpoint=tune.Checkpoint.from_directory(tmp))

    result = run_trial(conf, data, report, metric=metric, mode=mode)
    if result.status == "diverged":
        raise TrialDiverged(result.message)
