"""One trial: fine-tune, evaluate every epoch, report, keep the best epoch's weights.

Plain PyTorch, top to bottom: AdamW with linear warmup and decay, gradient clipping, mixed
precision on GPUs that support it, length-aware batches. The sweep plugs Ray Tune in through the
`report` hook; a single run passes nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from automl.config.schema import Config, TrainConfig
from automl.data.batching import (
    BUCKET_EDGES,
    auto_batch_size,
    auto_batching,
    auto_bucket_edges,
    collate,
    length_bucket_batches,
    length_bucketed_batches,
    steps_of_length_groups,
)
from automl.data.sampling import batches_over, class_counts, class_weights, epoch_indices
from automl.data.tokenized import PreparedData
from automl.model.build import build_model
from automl.model.load import ModelInfo
from automl.model.state import load_trainable_state, trainable_state
from automl.train import checkpoint
from automl.train.device import _autocast, eval_autocast, pick_device
from automl.train.evaluate import evaluate

log = logging.getLogger(__name__)


# Called after every epoch with the epoch's metrics, a function that writes a resumable
# checkpoint into a folder, and whether this epoch is the best so far.
Reporter = Callable[[dict[str, float], Callable[[Path], None], bool], None]

# The best epoch's metrics the `automl-train` summary shows, whichever one chose the epoch.
SUMMARY_KEYS = ("val_accuracy", "val_f1", "val_balanced_accuracy", "val_loss", "train_loss")


@dataclass
class TrialResult:
    status: str  # "completed" | "diverged"
    message: str
    best_epoch: int
    epochs_run: int
    best: dict[str, float]  # the best epoch's metrics
    history: list[dict[str, float]]
    info: ModelInfo
    train_samples_per_s: float
    model: nn.Module = field(repr=False)  # holding the best epoch's weights

    def summary(self) -> dict[str, Any]:
        """The one-line JSON the `automl-train` CLI prints."""
        return {
            "status": self.status,
            **{k: self.best.get(k) for k in SUMMARY_KEYS},
            "best_epoch": self.best_epoch,
            "epochs": self.epochs_run,
            "trainable_params": self.info.trainable_params,
            "total_params": self.info.total_params,
            "train_samples_per_s": round(self.train_samples_per_s, 1),
            **({"message": self.message} if self.message else {}),
        }


def split_batch(idx: np.ndarray, micro_batch: int) -> list[np.ndarray]:
    """A batch's indices in consecutive micro-batches of at most `micro_batch`."""
    return [idx[i : i + micro_batch] for i in range(0, len(idx), micro_batch)]


def is_better(value: float, best: float | None, mode: str) -> bool:
    if math.isnan(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def improves(
    row: Mapping[str, float], best: Mapping[str, float] | None, metric: str, mode: str
) -> bool:
    """Whether an epoch's scores (`row`) beat the best epoch's so far (`best`, None: no best
    yet): by `metric`, and on an equal value by the lower validation loss, as the sweep ranks
    trials (search/pareto.rank_key). Accuracy on a few hundred texts moves in steps: the
    earlier of two equal epochs was kept, though the sweep's rule prefers the later one."""
    value = row.get(metric)
    if value is None or math.isnan(value):
        return False
    if best is None or is_better(value, best.get(metric), mode):
        return True
    loss, best_loss = row.get("val_loss"), best.get("val_loss")
    return (
        value == best.get(metric)
        and loss is not None
        and best_loss is not None
        and (loss < best_loss)
    )


@dataclass
class TrainingState:
    """Everything one trial trains with, built once and restored together on resume."""

    model: nn.Module
    info: ModelInfo
    params: list[nn.Parameter]  # the trainable ones
    optimizer: torch.optim.Optimizer
    scheduler: Any
    autocast: Callable[[], Any]
    scaler: torch.amp.GradScaler | None  # fp16 only
    device: torch.device
    rng: np.random.Generator  # draws the batches
    progress: checkpoint.Progress  # the last finished epoch, history and best so far
    best_state: dict[str, torch.Tensor] | None  # the best epoch's trainable weights (CPU)
    loss_weights: torch.Tensor | None = None  # per-class weights (train.class_weights), on device
    loss_weight_values: np.ndarray | None = None  # the same on the CPU, for each step's share
    skipped_in_a_row: int = 0  # fp16 steps skipped for overflow since the last update


@dataclass
class EpochStats:
    loss_sum: float = 0.0  # each micro-batch's loss times its mass (`loss_mass`)
    loss_mass: float = 0.0  # so train_loss is the epoch's (weighted) mean however it is split
    seen: int = 0
    seconds: float = 0.0
    diverged: str = ""  # why the epoch stopped early, when the loss went non-finite


def setup(conf: Config, data: PreparedData, resume_from: Path | None) -> TrainingState:
    """Seed, build the model, AdamW with linear warmup/decay, autocast; restore a checkpoint."""
    from transformers import get_linear_schedule_with_warmup, set_seed

    t = conf.train
    set_seed(t.seed)
    if t.num_threads:
        torch.set_num_threads(t.num_threads)
    device = pick_device(t.device)
    model, info = build_model(conf.model, conf.peft, data.label_names, data.pad_token_id)
    model.to(device)

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=t.learning_rate, weight_decay=t.weight_decay)
    # Each optimizer step sees one batch of batch_size x grad_accum_steps examples, run as
    # grad_accum_steps micro-batches whose gradients add up: the memory of a micro-batch, the
    # optimization of the full batch (and the same batches whatever the split).
    batch_size = settle_batch_size(t, len(data.train))
    steps_per_epoch = math.ceil(len(data.train) / (batch_size * t.grad_accum_steps))
    total_steps = steps_per_epoch * t.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(t.warmup_ratio * total_steps), total_steps
    )
    autocast, scaler = _autocast(device, t.mixed_precision)
    state = TrainingState(
        model, info, params, optimizer, scheduler, autocast, scaler, device,
        rng=np.random.default_rng(t.seed), progress=checkpoint.Progress(), best_state=None,
    )  # fmt: skip
    # class weights from the training split's counts (validation loss stays unweighted)
    weights = class_weights(class_counts(data.train.labels, len(data.label_names)), t.class_weights)
    if weights is not None:
        state.loss_weights = torch.tensor(weights, dtype=torch.float32, device=device)
        state.loss_weight_values = np.asarray(weights, dtype=np.float64)
    if resume_from is not None:
        state.progress, state.best_state = checkpoint.resume(
            resume_from, model, optimizer, scheduler, scaler
        )
        state.rng.bit_generator.state = state.progress.batch_rng
        log.info("resumed after epoch %d", state.progress.epoch)
    return state


def settle_batch_size(t: TrainConfig, num_train: int) -> int:
    """Fill in `train.batch_size` when the config leaves it to the data (null); the trial then
    records, logs and checkpoints the size it really trained with."""
    if t.batch_size is None:
        t.batch_size = auto_batch_size(num_train, t.grad_accum_steps)
        log.info("train.batch_size %d, from %d training examples", t.batch_size, num_train)
    return t.batch_size


def settle_batching(t: TrainConfig, num_train: int) -> str:
    """Fill in `train.batching` and `train.bucket_edges` left to the data (`auto`), like the
    batch size: settled once a trial from the training split's size, and logged."""
    if t.batching == "auto":
        t.batching = auto_batching(num_train)
        log.info("train.batching %s, from %d training examples", t.batching, num_train)
    if t.bucket_edges == "auto":
        t.bucket_edges = auto_bucket_edges(t.batching)
    return t.batching


def batch_loss(
    model: nn.Module, batch: dict[str, torch.Tensor], weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The training loss of one micro-batch: the model's mean cross-entropy over its labels or,
    with class `weights`, torch's weighted mean sum(w_y * ce) / sum(w_y)."""
    if weights is None:
        return model(**batch).loss
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    return F.cross_entropy(logits.float(), batch["labels"], weight=weights)


def loss_mass(labels: np.ndarray, weights: np.ndarray | None) -> float:
    """What `batch_loss` averages over for these rows: their count, or with class `weights`
    the sum of their weights (torch's weighted mean divides by it, per micro-batch)."""
    return float(len(labels)) if weights is None else float(weights[labels].sum())


# fp16 steps skipped in a row (inf/NaN gradients or loss) before a trial counts as diverged,
# and the loss scale below which it does: each skip halves the scale, and at 0 (~165 halvings
# from 65536) the scaler's unscaling (0 x inf) makes NaN gradients that pass its check and
# reach the weights; a scale below 1 means gradients overflow fp16 unscaled
MAX_SKIPPED_STEPS = 25
MIN_LOSS_SCALE = 1.0


def optimizer_step(state: TrainingState, max_grad_norm: float) -> bool:
    """Clip the summed gradients and step (through the fp16 scaler when there is one); False
    where the scaler skipped the step (inf/NaN gradients: it lowers its scale), which leaves the
    schedule where it is, as Hugging Face's Trainer does: else warmup and decay would run ahead
    of the updates."""
    if state.scaler is not None:
        scale = state.scaler.get_scale()
        state.scaler.unscale_(state.optimizer)
        nn.utils.clip_grad_norm_(state.params, max_grad_norm)
        state.scaler.step(state.optimizer)
        state.scaler.update()
        if state.scaler.get_scale() < scale:  # skipped
            return False
    else:
        nn.utils.clip_grad_norm_(state.params, max_grad_norm)
        state.optimizer.step()
    state.scheduler.step()
    return True


def overflowed_too_long(state: TrainingState, stepped: bool, epoch: int) -> str | None:
    """Why an fp16 trial stops: `MAX_SKIPPED_STEPS` steps skipped in a row, or its loss scale
    below `MIN_LOSS_SCALE` (overflows now and then, never enough clean steps to regrow it);
    else None."""
    if state.scaler is None or stepped:  # the scale falls only where a step is skipped (and
        state.skipped_in_a_row = 0  # each read of it waits for the GPU: not once a step)
        return None
    state.skipped_in_a_row += 1
    scale = state.scaler.get_scale()
    if state.skipped_in_a_row >= MAX_SKIPPED_STEPS:
        why = f"{state.skipped_in_a_row} optimizer steps in a row skipped"
    elif scale < MIN_LOSS_SCALE:
        why = f"loss scale down to {scale:g}"
    else:
        return None
    return (
        f"fp16 overflow: {why} (inf/NaN loss or gradients) in epoch {epoch}; "
        "train.mixed_precision=false trains in fp32"
    )


def epoch_batcher(
    t: TrainConfig, step_batch: int, labels: np.ndarray, rng: np.random.Generator
) -> Callable[[np.ndarray], list[np.ndarray]]:
    """`train.batching` as a batcher over the epoch's sample (`labels`: the sampled rows'):
    optimizer steps of `step_batch` examples, each made of `train.length_groups_per_step`
    length groups."""
    settle_batching(t, len(labels))
    per_step = t.length_groups_per_step
    group = step_batch // per_step
    pool = t.bucket_pool_batches * per_step  # the same examples a pool as with whole steps
    edges = BUCKET_EDGES[t.bucket_edges]
    spread = labels if t.batching == "stratified" else None

    def batcher(lengths: np.ndarray) -> list[np.ndarray]:
        if t.batching == "pools":
            groups = length_bucketed_batches(lengths, group, pool, rng)
        else:
            groups = length_bucket_batches(lengths, group, rng, edges, spread)
        return steps_of_length_groups(groups, per_step)

    return batcher


def forward_batch(t: TrainConfig, batch_size: int) -> int:
    """Examples per forward pass: the micro-batch, cut further so no forward pass mixes two
    length groups of a step (`train.length_groups_per_step`)."""
    return forward_size(batch_size, batch_size * t.grad_accum_steps, t.length_groups_per_step)


def forward_size(micro: int, step: int, groups_per_step: int) -> int:
    """`forward_batch` of a micro-batch within a step batch cut into length groups."""
    return math.gcd(micro, step // groups_per_step)


def train_one_epoch(
    state: TrainingState, t: TrainConfig, data: PreparedData, epoch: int
) -> EpochStats:
    """One pass over the training split in length-aware batches; stops at a non-finite loss."""
    state.model.train()
    stats = EpochStats()
    started = time.perf_counter()
    batch_size = settle_batch_size(t, len(data.train))
    step_batch = batch_size * t.grad_accum_steps
    forward = forward_batch(t, batch_size)
    # the epoch's sample first (train.sampling; `natural` = every example once, no draws), then
    # length-aware batches over it, so rebalancing keeps the padding savings
    order = epoch_indices(data.train.labels, t.sampling, state.rng)
    batches = batches_over(
        order, data.train.lengths, epoch_batcher(t, step_batch, data.train.labels[order], state.rng)
    )
    for idx in batches:
        state.optimizer.zero_grad(set_to_none=True)
        step_mass = loss_mass(data.train.labels[idx], state.loss_weight_values)
        step_loss, step_seen, overflowed = 0.0, 0, False
        for micro in split_batch(idx, forward):
            batch = collate(data.train, micro, data.pad_token_id)
            batch = {k: v.to(state.device) for k, v in batch.items()}
            with state.autocast():
                loss = batch_loss(state.model, batch, state.loss_weights)
            if not torch.isfinite(loss):
                if state.scaler is None:  # fp32 and bf16 have the range: diverged
                    stats.diverged = f"non-finite training loss ({loss.item()}) in epoch {epoch}"
                    return stats
                # fp16's forward pass overflowed: the step is skipped, as the scaler skips one
                # whose gradients did (a trial does not fail on one batch)
                overflowed = True
                break
            # weighted by its share of the step's examples (or class weights), so the summed
            # gradients are the whole step's (weighted) mean however the step is split
            mass = loss_mass(data.train.labels[micro], state.loss_weight_values)
            share = loss * (mass / step_mass)
            (state.scaler.scale(share) if state.scaler is not None else share).backward()
            step_loss += loss.item() * mass  # not x rows: with class weights the mean
            step_seen += len(micro)  # then moved with the micro-batch size (OOM retry)
        stepped = not overflowed and optimizer_step(state, t.max_grad_norm)
        if not overflowed:  # a step whose loss overflowed adds nothing to the mean
            stats.loss_sum += step_loss
            stats.loss_mass += step_mass
            stats.seen += step_seen
        if (why := overflowed_too_long(state, stepped, epoch)) is not None:
            stats.diverged = why
            return stats
    stats.seconds = time.perf_counter() - started
    return stats


def end_epoch(
    state: TrainingState,
    conf: Config,
    data: PreparedData,
    epoch: int,
    stats: EpochStats,
    metric: str,
    mode: str,
    report: Reporter | None,
) -> None:
    """Evaluate, keep the best epoch's weights, log one line and report (with a checkpoint)."""
    t, started = conf.train, time.perf_counter()
    step_batch = settle_batch_size(t, len(data.train)) * t.grad_accum_steps
    metrics = evaluate(
        state.model,
        data.val,
        data.pad_token_id,
        t.eval_batch_size,
        state.device,
        eval_autocast(state.device, state.autocast),
    )
    if not math.isfinite(metrics["val_loss"]):  # the last step broke the weights: its accuracy
        stats.diverged = (  # (every text one class) must not be kept as the best epoch
            f"non-finite validation loss ({metrics['val_loss']}) after epoch {epoch}"
        )
        return
    if stats.loss_mass:  # left out where every step's loss overflowed (fp16): none is known,
        metrics["train_loss"] = stats.loss_sum / stats.loss_mass  # and the overfit rule abstains
    metrics.update(
        epoch=float(epoch),
        train_samples_per_s=stats.seen / max(stats.seconds, 1e-9),
        epoch_s=stats.seconds + time.perf_counter() - started,
        batch_size=float(step_batch),  # what the optimizer saw per step
        trainable_params=float(state.info.trainable_params),
    )
    p = state.progress
    history, best_value, best_epoch = p.history, p.best_value, p.best_epoch
    best_row = next((h for h in history if h.get("epoch") == best_epoch), None)
    history.append(metrics)
    improved = improves(metrics, best_row, metric, mode)
    if improved:
        best_value, best_epoch = metrics[metric], epoch
        state.best_state = trainable_state(state.model)
    metrics[f"best_{metric}"] = best_value if best_value is not None else float("nan")
    metrics["best_epoch"] = float(best_epoch)  # the epoch whose weights it keeps: the record's
    state.progress = checkpoint.Progress(
        epoch, history, best_value, best_epoch, dict(state.rng.bit_generator.state)
    )
    log.info(
        "epoch %d/%d  train_loss %.4f  val_loss %.4f  val_acc %.4f  val_f1 %.4f  "
        "val_bal_acc %.4f  %.1f s  %.0f samples/s%s",
        epoch, t.epochs, metrics.get("train_loss", math.nan), metrics["val_loss"],
        metrics["val_accuracy"], metrics["val_f1"], metrics["val_balanced_accuracy"],
        metrics["epoch_s"],
        metrics["train_samples_per_s"], "  *" if improved else "",
    )  # fmt: skip
    if report is not None:
        # this epoch's progress and best weights; the model and optimizer as they are now
        def write(
            folder: Path,
            progress: checkpoint.Progress = state.progress,
            best_state: dict[str, torch.Tensor] | None = state.best_state,
        ) -> None:
            checkpoint.save(
                folder, state.model, best_state, state.optimizer, state.scheduler, progress,
                state.scaler,
            )  # fmt: skip

        report(metrics, write, improved)


def run_trial(
    conf: Config,
    data: PreparedData,
    report: Reporter | None = None,
    metric: str = "val_accuracy",
    mode: str = "max",
    resume_from: Path | None = None,
) -> TrialResult:
    """Fine-tune once with `conf` on the already tokenized `data`.

    With `resume_from` (a folder written through the reporter), continue after its epoch with
    the same optimizer, schedule, RNG and best-so-far."""
    settle_batch_size(conf.train, len(data.train))
    settle_batching(conf.train, len(data.train))
    state = setup(conf, data, resume_from)
    status, message = "completed", ""
    train_time, train_seen = 0.0, 0
    for epoch in range(state.progress.epoch + 1, conf.train.epochs + 1):
        stats = train_one_epoch(state, conf.train, data, epoch)
        if not stats.diverged:
            train_time += stats.seconds
            train_seen += stats.seen
            end_epoch(state, conf, data, epoch, stats, metric, mode, report)  # may diverge too
        if stats.diverged:
            status, message = "diverged", stats.diverged
            log.warning("trial diverged: %s", message)
            break

    if state.best_state is not None:
        load_trainable_state(state.model, state.best_state)
    history, best_epoch = state.progress.history, state.progress.best_epoch
    return TrialResult(
        status=status,
        message=message,
        best_epoch=best_epoch,
        epochs_run=len(history),
        best=history[best_epoch - 1] if best_epoch else {},
        history=history,
        info=state.info,
        train_samples_per_s=train_seen / train_time if train_time else 0.0,
        model=state.model,
    )
