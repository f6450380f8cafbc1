"""(a) Trial throughput at equal quality: our loop against the Hugging Face `Trainer`.

Same model (`build_model`: MiniLM, LoRA r8 on query/value), same tokenized data, batch 32,
learning rate 2e-3, the same epochs, 2 threads. Samples/s counts training time only; every model
is then scored by the same evaluation (`automl.train.evaluate`) on the validation split.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks import hf
from benchmarks.common import compose, progress

LR = 2e-3


def run(quick: bool = False, epochs: int = 1) -> dict[str, Any]:
    from automl.data.prepare import prepare_data
    from automl.model.build import build_model
    from automl.model.load import load_tokenizer
    from automl.train.evaluate import evaluate
    from automl.train.loop import run_trial

    overrides = [
        "model=minilm",
        f"train.epochs={epochs}",
        f"train.learning_rate={LR}",
        "train.batch_size=32",
        "train.num_threads=2",
        "peft.lora_rank=8",
        "peft.target_modules=[query,value]",
    ]
    if quick:
        overrides.append("data.max_examples=300")
    conf = compose(*overrides)
    torch.set_num_threads(2)
    data = prepare_data(conf)
    tokenizer = load_tokenizer(conf.model)
    rows: dict[str, dict[str, Any]] = {}

    progress(f"(a) ours: {len(data.train)} train / {len(data.val)} val, {epochs} epoch(s)")
    started = time.perf_counter()
    result = run_trial(conf, data)
    rows["ours"] = {
        "samples_per_s": result.train_samples_per_s,
        "val_accuracy": result.history[-1]["val_accuracy"],
        "train_s": len(data.train) * epochs / result.train_samples_per_s,
        "wall_s": time.perf_counter() - started,
    }
    progress(f"(a) ours: {rows['ours']['samples_per_s']:.1f} samples/s")

    for name, extra in (
        ("trainer_default", {}),
        ("trainer_group_by_length", {"train_sampling_strategy": "group_by_length"}),
    ):
        from transformers import Trainer

        progress(f"(a) {name} ...")
        started = time.perf_counter()
        model, _ = build_model(conf.model, conf.peft, data.label_names, data.pad_token_id)
        train_ds, _ = hf.datasets(data)
        timer = hf.epoch_timer()
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(
                model=model,
                args=hf.training_args(Path(tmp), epochs=epochs, lr=LR, seed=0, **extra),
                train_dataset=train_ds,
                data_collator=hf.collator(tokenizer),
                processing_class=tokenizer,
                callbacks=[timer],
            )
            torch.set_num_threads(2)
            trainer.train()
        metrics = evaluate(trainer.model, data.val, data.pad_token_id, 128, torch.device("cpu"))
        samples = len(data.train) * epochs
        rows[name] = {
            "samples_per_s": samples / timer.seconds,
            "val_accuracy": metrics["val_accuracy"],
            "train_s": timer.seconds,
            "wall_s": time.perf_counter() - started,
        }
        progress(f"(a) {name}: {rows[name]['samples_per_s']:.1f} samples/s")

    ours = rows["ours"]
    figures = [
        {
            "figure": "a. throughput: ours / Trainer default",
            "value": ours["samples_per_s"] / rows["trainer_default"]["samples_per_s"],
            "unit": "x",
            "goal": ">= 1.3",
            "passed": ours["samples_per_s"] / rows["trainer_default"]["samples_per_s"] >= 1.3,
        },
        {
            "figure": "a. throughput: ours / Trainer group_by_length",
            "value": ours["samples_per_s"] / rows["trainer_group_by_length"]["samples_per_s"],
            "unit": "x",
            "goal": ">= 1.0",
            "passed": ours["samples_per_s"] / rows["trainer_group_by_length"]["samples_per_s"]
            >= 1.0,
        },
    ]
    for name in ("trainer_default", "trainer_group_by_length"):
        diff = 100 * (ours["val_accuracy"] - rows[name]["val_accuracy"])
        figures.append(
            {
                "figure": f"a. val accuracy: ours - {name.replace('_', ' ', 1)}",
                "value": diff,
                "unit": "points",
                "goal": ">= -1.0",
                "passed": diff >= -1.0,
            }
        )
    setup = (
        f"MiniLM, LoRA r8 query/value, batch 32, lr {LR}, {epochs} epoch(s), 2 threads, "
        f"{len(data.train)} train / {len(data.val)} val"
    )
    return {"name": "throughput", "setup": setup, "measurements": rows, "figures": figures}
