"""Where a trial computes: the GPU Ray assigned or the CPU, and the mixed precision it supports."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch


def pick_device(requested: str) -> torch.device:
    """The GPU Ray assigned (it sets CUDA_VISIBLE_DEVICES, so it is cuda:0) or the CPU."""
    if requested == "cpu" or not torch.cuda.is_available():
        if requested == "cuda":
            raise RuntimeError("train.device=cuda but no CUDA device is visible")
        return torch.device("cpu")
    return torch.device("cuda", 0)


def _autocast(device: torch.device, enabled: bool) -> tuple[Any, torch.amp.GradScaler | None]:
    """bf16 autocast where the GPU has it natively (no scaler needed), else fp16 with a
    gradient scaler. Emulated bf16 (pre-Ampere GPUs) would run slower than fp32."""
    if device.type != "cuda" or not enabled:
        return nullcontext, None
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")
