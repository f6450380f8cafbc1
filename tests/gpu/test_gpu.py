"""On a real GPU: mixed precision, checkpoints that move between devices, the memory cap, the
out-of-memory retry and a small sweep sharing one GPU. Run with `make test-gpu`; without CUDA
every test here is skipped (so `make test` stays green on CPU-only machines)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import compose_sweep_config

import automl.train.loop
from automl.config.schema import Config
from automl.data.load import load_task_data
from automl.data.tokenized import PreparedData, tokenize
from automl.search.resources import memory_fraction
from automl.search.trial import limit_gpu_memory, train_with_oom_retry
from automl.train import checkpoint
from automl.train.loop import run_trial

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CUDA = torch.device("cuda", 0)


@pytest.fixture
def gpu_conf(easy_csv_file: Path, tiny_config: Callable[..., Config]) -> Config:
    return tiny_config(
        data__path=str(easy_csv_file), train__device="cuda", train__epochs=2,
        train__mixed_precision=True,
    )  # fmt: skip


@pytest.fixture
def gpu_data(gpu_conf: Config, tokenizer: Any) -> PreparedData:
    return tokenize(load_task_data(gpu_conf.data), tokenizer, gpu_conf.model.max_length)


@pytest.fixture
def no_memory_cap() -> Iterator[None]:
    yield
    torch.cuda.set_per_process_memory_fraction(1.0, CUDA)


def keep_epoch(folder: Path, epoch: int) -> Any:
    def report(metrics: dict[str, float], write: Callable[[Path], None], improved: bool) -> None:
        if metrics["epoch"] == epoch:
            folder.mkdir()
            write(folder)

    return report


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_a_tiny_trial_trains_on_the_gpu_with_autocast(
    gpu_conf: Config,
    gpu_data: PreparedData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    precision: str,
) -> None:
    if precision == "bf16" and not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip("this GPU has no native bf16")
    if precision == "fp16":  # what a pre-Ampere GPU gets: fp16 with a gradient scaler
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    saved = tmp_path / "ckpt"
    dtypes: set[torch.dtype] = set()  # of the linear layers' outputs while training
    linear = torch.nn.functional.linear

    def spy(*args: Any, **kwargs: Any) -> torch.Tensor:
        out = linear(*args, **kwargs)
        if torch.is_grad_enabled():
            dtypes.add(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.functional, "linear", spy)  # (checked on the CPU's bf16)
    result = run_trial(gpu_conf, gpu_data, keep_epoch(saved, 1))
    monkeypatch.setattr(torch.nn.functional, "linear", linear)
    assert result.status == "completed" and result.epochs_run == 2
    # autocast did run: every assertion below held with it switched off too
    assert (torch.bfloat16 if precision == "bf16" else torch.float16) in dtypes, dtypes
    assert next(result.model.parameters()).device.type == "cuda"
    assert all(h["train_loss"] == h["train_loss"] for h in result.history)  # no NaN
    extra = torch.load(saved / checkpoint.OPTIMIZER_FILE, map_location="cpu", weights_only=True)
    assert "cuda_rng" in extra
    assert ("scaler" in extra) == (precision == "fp16")

    resumed = run_trial(gpu_conf, gpu_data, resume_from=saved)  # GPU -> GPU, same run
    assert resumed.history[-1]["val_loss"] == pytest.approx(
        result.history[-1]["val_loss"], rel=1e-2
    )


RESUME_ON_CPU = """
import json, sys
import torch
from conftest import make_tiny_config
from automl.data.load import load_task_data
from automl.data.tokenized import tokenize
from automl.model.load import load_tokenizer
from automl.train.loop import run_trial

assert not torch.cuda.is_available()
conf = make_tiny_config(data__path=sys.argv[1], train__device="cpu", train__epochs=2)
data = tokenize(load_task_data(conf.data), load_tokenizer(conf.model), conf.model.max_length)
result = run_trial(conf, data, resume_from=__import__("pathlib").Path(sys.argv[2]))
print(json.dumps([h["epoch"] for h in result.history]))
"""


def test_a_checkpoint_written_on_the_gpu_resumes_on_a_cpu_only_process(
    gpu_conf: Config, gpu_data: PreparedData, tmp_path: Path, repo_root: Path
) -> None:
    saved = tmp_path / "ckpt"
    run_trial(gpu_conf, gpu_data, keep_epoch(saved, 1))
    done = subprocess.run(
        [sys.executable, "-c", RESUME_ON_CPU, gpu_conf.data.path, str(saved)],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(repo_root / "tests")},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [1.0, 2.0]


def test_the_memory_cap_is_set_on_the_trials_gpu(no_memory_cap: None) -> None:
    limit_gpu_memory(0.5, CUDA)
    total = torch.cuda.get_device_properties(CUDA).total_memory
    expected = memory_fraction(0.5, total)
    assert torch.cuda.get_per_process_memory_fraction(CUDA) == pytest.approx(expected)
    with pytest.raises(torch.cuda.OutOfMemoryError):  # more than the share: refused
        torch.empty(int(0.5 * total), dtype=torch.uint8, device=CUDA)


def test_out_of_memory_on_the_gpu_goes_on_with_smaller_micro_batches(
    gpu_conf: Config,
    gpu_data: PreparedData,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real CUDA out-of-memory error: a micro-batch above 8 in epoch 2 asks the allocator for
    twice the GPU's memory."""
    published: list[float] = []
    real_loss = automl.train.loop.batch_loss
    total = torch.cuda.get_device_properties(CUDA).total_memory

    def loss(model: Any, batch: dict[str, torch.Tensor], weights: Any = None) -> torch.Tensor:
        if len(published) == 1 and len(batch["input_ids"]) > 8:
            torch.empty(2 * total, dtype=torch.uint8, device=CUDA)  # raises, really
        return real_loss(model, batch, weights)

    monkeypatch.setattr(automl.train.loop, "batch_loss", loss)
    conf = gpu_conf
    conf.train.epochs, conf.train.batch_size = 3, 16
    result = train_with_oom_retry(
        conf, gpu_data, lambda metrics, folder: published.append(metrics["epoch"]), None,
        tmp_path / "work",
    )  # fmt: skip
    assert published == [1.0, 2.0, 3.0]
    assert result.epochs_run == 3 and result.status == "completed"
    assert (conf.train.batch_size, conf.train.grad_accum_steps) == (8, 2)


@pytest.mark.slow
def test_two_trials_share_one_gpu(tmp_path: Path) -> None:
    from automl.search.sweep import run_sweep

    conf = compose_sweep_config(
        tmp_path, "experiment=smoke", "data.max_examples=400", "resources.gpus_per_trial=0.5",
        "resources.cpus_per_trial=1", "sweep.num_samples=2", "sweep.max_concurrent=2",
        "pruner=none", f"paths.storage={tmp_path / 'ray'}",
    )  # fmt: skip
    outcome = run_sweep(conf)
    assert len(outcome.records) == 2 and all(r.status != "failed" for r in outcome.records)
    results = list((tmp_path / "ray" / "smoke").glob("*/result.json"))
    assert len(results) == 2, results
    total = torch.cuda.get_device_properties(0).total_memory
    seen = set()
    for path in results:
        for line in path.read_text().splitlines():
            reported = json.loads(line)
            assert reported["device"] == "cuda"
            assert reported["gpu_ids"] != "none"
            assert reported["cuda_visible_devices"] == reported["gpu_ids"]  # Ray's one GPU
            # capped to half the GPU less a CUDA context (Ray's shares are labels only)
            assert reported["gpu_memory_fraction"] == pytest.approx(memory_fraction(0.5, total))
            seen.add(reported["gpu_ids"])
    if torch.cuda.device_count() == 1:
        assert len(seen) == 1  # both trials on the one GPU
