"""One trial: fine-tune, evaluate every epoch, report, keep the best epoch's weights.

Plain PyTorch, top to bottom: AdamW with linear warmup and decay, gradient clipping, mixed
precision on GPUs that support it, length-aware batches. The sweep plugs Ray Tune in through the
`report` hook; a single run passes nothing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from automl.config.schema import Config
from automl.data.batching import collate, length_bucketed_batches
from automl.data.tokenized import PreparedData
from automl.model.build import build_model
from automl.model.load import ModelInfo
from automl.model.state import load_trainable_state, trainable_state
from automl.train import checkpoint
from automl.train.device import _autocast, pick_device
from automl.train.evaluate import evaluate

log = logging.getLogger(__name__)


# Called after every epoch with the epoch's metrics, a function that writes a resumable
# checkpoint into a folder, and whether this epoch is the best so far.
Reporter = Callable[[dict[str, float], Callable[[Path], None], bool], None]


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
            **{k: self.best.get(k) for k in ("val_accuracy", "val_f1", "val_loss", "train_loss")},
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
    step_batch = t.batch_size * t.grad_accum_steps
    steps_per_epoch = math.ceil(len(data.train) / step_batch)
    total_steps = steps_per_epoch * t.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(t.warmup_ratio * total_steps), total_steps
    )
    autocast, scaler = _autocast(device, t.mixed_precision)
    rng = np.random.default_rng(t.seed)
    lengths = data.train.lengths

    progress = checkpoint.Progress()
    best_state: dict[str, torch.Tensor] | None = None
    if resume_from is not None:
        progress, best_state = checkpoint.resume(resume_from, model, optimizer, scheduler)
        rng.bit_generator.state = progress.batch_rng
        log.info("resumed after epoch %d", progress.epoch)
    history = progress.history
    best_value, best_epoch = progress.best_value, progress.best_epoch
    status, message = "completed", ""
    train_time, train_seen = 0.0, 0

    for epoch in range(progress.epoch + 1, t.epochs + 1):
        model.train()
        started = time.perf_counter()
        loss_sum, seen = 0.0, 0
        for idx in length_bucketed_batches(lengths, step_batch, t.bucket_pool_batches, rng):
            optimizer.zero_grad(set_to_none=True)
            for micro in split_batch(idx, t.batch_size):
                batch = {
                    k: v.to(device)
                    for k, v in collate(data.train, micro, data.pad_token_id).items()
                }
                with autocast():
                    loss = model(**batch).loss
                if not torch.isfinite(loss):
                    status = "diverged"
                    message = f"non-finite training loss ({loss.item()}) in epoch {epoch}"
                    break
                # weighted by its share of the batch, so the summed gradients are the batch mean's
                share = loss * (len(micro) / len(idx))
                (scaler.scale(share) if scaler is not None else share).backward()
                loss_sum += loss.item() * len(micro)
                seen += len(micro)
            if status != "completed":
                break
            if scaler is not None:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, t.max_grad_norm)
                scaler.step(optimizer)
                scaler.update()
            else:
                nn.utils.clip_grad_norm_(params, t.max_grad_norm)
                optimizer.step()
            scheduler.step()
        if status != "completed":
            log.warning("trial diverged: %s", message)
            break
        epoch_train_s = time.perf_counter() - started
        train_time += epoch_train_s
        train_seen += seen

        metrics = evaluate(model, data.val, data.pad_token_id, t.eval_batch_size, device, autocast)
        metrics.update(
            epoch=float(epoch),
            train_loss=loss_sum / max(seen, 1),
            train_samples_per_s=seen / max(epoch_train_s, 1e-9),
            epoch_s=time.perf_counter() - started,
            trainable_params=float(info.trainable_params),
        )
        history.append(metrics)
        improved = is_better(metrics[metric], best_value, mode)
        if improved:
            best_value, best_epoch = metrics[metric], epoch
            best_state = trainable_state(model)
        metrics[f"best_{metric}"] = best_value if best_value is not None else float("nan")
        log.info(
            "epoch %d/%d  train_loss %.4f  val_loss %.4f  val_acc %.4f  val_f1 %.4f  "
            "%.1f s  %.0f samples/s%s",
            epoch, t.epochs, metrics["train_loss"], metrics["val_loss"],
            metrics["val_accuracy"], metrics["val_f1"], metrics["epoch_s"],
            metrics["train_samples_per_s"], "  *" if improved else "",
        )  # fmt: skip
        if report is not None:
            progress = checkpoint.Progress(
                epoch, history, best_value, best_epoch, dict(rng.bit_generator.state)
            )

            def write(
                folder: Path,
                progress: checkpoint.Progress = progress,
                best_state: dict[str, torch.Tensor] | None = best_state,
            ) -> None:
                checkpoint.save(folder, model, best_state, optimizer, scheduler, progress)

            report(metrics, write, improved)

    if best_state is not None:
        load_trainable_state(model, best_state)
    best = history[best_epoch - 1] if best_epoch else {}
    return TrialResult(
        status=status,
        message=message,
        best_epoch=best_epoch,
        epochs_run=len(history),
        best=best,
        history=history,
        info=info,
        train_samples_per_s=train_seen / train_time if train_time else 0.0,
        model=model,
    )
