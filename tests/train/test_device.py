"""Mixed precision is chosen by what the hardware does natively, not by what torch can emulate."""

from __future__ import annotations

import warnings

import pytest
import torch

import automl.train.device as device_module
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


@pytest.mark.parametrize(("native", "dtype"), [(True, torch.bfloat16), (False, None)])
def test_cpu_autocasts_to_bf16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, native: bool, dtype: torch.dtype | None
) -> None:
    monkeypatch.setattr(device_module, "cpu_has_native_bf16", lambda: native)
    autocast, scaler = _autocast(torch.device("cpu"), enabled=True)
    assert scaler is None  # bf16 keeps fp32's exponent range: no loss scaling
    with autocast():
        assert torch.is_autocast_enabled("cpu") == (dtype is not None)
        if dtype is not None:
            assert torch.get_autocast_dtype("cpu") == dtype
            x = torch.ones(4, 4)
            assert (x @ x).dtype == torch.bfloat16  # matmuls run in bf16, weights stay fp32


def test_no_autocast_when_disabled() -> None:
    for device in (torch.device("cpu"), CUDA):
        autocast, scaler = _autocast(device, enabled=False)
        assert scaler is None
        with autocast():
            assert not torch.is_autocast_enabled("cuda")
            assert not torch.is_autocast_enabled("cpu")


def test_validation_on_the_cpu_runs_in_fp32_as_the_export_is_served() -> None:
    from automl.train.device import eval_autocast

    bf16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    with eval_autocast(torch.device("cpu"), bf16)():
        x = torch.ones(4, 4)
        assert (x @ x).dtype == torch.float32
    assert eval_autocast(CUDA, bf16) is bf16  # GPUs keep the trial's autocast
