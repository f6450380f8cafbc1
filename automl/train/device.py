"""Where a trial computes: the GPU Ray assigned or the CPU, and the mixed precision it supports."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch

from automl.config.schema import ConfigError


def pick_device(requested: str) -> torch.device:
    """The GPU Ray assigned (it sets CUDA_VISIBLE_DEVICES, so it is cuda:0) or the CPU.
    Cheap: entry points call it before any compute, so `cuda` on a machine without one is a
    one-line error there and not after tokenizing."""
    if requested == "cpu" or not torch.cuda.is_available():
        if requested == "cuda":
            raise ConfigError("config: train.device: cuda, but no CUDA device is visible")
        return torch.device("cpu")
    return torch.device("cuda", 0)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX): only there does CPU
    autocast pay; elsewhere oneDNN emulates bf16 and runs slower than fp32."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def _autocast(device: torch.device, enabled: bool) -> tuple[Any, torch.amp.GradScaler | None]:
    """bf16 autocast where the hardware has it natively (no scaler needed), else fp16 with a
    gradient scaler on GPUs, fp32 on CPUs. Emulated bf16 (pre-Ampere GPUs, CPUs without
    AVX512-BF16/AMX) would run slower than fp32."""
    if enabled and device.type == "cpu" and cpu_has_native_bf16():
        return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)), None
    if not enabled or device.type != "cuda":
        return nullcontext, None
    if torch.cuda.is_bf16_supported(including_emulation=False):
        return (lambda: torch.autocast("cuda", dtype=torch.bfloat16)), None
    return (lambda: torch.autocast("cuda", dtype=torch.float16)), torch.amp.GradScaler("cuda")


def eval_autocast(device: torch.device, autocast: Any) -> Any:
    """The context validation runs in. On the CPU it is fp32, as a `transformers` pipeline
    serves the exported model there, so the scores that pick the best epoch are the export's own
    (bf16 moved the validation loss by ~1e-4); on GPUs the trial's autocast, for speed."""
    return autocast if device.type == "cuda" else nullcontext
