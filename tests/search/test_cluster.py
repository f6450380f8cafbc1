"""Clusters and GPUs on a CPU-only machine: a two-node Ray cluster with fake GPUs, the shared
storage check, the GPU memory estimator, gradient accumulation with the OOM retry, and a real
MLflow tracking server."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import compose_sweep_config, sweep_runs
from mlflow.tracking import MlflowClient
from torch import nn

from automl.config.schema import CONF_DIR, Config, ConfigError, ModelConfig, PeftConfig
from automl.data.load import load_task_data
from automl.data.tokenized import tokenize
from automl.model.build import build_model, count_parameters
from automl.model.load import load_model_config
from automl.model.state import trainable_state
from automl.search.plan import check_storage, init_ray, plan_sweep
from automl.search.resources import (
    CUDA_OVERHEAD_BYTES,
    GIB,
    ModelShape,
    block_activation_bytes,
    estimate_memory,
    memory_fraction,
    parameter_counts,
    pick_gpu_share,
    sweep_estimate,
)
from automl.search.stopping import OverfitRule, build_stopping
from automl.search.sweep import run_sweep
from automl.search.trial import (
    limit_gpu_memory,
    next_micro_batch,
    run_with_oom_retry,
    train_with_oom_retry,
)
from automl.train import checkpoint
from automl.train.loop import forward_batch

GPUS_PER_NODE = 2
CPUS_PER_NODE = 2


def compose_config(tmp: Path, *overrides: str, store: bool = True) -> Config:
    return compose_sweep_config(
        tmp, "experiment=smoke", "data.max_examples=400", *overrides, store=store
    )


# ---------------------------------------------------------------------------------------------
# The GPU memory estimator

TINY = {
    "bert": ModelConfig(source="tiny", tiny_arch="bert", max_length=64),
    "gpt2": ModelConfig(source="tiny", tiny_arch="gpt2", max_length=64),
}
LABELS = ["a", "b", "c"]


@pytest.mark.parametrize("arch", ["bert", "gpt2"])
@pytest.mark.parametrize(
    ("rank", "frozen", "targets"),
    [(0, 0, None), (0, 1, None), (0, 2, None), (8, 0, None), (8, 1, None), (4, 0, None),
     (8, 2, None), (4, 0, "all")],
)  # fmt: skip
def test_parameter_terms_equal_the_built_model(
    arch: str, rank: int, frozen: int, targets: str | None
) -> None:
    modules = {"bert": ["query", "key", "value"], "gpt2": ["c_attn", "c_fc", "c_proj"]}[arch]
    target_modules = modules if targets == "all" else None
    model, _ = build_model(
        TINY[arch], PeftConfig(lora_rank=rank, frozen_layers=frozen, target_modules=target_modules),
        LABELS, 0,
    )  # fmt: skip
    shape = ModelShape.from_hf_config(load_model_config(TINY[arch]))
    counted = parameter_counts(
        shape, num_labels=len(LABELS), lora_rank=rank, frozen_layers=frozen,
        target_modules=target_modules,
    )  # fmt: skip
    assert counted == count_parameters(model)
    estimate = estimate_memory(
        shape, num_labels=3, lora_rank=rank, frozen_layers=frozen, batch_size=4, seq_len=64,
        target_modules=target_modules,
    )  # fmt: skip
    trainable, total = counted
    assert (estimate.weights, estimate.gradients, estimate.optimizer) == (
        4 * total,
        4 * trainable,
        8 * trainable,
    )


def _estimate(**kw: Any) -> Any:
    shape = ModelShape.from_hf_config(load_model_config(TINY["bert"]))
    args = {"num_labels": 3, "lora_rank": 8, "frozen_layers": 0, "batch_size": 16, "seq_len": 64}
    return estimate_memory(shape, **{**args, **kw})


def test_estimate_shrinks_with_depth_and_rank_and_grows_linearly_with_batch() -> None:
    for rank in (0, 8):
        by_depth = [_estimate(lora_rank=rank, frozen_layers=k).total for k in (0, 1, 2)]
        assert by_depth[0] > by_depth[1] > by_depth[2]
    by_rank = [_estimate(lora_rank=r).total for r in (16, 8, 4, 1)]
    assert by_rank == sorted(by_rank, reverse=True) and len(set(by_rank)) == 4

    one, two, four = (_estimate(batch_size=b) for b in (8, 16, 32))
    assert two.activations == 2 * one.activations and four.activations == 4 * one.activations
    assert four.total - two.total == 2 * (two.total - one.total)  # only the activations grow
    fixed = ("weights", "gradients", "optimizer", "overhead")
    assert [getattr(one, k) for k in fixed] == [getattr(four, k) for k in fixed]


def test_block_activations_match_the_paper_formula() -> None:
    # Korthikanti et al. 2022: s b h (34 + 5 a s / h) bytes at 16 bits with i = 4 h
    h, a, s, b = 768, 12, 512, 8
    shape = ModelShape("bert", 30522, h, 12, a, 4 * h, 512, 2)
    assert block_activation_bytes(shape, b, s, "bfloat16") == s * b * h * 34 + 5 * a * s * s * b


def test_auto_picks_the_smallest_share_that_fits() -> None:
    cases = [  # (needed GiB, GPU GiB, GPUs in the cluster, expected share); headroom 1.25
        (1.0, 16, 8, 0.125),  # 1.25 <= 2
        (1.7, 16, 8, 0.25),  # 2.125 > 2
        (3.2, 16, 8, 0.25),  # 4.0 <= 4
        (3.3, 16, 8, 0.5),
        (6.0, 16, 8, 0.5),
        (6.5, 16, 8, 1.0),
        (6.5, 80, 1, 0.125),
        (40.0, 16, 8, 1.0),  # nothing fits: whole GPUs, the OOM retry does the rest
        (1.0, 16, 0, 0.0),  # no GPUs: CPU trials
    ]
    for need, memory, gpus, share in cases:
        assert pick_gpu_share(int(need * GIB), memory, gpus) == share, (need, memory, gpus)


def test_memory_fraction_is_the_share_less_the_cuda_context() -> None:
    # a half of a 16 GiB GPU: 8 GiB, of which the context takes 0.5 -> the allocator gets 7.5
    assert memory_fraction(0.5, 16 * GIB, GIB // 2) == 7.5 / 16
    assert memory_fraction(0.25, 80 * GIB, GIB // 2) == 19.5 / 80
    assert memory_fraction(0.125, 80 * GIB) == (10 - CUDA_OVERHEAD_BYTES / GIB) / 80
    assert memory_fraction(1.0, 16 * GIB, GIB // 2) is None  # a whole GPU: no cap
    assert memory_fraction(0.0, 16 * GIB, GIB // 2) is None  # no GPU
    with pytest.raises(ValueError, match="resources.gpus_per_trial"):
        memory_fraction(0.03, 16 * GIB, GIB)  # 0.48 GiB cannot hold a 1 GiB context


def test_the_memory_cap_goes_on_the_trials_device(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the trial sets, recorded at torch's door (this machine has no GPU to set it on)."""
    calls: list[tuple[float, Any]] = []
    props = type("Props", (), {"total_memory": 16 * GIB})()
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    monkeypatch.setattr(
        torch.cuda, "set_per_process_memory_fraction", lambda f, device: calls.append((f, device))
    )
    held = {torch.device("cuda", 1): 0.46875}  # what the allocator would answer after the cap
    monkeypatch.setattr(
        torch.cuda, "get_per_process_memory_fraction", lambda device: held.get(device, 1.0)
    )
    assert limit_gpu_memory(0.5, torch.device("cuda", 1)) == 0.46875  # reported with the trial
    assert limit_gpu_memory(0.5, torch.device("cpu")) is None  # a CPU trial: nothing to cap
    assert limit_gpu_memory(1.0, torch.device("cuda", 0)) == 1.0  # a whole GPU: nothing to cap
    assert calls == [(memory_fraction(0.5, 16 * GIB), torch.device("cuda", 1))]
    # torch 2.4 and 2.5, which pyproject allows, have no getter: what was set is reported
    monkeypatch.delattr(torch.cuda, "get_per_process_memory_fraction")
    assert limit_gpu_memory(0.5, torch.device("cuda", 0)) == memory_fraction(0.5, 16 * GIB)
    assert limit_gpu_memory(1.0, torch.device("cuda", 0)) == 1.0


@pytest.mark.parametrize("gpus", ["2", "4"])
def test_more_than_one_gpu_per_trial_is_refused_before_compute(tmp_path: Path, gpus: str) -> None:
    """A trial trains on one GPU (no data parallelism): reserving several would waste them."""
    with pytest.raises(ConfigError, match="resources.gpus_per_trial") as error:
        compose_config(tmp_path, f"resources.gpus_per_trial={gpus}")
    assert "\n" not in str(error.value) and "one GPU" in str(error.value)


@pytest.mark.slow  # a sweep, a cluster or a CLI process
def test_a_trial_given_no_gpu_sees_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine whose GPUs every process sees, a trial that Ray gave 0 GPUs must not use
    them (Ray 2.60 leaves CUDA_VISIBLE_DEVICES alone for such a trial)."""
    import ray

    ray.shutdown()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # inherited by Ray's workers
    ray.init(
        address="local", num_cpus=2, num_gpus=2, include_dashboard=False, logging_level="WARNING"
    )
    try:
        conf = compose_config(
            tmp_path,
            "resources.gpus_per_trial=0",
            "resources.cpus_per_trial=1",
            "sweep.num_samples=1",
            "pruner=none",
            f"paths.storage={tmp_path / 'ray'}",
        )
        outcome = run_sweep(conf)
    finally:
        ray.shutdown()
    assert [r.status for r in outcome.records] != ["failed"]
    (result,) = (tmp_path / "ray" / "smoke").glob("*/result.json")
    for line in result.read_text().splitlines():
        reported = json.loads(line)
        assert reported["gpu_ids"] == "none"
        assert reported["cuda_visible_devices"] == ""
        assert reported["device"] == "cpu"


def test_sweep_estimate_sizes_the_largest_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import automl.search.plan

    # a machine with a GPU: without one, `auto` settles on 0 before the estimate shows
    monkeypatch.setattr(automl.search.plan, "local_resources", lambda num_cpus: (2.0, 1))
    conf = compose_config(tmp_path, "model=minilm", "train.batch_size=64", "model.max_length=256")
    space = plan_sweep(compose_config(tmp_path)).space  # smoke: rank {0, 8}, depth 0..blocks
    need = sweep_estimate(conf, space)
    assert need.trainable_params == need.total_params  # full fine-tuning, nothing frozen
    assert 1 < need.gib < 8  # 22M parameters, 6 blocks of 64 x 256 tokens: a few GiB
    conf.resources.gpus_per_trial = "auto"
    conf.resources.gpu_memory_gb = 16  # as set: not this machine's GPU, where it has one
    assert plan_sweep(conf).gpus_per_trial == pick_gpu_share(need.total, 16, 1)
    conf.train.batch_size = None  # left to the data: sized for the largest automatic batch
    open_batch = sweep_estimate(conf, space)
    conf.train.batch_size = 32
    assert open_batch == sweep_estimate(conf, space) != need


def test_sweep_estimate_assumes_full_fine_tuning_only_where_rank_0_can_be_drawn(
    tmp_path: Path,
) -> None:
    """Ranks [8, 16] were sized as full fine-tuning: half as many trials a GPU under `auto`."""
    conf = compose_config(tmp_path, "model=minilm", "train.batch_size=32")
    for choices, full in (("[8, 16]", False), ("[0, 16]", True)):
        space_file = tmp_path / "ranks.yaml"
        space_file.write_text(f"peft.lora_rank: {{type: categorical, choices: {choices}}}\n")
        space = plan_sweep(replace(conf, search_space=str(space_file))).space
        need = sweep_estimate(conf, space)
        assert (need.trainable_params == need.total_params) == full, choices


def test_sweep_estimate_sizes_a_searched_precision_for_fp32(tmp_path: Path) -> None:
    """train.mixed_precision searched over [true, false] was sized for bf16 alone: the fp32
    trials, with about twice the activations, met the share's cap."""
    conf = compose_config(tmp_path, "model=minilm", "train.batch_size=32",
                          "train.mixed_precision=true")  # fmt: skip
    space_file = tmp_path / "precision.yaml"
    space_file.write_text("train.mixed_precision: {type: categorical, choices: [true, false]}\n")
    searched = sweep_estimate(conf, plan_sweep(replace(conf, search_space=str(space_file))).space)
    space_file.write_text("train.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-4}\n")
    bf16 = sweep_estimate(conf, plan_sweep(replace(conf, search_space=str(space_file))).space)
    assert searched.total > bf16.total


# ---------------------------------------------------------------------------------------------
# Gradient accumulation and the OOM retry


@pytest.mark.parametrize("class_weights", ["none", "balanced"])
def test_accumulated_micro_batches_match_the_full_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, class_weights: str
) -> None:
    import automl.train.loop as training
    from automl.data.prepare import prepare_data

    def no_dropout(*args: Any, **kwargs: Any) -> Any:
        model, info = build_model(*args, **kwargs)
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0
        return model, info

    monkeypatch.setattr(training, "build_model", no_dropout)
    # fp32: bf16 autocast's rounding (8 bits of mantissa) is far above the float noise meant here
    # with class weights too: torch's weighted mean divides by each micro-batch's own weight
    # sum, so each micro-batch's share of the step is its weight, not its count
    conf = compose_config(
        tmp_path, "train.epochs=1", "train.num_threads=1", "train.mixed_precision=false",
        f"train.class_weights={class_weights}",
    )  # fmt: skip
    data = prepare_data(conf)
    weights = []
    for micro, accum in ((16, 1), (8, 2), (4, 4), (16, 2)):
        conf.train.batch_size, conf.train.grad_accum_steps = micro, accum
        weights.append(trainable_state(training.run_trial(conf, data).model))
    full, *split, bigger = weights

    def gap(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
        return max(float((a[k] - b[k]).abs().max()) for k in a)

    # the same 16-example steps, however they are split: equal up to float noise (padding to a
    # micro-batch's own length changes the last bits, and Adam amplifies tiny gradients)
    # while a different step batch moves the weights by a good share of a step (lr 1e-2)
    lr = conf.train.learning_rate
    assert all(gap(full, other) < 0.01 * lr for other in split), [gap(full, o) for o in split]
    assert gap(full, bigger) > 0.1 * lr


def test_next_micro_batch_halves_down_to_one() -> None:
    cases = [((32, 1), (16, 2)), ((16, 2), (8, 4)), ((2, 8), (1, 16)), ((3, 1), (1, 3)),
             ((5, 2), (2, 5)), ((1, 32), None),
             # an odd micro-batch: the largest divisor of the step batch up to half of it (the
             # step batch rounded up to 2 x 3 = 6 before, with 5 length groups: 1 per group)
             ((5, 1), (1, 5)), ((7, 3), (3, 7)), ((6, 1), (3, 2)), ((24, 1), (12, 2))]  # fmt: skip
    for (batch, accum), expected in cases:
        assert next_micro_batch(batch, accum) == expected
        if expected is not None:  # the same step batch, at most half the memory
            assert expected[0] * expected[1] == batch * accum and expected[0] <= batch // 2


@pytest.mark.parametrize(
    ("batch", "accum", "groups", "expected"),
    [
        (32, 1, 4, (4, 8)),
        (16, 1, 2, (4, 4)),
        (32, 2, 8, (4, 16)),
        (4, 8, 4, (2, 16)),
        (8, 4, 4, (4, 8)),
        (1, 8, 8, None),
    ],  # fmt: skip
)
def test_next_micro_batch_halves_the_forward_pass_of_length_groups(
    batch: int, accum: int, groups: int, expected: tuple[int, int] | None
) -> None:
    """Passes are cut at the length groups' edges: 32 x 1 in 4 groups runs passes of 8, and
    the retry at 16 x 2 ran the same 8 (and failed again, after training up to it)."""
    conf = Config()
    conf.train.length_groups_per_step = groups
    conf.train.batch_size, conf.train.grad_accum_steps = batch, accum
    before = forward_batch(conf.train, batch)
    assert next_micro_batch(batch, accum, groups) == expected
    if expected is not None:
        conf.train.batch_size, conf.train.grad_accum_steps = expected
        assert forward_batch(conf.train, expected[0]) <= before // 2
        assert expected[0] * expected[1] == batch * accum


def test_out_of_memory_retries_with_smaller_micro_batches(tmp_path: Path) -> None:
    conf = compose_config(tmp_path, "train.batch_size=16")
    tried: list[tuple[int, int]] = []

    def attempt(fits_at: int) -> Any:
        def run(c: Config) -> str:
            tried.append((c.train.batch_size, c.train.grad_accum_steps))
            if c.train.batch_size > fits_at:
                raise torch.cuda.OutOfMemoryError("CUDA out of memory")
            return "done"

        return run

    assert run_with_oom_retry(conf, attempt(fits_at=4)) == "done"  # type: ignore[arg-type]
    assert tried == [(16, 1), (8, 2), (4, 4)]
    assert conf.train.eval_batch_size == 32  # 128 halved with each retry: OOM may be in eval
    tried.clear()
    with pytest.raises(torch.cuda.OutOfMemoryError):
        run_with_oom_retry(conf, attempt(fits_at=0))  # type: ignore[arg-type]
    # at micro-batch 1 the evaluation batch still halves (32 -> 16, 8, 4, 2, 1), then it fails
    assert tried == [(4, 4), (2, 8)] + [(1, 16)] * 4
    assert conf.train.eval_batch_size == 1
    # a CUDA library that cannot allocate (cuBLAS's workspace on a full shared GPU) is memory
    # too; any other error is not retried
    errors = [RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate")]

    def library_oom(c: Config) -> str:
        tried.append((c.train.batch_size, c.train.grad_accum_steps))
        if errors:
            raise errors.pop()
        return "done"

    tried.clear()
    assert (
        run_with_oom_retry(compose_config(tmp_path, "train.batch_size=16"), library_oom) == "done"
    )  # type: ignore[arg-type]
    assert tried == [(16, 1), (8, 2)]
    errors.append(RuntimeError("boom"))
    with pytest.raises(RuntimeError, match="boom"):
        run_with_oom_retry(compose_config(tmp_path, "train.batch_size=16"), library_oom)  # type: ignore[arg-type]


def test_out_of_memory_in_evaluation_at_micro_batch_1_halves_the_evaluation_batch(
    tmp_path: Path,
) -> None:
    """Training fits one text at a time, validation's 256 do not: the trial failed without
    a retry, since the training pass could not shrink."""
    conf = compose_config(tmp_path, "train.batch_size=1", "train.eval_batch_size=256")
    seen: list[int] = []

    def evaluation_too_big(c: Config) -> str:
        seen.append(c.train.eval_batch_size)
        if c.train.eval_batch_size > 64:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory")
        return "done"

    assert run_with_oom_retry(conf, evaluation_too_big) == "done"  # type: ignore[arg-type]
    assert seen == [256, 128, 64]
    assert (conf.train.batch_size, conf.train.grad_accum_steps) == (1, 1)


def test_out_of_memory_goes_on_from_the_last_epoch_with_smaller_micro_batches(
    easy_csv_file: Path,
    tiny_config: Callable[..., Config],
    tokenizer: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """The real loop runs out of memory once, on a full micro-batch in epoch 2: the retry goes
    on from epoch 1's checkpoint with half the micro-batch; every epoch is reported once."""
    import automl.train.loop

    conf = tiny_config(data__path=str(easy_csv_file), train__epochs=3, train__batch_size=16)
    data = tokenize(load_task_data(conf.data), tokenizer, conf.model.max_length)
    published: list[tuple[dict[str, float], set[str]]] = []
    micro_batches: list[tuple[int, int]] = []  # (epoch being trained, size)
    raised_at: list[int] = []  # index into micro_batches
    real_loss = automl.train.loop.batch_loss

    def loss_that_runs_out_of_memory_once(
        model: nn.Module, batch: dict[str, Any], weights: Any = None
    ) -> Any:
        epoch, size = len(published) + 1, len(batch["input_ids"])
        micro_batches.append((epoch, size))
        if epoch == 2 and size > 8 and micro_batches.count((2, size)) == 3:
            raised_at.append(len(micro_batches) - 1)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (a test)")
        return real_loss(model, batch, weights)

    monkeypatch.setattr(automl.train.loop, "batch_loss", loss_that_runs_out_of_memory_once)

    def publish(metrics: dict[str, float], folder: Path) -> None:
        published.append((metrics, {p.name for p in folder.iterdir()}))

    result = train_with_oom_retry(conf, data, publish, None, tmp_path / "work")

    assert [m["epoch"] for m, _ in published] == [1.0, 2.0, 3.0]  # each once, in order
    assert all(checkpoint.LAST_FILE in files for _, files in published)
    assert result.epochs_run == 3 and [h["epoch"] for h in result.history] == [1.0, 2.0, 3.0]
    assert result.history[0] == published[0][0]  # epoch 1 was not trained again
    assert (conf.train.batch_size, conf.train.grad_accum_steps) == (8, 2)
    assert max(size for epoch, size in micro_batches if epoch == 1) == 16
    assert len(raised_at) == 1
    after_oom = micro_batches[raised_at[0] + 1 :]
    assert after_oom and max(size for _, size in after_oom) <= 8
    assert {epoch for epoch, _ in after_oom} == {2, 3}
    assert [p.name for p in (tmp_path / "work").iterdir()] == ["epoch-3"]  # only the latest kept


def test_asha_counts_epochs() -> None:
    """ASHA's rungs are epochs: a trial resumed or retried mid-way reports its real epoch,
    while Ray's training_iteration counts reports since the process started."""
    rule = OverfitRule()
    _, scheduler = build_stopping("asha", rule, max_t=4, grace_period=1, reduction_factor=2)
    assert scheduler is not None and scheduler._time_attr == "epoch"  # no public getter


# ---------------------------------------------------------------------------------------------
# A real MLflow tracking server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    with _serving(tmp_path) as url:
        yield url


@contextlib.contextmanager
def _serving(tmp_path: Path, **env: str) -> Iterator[str]:
    port = _free_port()
    mlflow = Path(sys.executable).parent / "mlflow"
    server = subprocess.Popen(
        [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "artifacts"), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
        env={**os.environ, "MLFLOW_TRACKING_URI": "", **env},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, "mlflow server exited"
            assert time.time() < deadline, "mlflow server did not come up in 60 s"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow  # a sweep, a cluster or a CLI process
def test_sweep_logs_to_a_tracking_server(mlflow_server: str, tmp_path: Path) -> None:
    import ray

    ray.shutdown()  # a local instance, not the cluster of the tests above
    conf = compose_config(
        tmp_path,
        f"tracking.uri={mlflow_server}",
        "sweep.num_samples=2",
        "ray.num_cpus=2",
        store=False,
    )
    outcome = run_sweep(conf)
    client = MlflowClient(tracking_uri=mlflow_server)
    parents, children = sweep_runs(mlflow_server, "smoke")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert {c.data.tags["automl.trial_id"] for c in children} == {
        r.trial_id for r in outcome.records
    }
    artifacts = {a.path for a in client.list_artifacts(parents[0].info.run_id)}
    assert {"config.json", "summary.json"} <= artifacts
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to a local store


@pytest.mark.slow  # a server process
def test_a_server_refusing_the_host_name_says_how_to_allow_it(tmp_path: Path) -> None:
    """MLflow 3's server answers requests addressed to localhost and private IPs only: one by
    the head node's name passed the /health check and was refused with MLflow's own words."""
    from automl.tracking.runs import check_experiment
    from automl.tracking.uri import check_reachable

    pytest.importorskip("mlflow.server.security_utils")  # MLflow's host check (3.17 has it)
    hosts = {"MLFLOW_SERVER_ALLOWED_HOSTS": "head-node:*"}
    with _serving(tmp_path, MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE="false", **hosts) as url:
        check_reachable(url)  # /health answers any name
        with pytest.raises(ConfigError, match=r"Invalid Host header\): start it with --allowed"):
            check_experiment(url, "smoke")


# ---------------------------------------------------------------------------------------------
# Shipped examples


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF_DIR / "cluster").glob("*.yaml")))
def test_cluster_configs_compose(name: str, tmp_path: Path) -> None:
    conf = compose_config(tmp_path, f"cluster={name}")
    assert conf.ray.address == "auto"
    assert conf.paths.storage and conf.paths.storage_shared
    check_storage(conf.paths.storage, conf.paths.storage_shared, nodes=2)


def test_example_cluster_launcher_yaml_is_complete() -> None:
    import yaml

    path = CONF_DIR.parent / "cluster" / "example-cluster.yaml"
    spec = yaml.safe_load(path.read_text())
    assert {"cluster_name", "provider", "available_node_types", "head_node_type"} <= set(spec)
    assert spec["head_node_type"] in spec["available_node_types"]
    assert any("ray start --head" in c for c in spec["head_start_ray_commands"])
    # a failed mount stops `ray up` (`|| true` left each node a local /shared of its own);
    # the head's AWS autoscaler imports boto3, which `make install` does not put in
    mount = [c for c in spec["setup_commands"] if "mount -t nfs" in c]
    assert mount and not any("|| true" in c for c in mount)
    assert any("boto3" in c for c in spec["head_setup_commands"])


# ---------------------------------------------------------------------------------------------
# A two-node cluster with fake GPUs (last in the file: the cluster lives until the module ends)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    import ray
    from ray.cluster_utils import Cluster

    ray.shutdown()
    node = {"num_cpus": CPUS_PER_NODE, "num_gpus": GPUS_PER_NODE}
    two_nodes = Cluster(initialize_head=True, head_node_args=node)
    two_nodes.add_node(**node)
    two_nodes.wait_for_nodes()
    # Cluster advertises itself to every ray.init() on the machine; the tests pass its address
    from ray._common.utils import reset_ray_address

    reset_ray_address()
    yield two_nodes
    ray.shutdown()
    two_nodes.shutdown()


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = peak = 0
    for _, step in events:  # at a tie, an end (-1) sorts before a start
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.slow  # a sweep, a cluster or a CLI process
@pytest.mark.skipif(
    torch.cuda.is_available(), reason="fake GPU ids: a trial given id 0 would train on the real one"
)
def test_sweep_places_trials_on_both_nodes_and_their_gpus(
    cluster: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import ray

    caplog.set_level(logging.WARNING, logger="automl")

    share = 0.5
    conf = compose_config(
        tmp_path,
        f"ray.address={cluster.address}",
        f"resources.gpus_per_trial={share}",
        "resources.cpus_per_trial=1",
        "sweep.num_samples=4",
        "sweep.max_concurrent=4",
        "pruner=none",
        f"paths.storage={tmp_path / 'ray'}",
        "paths.storage_shared=true",  # both fake nodes share this disk
    )
    outcome = run_sweep(conf)

    # connecting to a running cluster leaves it running (and the driver connected)
    assert ray.is_initialized()
    node_ids = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(node_ids) == 2
    records = outcome.records
    assert len(records) == 4 and all(r.status != "failed" for r in records)
    assert {r.node_id for r in records} == node_ids  # both nodes got trials

    # each trial saw exactly the one GPU Ray gave it, and computed on the CPU
    results = list((tmp_path / "ray" / "smoke").glob("*/result.json"))
    assert len(results) == 4
    for path in results:
        for line in path.read_text().splitlines():
            reported = json.loads(line)
            assert reported["gpu_ids"] in {str(g) for g in range(GPUS_PER_NODE)}
            assert reported["cuda_visible_devices"] == reported["gpu_ids"]
            assert reported["device"] == "cpu"
            assert reported["node_id"] in node_ids
    # ... which the sweep records, says (a GPU share that found no CUDA), and exports as such
    assert {r.device for r in records} == {"cpu"}
    fell_back = [m for m in caplog.messages if "but trains on the CPU" in m]
    assert len(fell_back) == 4, caplog.messages  # once per trial
    assert outcome.export_dir is not None
    provenance = json.loads((outcome.export_dir / "provenance.json").read_text())
    assert provenance["trained_on"] == "cpu"  # not "cuda": automl-reproduce trusts this

    # never more trials at once than a node's CPUs and fake GPUs allow
    per_node = min(CPUS_PER_NODE / conf.resources.cpus_per_trial, GPUS_PER_NODE / share)
    for node_id in node_ids:
        spans = [(r.started, r.started + r.wall_s) for r in records if r.node_id == node_id]
        assert 1 <= _max_overlap(spans) <= per_node
        for gpu in range(GPUS_PER_NODE):
            on_gpu = [
                (r.started, r.started + r.wall_s)
                for r in records
                if r.node_id == node_id and r.gpu_ids == str(gpu)
            ]
            assert _max_overlap(on_gpu) <= 1 / share

    # MLflow child runs say where each trial ran
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("smoke")
    assert experiment is not None
    children = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`automl.role` = 'trial'"
    )
    by_trial = {r.trial_id: r for r in records}
    assert len(children) == 4
    assert {c.data.tags["node_id"] for c in children} == node_ids
    for child in children:
        record = by_trial[child.data.tags["automl.trial_id"]]
        assert child.data.tags["node_id"] == record.node_id
        assert child.data.tags["gpu_ids"] == record.gpu_ids
        assert child.data.tags["device"] == "cpu"
        assert child.data.tags["node_ip"] == record.node_ip != ""


def test_multi_node_sweep_needs_shared_storage(cluster: Any, tmp_path: Path) -> None:
    address = f"ray.address={cluster.address}"
    for storage in ([], [f"paths.storage={tmp_path / 'local'}"]):
        conf = compose_config(tmp_path, address, "tracking.enabled=false", *storage)
        with pytest.raises(ConfigError, match=r"^config: paths\.storage: .* 2 nodes") as err:
            run_sweep(conf)
        assert "\n" not in str(err.value)
    assert not (tmp_path / "outputs" / "smoke" / "ray").exists()  # failed before training
    assert not (tmp_path / "local").exists()


def test_storage_is_shared_only_when_marked() -> None:
    check_storage(None, shared=False, nodes=1)  # one node: its own disk is fine
    check_storage("/mnt/nfs/ray", shared=True, nodes=3)
    check_storage("s3://bucket/ray", shared=False, nodes=3)
    check_storage("file:///mnt/nfs/ray", shared=True, nodes=3)
    # a file:// URI names a folder on each node's own disk unless the user says it is shared
    with pytest.raises(ConfigError, match=r"^config: paths\.storage: 'file:///mnt/x' is a local"):
        check_storage("file:///mnt/x", shared=False, nodes=3)


def test_a_file_uri_naming_a_host_is_refused_not_read_as_a_relative_folder() -> None:
    """`file://nfs-host/exports/ray` was read as the folder `nfs-host/exports/ray` below the
    working directory: every node wrote into its own."""
    from automl.search.plan import _storage_path

    shared = Path("/mnt/nfs/ray").resolve()
    assert _storage_path("file:///mnt/nfs/ray") == shared
    assert _storage_path("file://localhost/mnt/nfs/ray") == shared
    assert _storage_path("file:/mnt/nfs/ray") == shared  # one slash: read as ./file:/mnt/...
    assert _storage_path("file:///mnt/ray%20results") == Path("/mnt/ray results").resolve()
    with pytest.raises(ConfigError, match=r"^config: paths\.storage: .* names the host 'nfs-h"):
        _storage_path("file://nfs-host/exports/ray")
    with pytest.raises(ConfigError, match=r"^config: paths\.storage: 'file://' names no folder"):
        _storage_path("file://")


def test_auto_gpu_share_needs_gpus_in_the_cluster(
    cluster: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import ray

    conf = compose_config(
        tmp_path,
        f"ray.address={cluster.address}",
        "resources.gpus_per_trial=auto",
        "paths.storage_shared=true",
    )
    plan = plan_sweep(conf)
    assert plan.gpus_per_trial == 0.125  # a tiny BERT fits the smallest share
    init_ray(conf, plan)
    assert plan.gpus_per_trial == 0.125  # the fake GPUs count
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 4.0})
    with caplog.at_level("WARNING"):
        init_ray(conf, plan)
    assert plan.gpus_per_trial == 0.0  # no GPUs: trials run on CPUs
    # loudly, on a joined cluster: its GPU workers may still be starting
    assert "the whole sweep trains on CPUs" in caplog.text
    cuda = replace(conf, train=replace(conf.train, device="cuda"))  # ... which cuda cannot
    with pytest.raises(ConfigError, match=r"gpus_per_trial is auto, and the cluster has no GPU"):
        init_ray(cuda, plan)


class _FakeNvml:
    """NVML on a machine with an 80 GiB and a 24 GiB GPU (PCI order 0, 1; UUIDs GPU-a, GPU-b),
    MIG enabled on the cards listed in `mig`."""

    class NVMLError(Exception):
        pass

    TOTALS = {0: 80 * 1024**3, 1: 24 * 1024**3}
    UUIDS = {"GPU-a": 0, "GPU-b": 1}

    def __init__(self) -> None:
        self.mig: set[int] = set()

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return len(self.TOTALS)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:
        if uuid not in self.UUIDS:
            raise self.NVMLError(uuid)
        return self.UUIDS[uuid]

    def nvmlDeviceGetMigMode(self, handle: int) -> list[int]:
        return [int(handle in self.mig), int(handle in self.mig)]

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return type("Memory", (), {"total": self.TOTALS[handle]})()


def test_auto_gpu_share_divides_this_machines_gpu_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A share sized for a 16 GiB default would not fit a smaller card and packs too few trials
    on an 80 GiB one: a local instance reads the smallest GPU it may use through NVML."""
    import ray._private.thirdparty.pynvml as pynvml

    from automl.search.plan import DEFAULT_GPU_MEMORY_GB, gpu_memory_gb, local_gpu_memory_gb

    def no_driver() -> None:
        raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("CUDA_DEVICE_ORDER", raising=False)
    monkeypatch.setattr(pynvml, "nvmlInit", no_driver)
    assert local_gpu_memory_gb() is None
    fake = _FakeNvml()
    for name in dir(fake):
        if name.startswith("nvml") or name == "NVMLError":
            monkeypatch.setattr(pynvml, name, getattr(fake, name))
    assert local_gpu_memory_gb() == 24.0  # the smaller of the two
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert local_gpu_memory_gb() == 24.0  # CUDA's 0 (fastest first) need not be NVML's 0
    monkeypatch.setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    assert local_gpu_memory_gb() == 80.0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-b")
    assert local_gpu_memory_gb() == 24.0
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-nope")
    assert local_gpu_memory_gb() is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert local_gpu_memory_gb() is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    fake.mig.add(0)
    with pytest.raises(ConfigError, match="MIG slices; set resources.gpu_memory_gb"):
        local_gpu_memory_gb()  # NVML reports the card, CUDA sees a slice: the 16 GiB default
    from automl.search.plan import check_share_holds_context

    shared = compose_config(tmp_path, "resources.gpus_per_trial=0.5")
    check_share_holds_context(shared, 0.5)  # asked for, not `auto`: a slice's memory unknown
    fake.mig.clear()  # overfilled small slices, and packed every trial on the first one
    local = compose_config(tmp_path, "resources.gpus_per_trial=auto")
    assert gpu_memory_gb(local) == 80.0
    assert gpu_memory_gb(replace(local, resources=replace(local.resources, gpu_memory_gb=12))) == 12
    joined = replace(local, ray=replace(local.ray, address="10.0.0.1:6379"))
    assert gpu_memory_gb(joined) == DEFAULT_GPU_MEMORY_GB  # a cluster's GPUs are not this one's


def test_a_gpu_share_too_small_for_the_cuda_context_is_refused_in_the_plan(
    tmp_path: Path,
) -> None:
    """0.02 of a 16 GiB GPU (0.33 GiB) cannot hold the ~0.5 GiB CUDA context: every trial
    failed as it capped its memory, after the data was tokenized."""
    cluster = ("ray.address=10.0.0.1:6379", "resources.gpus_per_trial=0.02")  # not contacted
    small = compose_config(tmp_path, *cluster, "resources.gpu_memory_gb=16")
    with pytest.raises(ConfigError, match=r"^config: resources.gpus_per_trial: a 0.02 share of "
                       r"a 16.0 GiB GPU cannot hold the CUDA context"):  # fmt: skip
        plan_sweep(small)
    assert plan_sweep(compose_config(tmp_path, *cluster, "resources.gpu_memory_gb=80"))  # 1.6 GiB
    assert plan_sweep(compose_config(tmp_path, *cluster))  # its GPUs' memory unknown: not judged


def test_auto_gives_a_model_without_a_memory_formula_a_whole_gpu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`auto` knew BERT, RoBERTa and GPT-2 alone and refused the sweep for any other model
    (DeBERTa, DistilBERT, Llama), even on a cluster without GPUs, where it means 0."""
    from transformers import AutoModelForSequenceClassification, DistilBertConfig

    folder = tmp_path / "distilbert"
    config = DistilBertConfig(vocab_size=100, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(folder)
    conf = compose_config(
        tmp_path, "ray.address=10.0.0.1:6379", "resources.gpus_per_trial=auto",  # not contacted
        "model=hf", f"model.name_or_path={folder}", "model.max_length=64", "search_space=smoke",
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="automl"):
        plan = plan_sweep(conf)
    assert plan.gpus_per_trial == 1.0
    assert caplog.messages == [
        "gpus_per_trial=auto: no memory formula for model type 'distilbert' (bert, roberta, "
        "gpt2) -> a whole GPU a trial where the cluster has GPUs; set a number such as 0.5 to "
        "share one"
    ]


def test_a_trial_must_fit_one_node_with_its_cpus_and_gpus_together() -> None:
    """A CPU-only head of 16 CPUs and GPU workers of 4 CPUs each passed the check for 8 CPUs
    and half a GPU (each largest on its own), and the trial waited in Ray's queue forever."""
    from automl.search.plan import check_fits

    nodes = [{"CPU": 16.0}, {"CPU": 4.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}]
    with pytest.raises(ConfigError) as err:
        check_fits(nodes, cpus=8, gpus=0.5)
    assert str(err.value) == (
        "config: resources.cpus_per_trial: a trial asks for 8 CPU and 0.5 GPU on one node, "
        "but the nodes with that GPU share have at most 4 CPU"
    )
    check_fits(nodes, cpus=4, gpus=0.5)  # a GPU worker holds it
    check_fits(nodes, cpus=16, gpus=0)  # the head holds it
    with pytest.raises(ConfigError, match="^config: resources.gpus_per_trial: a trial asks"):
        check_fits(nodes, cpus=1, gpus=2)
