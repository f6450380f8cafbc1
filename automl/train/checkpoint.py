"""A trial's checkpoint: enough to resume it mid-way, and its best epoch's weights for export.

Written at the end of every epoch (Ray keeps the latest). Only trainable parameters are stored:
small for LoRA, and the frozen rest is rebuilt from the base model. Once a trial has ended the
resume-only files are dropped (`slim`), so a finished trial keeps just its best weights.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from automl.config.paths import read_json_object
from automl.model.load import ModelError
from automl.model.state import load_trainable_state, trainable_state

log = logging.getLogger(__name__)

BEST_FILE = "best.safetensors"  # the best epoch's trainable parameters (what export loads)
LAST_FILE = "last.safetensors"  # the latest epoch's (to resume)
OPTIMIZER_FILE = "optimizer.pt"  # optimizer, scheduler, fp16 scaler and RNG states (to resume)
PROGRESS_FILE = "progress.json"
OUTCOME_FILE = "outcome.json"  # how the trial ended, once it has (`slim`)
RESUME_ONLY = (LAST_FILE, OPTIMIZER_FILE)
PARTIAL_SUFFIX = ".partial"  # a file being copied into Ray's storage (search/storage.py)
_PARTIAL = re.compile(rf"\..+\.[0-9a-f]{{8}}{re.escape(PARTIAL_SUFFIX)}")


@dataclass
class Progress:
    """Where a trial stands after an epoch."""

    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_value: float | None = None
    best_epoch: int = 0
    batch_rng: dict[str, Any] = field(default_factory=dict)  # numpy bit generator state


def save(
    folder: Path,
    model: nn.Module,
    best_state: dict[str, torch.Tensor] | None,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    progress: Progress,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    """Write the checkpoint: tensors and plain values only, so it loads with weights_only."""
    from safetensors.torch import save_file

    def contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.contiguous() for k, v in state.items()}

    save_file(contiguous(trainable_state(model)), str(folder / LAST_FILE))
    if best_state is not None:
        save_file(contiguous(best_state), str(folder / BEST_FILE))
    extra: dict[str, Any] = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    if scaler is not None:
        extra["scaler"] = scaler.state_dict()
    device = _device_of(model)
    if device.type == "cuda":  # dropout masks on the GPU come from its own generator
        extra["cuda_rng"] = torch.cuda.get_rng_state(device)
    torch.save(extra, folder / OPTIMIZER_FILE)
    (folder / PROGRESS_FILE).write_text(json.dumps(asdict(progress)))


def resume(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[Progress, dict[str, torch.Tensor] | None]:
    """Restore model, optimizer, scheduler, scaler and RNG from `save`; returns progress and
    best state. Loads onto the CPU first: the file may come from another GPU or a GPU node
    (the optimizer moves its state to the parameters' device)."""
    from safetensors.torch import load_file

    older = load_trainable_state(model, load_file(str(folder / LAST_FILE)))
    if older:
        raise ModelError(
            f"{folder}: a checkpoint from before 2026-12-06 ({older[0]} was frozen then): it "
            "exports, but resumes only with that version"
        )
    extra = torch.load(folder / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    try:
        optimizer.load_state_dict(extra["optimizer"])
    except ValueError:  # another set of trainable tensors than the optimizer saved
        raise ModelError(
            f"{folder}: the checkpoint trained other tensors than this version trains (before "
            "2026-12-06 DeBERTa's and MPNet's relative-position tables trained under frozen "
            "layers): it exports, but resumes only with the version that wrote it"
        ) from None
    scheduler.load_state_dict(extra["scheduler"])
    torch.set_rng_state(extra["torch_rng"])
    if scaler is not None and "scaler" in extra:
        scaler.load_state_dict(extra["scaler"])
    device = _device_of(model)
    if device.type == "cuda" and "cuda_rng" in extra:
        torch.cuda.set_rng_state(extra["cuda_rng"], device)
    progress = Progress(**json.loads((folder / PROGRESS_FILE).read_text()))
    best = load_file(str(folder / BEST_FILE)) if (folder / BEST_FILE).is_file() else None
    return progress, best


def _device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def load_best(model: nn.Module, folder: Path) -> Progress:
    """Load the best epoch's weights into a freshly built model (for export)."""
    from safetensors.torch import load_file

    older = load_trainable_state(model, load_file(str(folder / BEST_FILE)))
    if older:  # a warning: a checkpoint damaged since would lack them too
        log.warning(
            "%s: the checkpoint lacks %d trainable tensor(s), %s first: exported as they "
            "started (a checkpoint from before they trained)", folder, len(older), older[0],
        )  # fmt: skip
    return Progress(**json.loads((folder / PROGRESS_FILE).read_text()))


def slim(folder: Path, outcome: dict[str, str] | None = None) -> None:
    """Drop what only resuming needs: a finished trial keeps its best weights alone, and
    `outcome`, how it ended (for a resume, should Ray restart it: see `read_outcome`)."""
    if outcome is not None:  # into Ray's stored checkpoint, in place: all of it or nothing
        partial = folder / partial_name(OUTCOME_FILE)  # a kill's leftover: drop_partial_copies
        partial.write_text(json.dumps(outcome))
        partial.replace(folder / OUTCOME_FILE)
    for name in RESUME_ONLY:
        (folder / name).unlink(missing_ok=True)
    drop_partial_copies(folder)  # a copy a kill cut short


def partial_name(name: str) -> str:
    """The hidden name a file is written under until it is complete (search/storage.py)."""
    return f".{name}.{uuid.uuid4().hex[:8]}{PARTIAL_SUFFIX}"


def drop_partial_copies(folder: Path) -> None:
    """Delete the partial files a kill left anywhere under `folder` (a checkpoint's, or an
    experiment's before Ray restores it: no writer is alive)."""
    for path in folder.rglob(f".*{PARTIAL_SUFFIX}"):
        if _PARTIAL.fullmatch(path.name) and path.is_file():
            path.unlink(missing_ok=True)


def read_outcome(folder: Path) -> dict[str, str] | None:
    """How the trial of a slimmed checkpoint ended ({"status", "reason"}), if recorded; None
    for a file cut short (written in place before, a kill left it empty: every resume failed
    on it), as if the kill had come before it."""
    path = folder / OUTCOME_FILE
    try:
        return read_json_object(path) if path.is_file() else None
    except ValueError:  # cut short, or not an object
        return None


def is_slim(folder: Path) -> bool:
    """A checkpoint whose trial had ended: only the driver drops the resume files, and only once
    the trial has ended (Ray may still resume it, if a kill came before it saved that end)."""
    return (folder / PROGRESS_FILE).is_file() and not (folder / LAST_FILE).is_file()


def read_progress(folder: Path) -> Progress | None:
    """The progress a checkpoint folder holds (its trial's history so far), if any."""
    path = folder / PROGRESS_FILE
    return Progress(**json.loads(path.read_text())) if path.is_file() else None
