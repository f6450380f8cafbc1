"""The function Ray Tune runs for each trial, in a worker process (possibly on another node).

It receives the sampled hyperparameters, the sweep's resolved config as a plain dict, and the data
tokenized once in the driver (through Ray's object store). It reports once per epoch with a
checkpoint (automl/train/checkpoint.py) that holds the best epoch's weights and what resuming needs.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from automl.config.paths import write_text_atomic
from automl.config.resolve import from_dict
from automl.config.schema import Config, ModelConfig
from automl.data.tokenized import PreparedData
from automl.model.choices import MODEL_KEY, model_section
from automl.search.resources import memory_fraction
from automl.train import checkpoint
from automl.train.device import pick_device
from automl.train.loop import TrialResult, forward_size, run_trial, settle_batch_size


class TrialDiverged(RuntimeError):
    """A non-finite loss: the trial is marked `diverged` where an epoch before it was scored
    (that epoch's weights, in its last checkpoint, still count), else failed. Ray retries it
    (up to sweep.max_failures); on a CPU the same seed from the same checkpoint diverges
    again, exactly, so a retry of a trial that diverged there ends at once, without training."""


# In the Ray experiment's folder (shared storage on a cluster: a retry may run on another
# node; Ray's own trial folder differs between a fresh and a reused actor): why it diverged
_DIVERGED_DIR = "diverged"


def overrides_from_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Ray's trial config (Optuna parameter names) -> {dotted_key: value}.

    Conditional branches are named `key[cond=value]` (see search_space.py); they set `key`.
    """
    return {name.split("[", 1)[0]: value for name, value in config.items()}


def apply_overrides(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """A copy of the nested config dict with dotted keys ('train.learning_rate') set."""
    merged = json.loads(json.dumps(base))
    for dotted, value in overrides.items():
        if dotted == MODEL_KEY:  # a model choice stands for the whole model section
            merged[MODEL_KEY] = model_section(value, merged[MODEL_KEY])
            continue
        node = merged
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    return merged


def trial_config(base: dict[str, Any], overrides: dict[str, Any]) -> Config:
    return from_dict(apply_overrides(base, overrides))


def limit_gpu_memory(share: float, device: torch.device) -> float | None:
    """Ray's fractional GPUs are scheduling labels only: cap this process to its share of the
    GPU it trains on, less the CUDA context it also holds there. Returns the fraction of the
    GPU's memory it may use (1.0: the whole GPU), None on the CPU."""
    if device.type != "cuda":
        return None
    total = torch.cuda.get_device_properties(device).total_memory
    fraction = memory_fraction(share, total)
    if fraction is not None:
        torch.cuda.set_per_process_memory_fraction(fraction, device)
    held = getattr(torch.cuda, "get_per_process_memory_fraction", None)  # torch 2.6 and later
    if held is None:  # (pyproject allows 2.4: every GPU trial failed here on 2.4 and 2.5)
        return 1.0 if fraction is None else fraction
    return float(held(device))  # what the allocator holds


def next_micro_batch(
    batch_size: int, accum_steps: int, groups_per_step: int = 1
) -> tuple[int, int] | None:
    """After running out of GPU memory: at most half the examples per forward pass, with the
    accumulation that keeps the optimizer's step batch exactly (the largest divisor of the
    step batch that halves it: 32 x 1 -> 16 x 2, 5 x 1 -> 1 x 5), so the steps, the schedule
    and `train.length_groups_per_step` stay as they were; None once a pass holds one example.
    With several length groups a step, a pass is cut at its group's edge too (`forward_batch`:
    32 x 1 in 4 groups runs passes of 8, so 16 x 2 would run the same 8)."""
    step = batch_size * accum_steps

    def passes(micro: int) -> int:
        return forward_size(micro, step, groups_per_step)

    fits = [
        d
        for d in range(1, batch_size + 1)
        if step % d == 0 and passes(d) <= passes(batch_size) // 2
    ]
    return (max(fits), step // max(fits)) if fits else None


# GPU memory running out outside torch's caching allocator (a CUDA library's own workspace,
# another trial's context on a shared GPU) surfaces as a plain RuntimeError with these words
_OUT_OF_MEMORY = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED")


def out_of_memory(err: BaseException) -> bool:
    """Whether `err` is the GPU running out of memory: torch's OutOfMemoryError, or a CUDA
    library's allocation failure."""
    return isinstance(err, torch.cuda.OutOfMemoryError) or any(
        words in str(err) for words in _OUT_OF_MEMORY
    )


def run_with_oom_retry(conf: Config, attempt: Callable[[Config], TrialResult]) -> TrialResult:
    """Run `attempt(conf)`; when CUDA runs out of memory, again with smaller micro-batches and
    half the evaluation batch (the error may come from either; the attempt goes on from its last
    reported epoch: see `EpochCheckpoints`)."""
    while True:
        gc.collect()  # the failed attempt's model and optimizer, held in reference cycles
        torch.cuda.empty_cache()  # then what they held on the GPU (a no-op without CUDA)
        try:
            return attempt(conf)
        except RuntimeError as err:
            if not out_of_memory(err):
                raise
            t = conf.train
            micro = t.batch_size
            assert micro is not None, "run_sweep_trial settles the batch size before any attempt"
            smaller = next_micro_batch(micro, t.grad_accum_steps, t.length_groups_per_step)
            if smaller is None and t.eval_batch_size == 1:
                raise
            if smaller is not None:  # else training's pass cannot shrink: evaluation's may
                t.batch_size, t.grad_accum_steps = smaller
            t.eval_batch_size = max(1, t.eval_batch_size // 2)
            logging.getLogger("automl").warning(
                "trial out of GPU memory at micro-batch %d: retrying with %d x %d accumulation, "
                "evaluation batches of %d", micro, t.batch_size, t.grad_accum_steps,
                t.eval_batch_size,
            )  # fmt: skip


# Hands one epoch's metrics and its checkpoint folder on (to `tune.report`); the folder may be
# deleted once this returns.
Publish = Callable[[dict[str, float], Path], None]


class EpochCheckpoints:
    """Each reported epoch's checkpoint, kept in this process until the next epoch's: a retry
    after running out of GPU memory goes on from the last epoch reported, not from the
    checkpoint the trial began with, so no epoch is trained or reported twice and ASHA sees
    each epoch once."""

    def __init__(self, root: Path, start: Path | None, publish: Publish) -> None:
        self.root = root
        self.latest = start  # where the next attempt resumes (None: from scratch)
        self._publish = publish
        self._own: Path | None = None

    def report(self, metrics: dict[str, float], write: Callable[[Path], None], _: bool) -> None:
        """The loop's `Reporter`: write the checkpoint here, publish it, drop the previous one."""
        folder = self.root / f"epoch-{int(metrics['epoch'])}"
        folder.mkdir(parents=True)
        write(folder)
        self._publish(metrics, folder)
        if self._own is not None:
            shutil.rmtree(self._own)
        self.latest = self._own = folder


def train_with_oom_retry(
    conf: Config,
    data: PreparedData,
    publish: Publish,
    start: Path | None,
    work: Path,
    metric: str = "val_accuracy",
    mode: str = "max",
) -> TrialResult:
    """Run the trial from `start` (a checkpoint or None), publishing every epoch; after running
    out of GPU memory, go on from the last published epoch with smaller micro-batches."""
    checkpoints = EpochCheckpoints(work, start, publish)

    def attempt(conf: Config) -> TrialResult:
        return run_trial(
            conf, data, checkpoints.report, metric=metric, mode=mode,
            resume_from=checkpoints.latest,
        )  # fmt: skip

    return run_with_oom_retry(conf, attempt)


def _checkpoint_folder(previous: Any) -> Any:
    """The checkpoint to go on from, read in place: the storage folder is local (a shared mount
    on a cluster), and Ray would copy it to /tmp for its own filesystem (search/storage.py)."""
    if Path(previous.path).is_dir():
        return nullcontext(previous.path)
    return previous.as_directory()


def run_sweep_trial(
    config: dict[str, Any],
    data: PreparedData,
    base: dict[str, Any],
    model_data: dict[str, PreparedData] | None = None,
    models: dict[str, ModelConfig] | None = None,
    experiment: str | None = None,
) -> None:
    """Ray Tune function trainable (bound with `tune.with_parameters`). When the search space
    chooses the model, `models` holds each choice's model (local folders made absolute: Ray runs
    trials in folders of their own) and `model_data` its tokenization (shared between choices
    with the same tokenizer); the trial trains its own model on its own token ids.
    `experiment`: the Ray experiment's folder, where a divergence is noted for the retries."""
    import ray
    from ray import tune

    context = ray.get_runtime_context()
    resources = context.get_assigned_resources()
    if not resources.get("GPU"):
        # Ray leaves CUDA_VISIBLE_DEVICES alone for a trial given no GPU: it would see (and
        # use) every GPU of the node. Hidden first, before any import may touch CUDA.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""

    from automl.console import quiet_libraries

    quiet_libraries()
    logging.getLogger("automl").setLevel(logging.WARNING)  # the driver prints progress
    overrides = overrides_from_trial(config)
    conf = trial_config(base, overrides)
    if models and model_data and MODEL_KEY in overrides:
        conf.model, data = models[overrides[MODEL_KEY]], model_data[overrides[MODEL_KEY]]
    if not conf.train.num_threads:
        conf.train.num_threads = max(1, int(resources.get("CPU", 1)))
    settle_batch_size(conf.train, len(data.train))  # before an out-of-memory retry halves it
    device = pick_device(conf.train.device)  # what run_trial will pick
    memory_cap = limit_gpu_memory(float(resources.get("GPU", 0)), device)
    gpu_ids = ",".join(str(g) for g in ray.get_gpu_ids())
    metric, mode = conf.sweep.metric, conf.sweep.mode
    extra = {
        "gpu_ids": gpu_ids or "none",
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        "node_id": context.get_node_id(),
        "device": device.type,
        "requested_device": conf.train.device,  # `cpu` with a GPU share is no fallback
        **({"gpu_memory_fraction": memory_cap} if memory_cap is not None else {}),
    }

    def publish(metrics: dict[str, float], folder: Path) -> None:
        # A checkpoint every epoch (Ray copies it to storage and keeps the latest): a retried
        # or resumed trial goes on from its last epoch instead of starting over.
        tune.report({**metrics, **extra}, checkpoint=tune.Checkpoint.from_directory(folder))

    diverged = (
        Path(experiment) / _DIVERGED_DIR / f"{tune.get_context().get_trial_id()}.txt"
        if experiment and device.type == "cpu"  # a GPU's kernels may not diverge again
        else None
    )
    if diverged is not None and diverged.is_file():  # an attempt diverged: this one would too
        raise TrialDiverged(f"{diverged.read_text()} (a retry; not trained again)")
    previous = tune.get_checkpoint()
    with (
        tempfile.TemporaryDirectory() as work,
        _checkpoint_folder(previous) if previous else nullcontext() as start,
    ):
        if start and checkpoint.is_slim(Path(start)):
            return  # it had ended; the driver was killed before Ray saved that (nothing to train)
        result = train_with_oom_retry(
            conf, data, publish, Path(start) if start else None, Path(work), metric, mode
        )
    if result.status == "diverged":
        if diverged is not None:
            _note(diverged, result.message)
        raise TrialDiverged(result.message)


def _note(path: Path, text: str) -> None:
    """Write `path` whole or not at all (a retry reads it); a storage that refuses the write
    leaves the retry to train again, and the divergence its own error. (Storage that is not
    one filesystem for every node, cloud storage say: a retry on another node trains again.)"""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, text)
    except OSError as err:
        logging.getLogger("automl").warning("%s: not written (%s)", path, err)
