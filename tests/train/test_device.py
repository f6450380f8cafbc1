"""Mixed precision is chosen by what the GPU does natively, not by what torch can emulate."""

from __future__ import annotations

import warnings

import pytest
import torch

from automl.train.device import _autocast

CUDA = torch.device("cuda")


def gpu_with_bf16(native: bool):  # type: ignore[no-untyped-def]
    """torch.cuda.is_bf16_supported of a GPU with bf16 in hardware (native) or only emulated."""

    def is_bf16_supported(including_emulation: bool = True) -> bool:
        return native or including_emulation  # torch's default counts emulation

    return is_bf16_supported


@pytest.mark.parametrize(("native", "dtype"), [(True, torch.bfloat16), (False, torch.float16)])
def test_autocast_uses_bf16_only_where_the_gpu_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, dtype: torch.dtype
) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", gpu_with_bf16(native))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a GradScaler made without CUDA warns and disables itself
        autocast, scaler = _autocast(CUDA, enabled=True)
    assert (scaler is None) == (dtype == torch.bfloat16)  # fp16 needs the loss scaled
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # autocast on "cuda" without CUDA warns
        context = autocast()
    assert context.fast_dtype == dtype


def test_no_autocast_on_the_cpu_or_when_disabled() -> None:
    for device, enabled in [(torch.device("cpu"), True), (CUDA, False)]:
        autocast, scaler = _autocast(device, enabled)
        assert scaler is None
        with autocast():
            assert not torch.is_autocast_enabled("cuda")
